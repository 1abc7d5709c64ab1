"""The Hugging Face hub, asked once per process whether it answers. When it does not, the process reads models
from the local cache only (as with ``HF_HUB_OFFLINE=1``), so a load succeeds or fails at once instead of retrying
every file for half a minute; errors then name the ``hf download`` command that fetches what is missing."""

from __future__ import annotations

import functools
import logging
import os

log = logging.getLogger(__name__)

PROBE_SECONDS = 5.0  # how long the one request that tells whether the hub answers may take


@functools.cache
def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set or the hub does not answer; then offline mode is switched on for this
    process (and the processes it starts), with one warning."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.HF_HUB_OFFLINE:
        return True
    try:
        get_session().head(constants.ENDPOINT, timeout=PROBE_SECONDS)
    except Exception as error:  # httpx's connection and timeout errors, a proxy refusing...
        log.warning("the Hugging Face hub (%s) does not answer (%s): models are read from the local cache only, as "
                    "with HF_HUB_OFFLINE=1", constants.ENDPOINT, str(error).splitlines()[0] if str(error) else error)
        constants.HF_HUB_OFFLINE = True  # read at each call by huggingface_hub and transformers
        os.environ["HF_HUB_OFFLINE"] = "1"
        return True
    return False


def download_hint(repo_id: str) -> str:
    """What to run to have ``repo_id`` in the local cache."""
    return f"run `hf download {repo_id}` where there is network"
