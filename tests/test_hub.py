"""Models from the Hugging Face hub without a network: a missing model fails at once with one line that names the
``hf download`` command, and an older checkpoint names the encoder it needs. Nothing here reaches the network."""

import json
import os
import shutil
import socket
import subprocess
import sys

from gliner_ray.cli import main
from tests.helpers import REPO


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connections to it are refused


def test_missing_model_without_an_answering_hub_fails_at_once_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}", HF_HOME=str(tmp_path / "hf"))
    done = subprocess.run([sys.executable, "-m", "gliner_ray.cli", "predict", "--model", "urchade/gliner_small-v2.1",
                           "--labels", "person", "Alice"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert "Retrying" not in done.stderr and "Traceback" not in done.stderr
    assert sum("does not answer" in line for line in lines) == 1  # the warning, once
    assert lines[-1] == ("gliner-ray predict: error: GLiNER checkpoint 'urchade/gliner_small-v2.1' is not in the local "
                         "Hugging Face cache and the hub is offline: run `hf download urchade/gliner_small-v2.1` "
                         "where there is network, or pass a local checkpoint directory")


def test_older_checkpoint_names_the_encoder_it_needs(tiny_gliner_dir, tmp_path, capsys):
    """A v2.1-style checkpoint saves neither its encoder's config nor a tokenizer: both come from model_name."""
    older = tmp_path / "older"
    shutil.copytree(tiny_gliner_dir, older)
    config = json.loads((older / "gliner_config.json").read_text())
    config.update(encoder_config=None, model_name="gliner-ray-tests/absent-encoder")
    (older / "gliner_config.json").write_text(json.dumps(config))
    for name in os.listdir(older):
        if name.startswith(("tokenizer", "special_tokens", "vocab")):
            os.remove(older / name)

    assert main(["predict", "--model", str(older), "--labels", "person", "Alice"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "names its encoder (model_name) 'gliner-ray-tests/absent-encoder' instead of saving it" in error
    assert error.endswith("run `hf download gliner-ray-tests/absent-encoder` where there is network")
