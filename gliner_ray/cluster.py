"""Which Ray cluster a job runs on, one rule for every job, and what its logs show.

The rule: ``--address`` when given (``auto``: the cluster ``ray start`` runs on this machine; ``host:port``;
``ray://host:port``), else ``RAY_ADDRESS`` (``ray job submit`` sets it), else a new local Ray of this machine's
CPUs and GPUs; never silently whichever Ray happens to be running.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any, Mapping

logger = logging.getLogger(__name__)

ADDRESS_HELP = ("Ray cluster: host:port, ray://host:port, or auto (the cluster `ray start` runs on this machine) "
                "(default: RAY_ADDRESS, else a new local Ray)")
LOCAL = "local"
_ray_log_level = logging.WARNING  # Ray's own INFO lines (its dashboard URL...) only with --verbose
# Ray's log lines that say nothing a user of these jobs can act on.
HARMLESS_RAY_LINES = (
    ("ray._private.authentication.authentication_token_setup", "Token authentication is"),
    ("ray.data._internal.progress", "Progress bars disabled"),  # we turned them off, on purpose
)
# Ray Data's warning when an actor pool gets fewer input blocks than actors (one shard, two actors): the job's
# own plan, nothing to act on.
HARMLESS_RAY_WARNINGS = ("The minimum number of concurrent actors",)


class Interrupted(Exception):
    """A job stopped by Ctrl-C; its message says what was kept and how to continue."""


def choose_address(flag: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The cluster to connect to: the flag, else RAY_ADDRESS, else ``local`` (a new local Ray)."""
    return flag or environ.get("RAY_ADDRESS") or LOCAL


def connect(address: str | None = None, runtime_env: dict[str, Any] | None = None) -> str:
    """Start or join the Ray cluster ``choose_address`` picks (unless this process is already connected) and log,
    first, which one it is and its CPUs and GPUs; returns that line."""
    import ray

    quiet_ray()
    if not ray.is_initialized():
        chosen = choose_address(address)
        ray.init(address=chosen, runtime_env=runtime_env, logging_level=_ray_log_level)
        how = "a new local Ray" if chosen == LOCAL else f"joined {chosen}"
    else:
        how = "the Ray this process is connected to"
    line = describe_cluster(how)
    logger.info("%s", line)
    return line


def describe_cluster(how: str) -> str:
    """'Ray cluster at 127.0.0.1:6379 (a new local Ray): 1 node, 8 CPUs, 0 GPUs'."""
    import ray

    resources = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node["Alive"])
    return (f"Ray cluster at {ray.get_runtime_context().gcs_address} ({how}): {nodes} node{'s' * (nodes != 1)}, "
            f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs")


def set_verbose(verbose: bool) -> None:
    """--verbose: Ray's INFO lines and Ray Data's progress bars; without it, progress bars only on a terminal."""
    global _ray_log_level
    from ray.data import DataContext

    _ray_log_level = logging.INFO if verbose else logging.WARNING
    logging.getLogger("ray.data").setLevel(_ray_log_level)  # its per-dataset "Starting execution..." lines
    DataContext.get_current().enable_progress_bars = verbose or sys.stderr.isatty()
    if not verbose:
        for message in HARMLESS_RAY_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)


def quiet_ray() -> None:
    """Drop Ray's known-harmless warnings (once per process)."""
    for name, start in HARMLESS_RAY_LINES:
        target = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) for f in target.filters):
            target.addFilter(_DropLines(start))


class _DropLines(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


def root_cause(error: BaseException) -> BaseException:
    """The exception under Ray's wrappers: a task's (``cause``), a training worker's (``worker_failures``) or a
    controller's (``controller_failure``); ``error`` itself when it wraps none."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        failures = getattr(error, "worker_failures", None)
        inner = (next(iter(failures.values()), None) if failures else None) or getattr(error, "cause", None) \
            or getattr(error, "controller_failure", None)
        if not isinstance(inner, BaseException):
            break
        error = inner
    return error


def failure_line(error: BaseException) -> str:
    """One line for a failure: the root cause's type and the last line of its message (Ray's own messages
    carry the whole remote traceback above it)."""
    cause = root_cause(error)
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    message = lines[-1] if lines else ""
    if message.startswith(type(cause).__name__ + ":"):
        return message
    return f"{type(cause).__name__}: {message}" if message else type(cause).__name__
