"""What training tests share: a synthetic task (every name is a "person"), the settings of a tiny run, and a run's
metrics and registered checkpoint read back from its output."""

from __future__ import annotations

import json
import os
import random

import pyarrow.fs as pafs

from gliner_ray.data import Example
from gliner_ray.training import TrainSettings

NAMES = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Oscar"]
FILLER = "the a of and saw met with gave took to from in on at by for".split()


def synthetic_task(seed: int, count: int) -> list[Example]:
    """Sentences of filler words, numbers and first names; every name is a "person"."""
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        words, spans = [], []
        for _ in range(rng.randint(4, 12)):
            draw = rng.random()
            if draw < 0.15:
                spans.append((len(words), len(words), "person"))
                words.append(rng.choice(NAMES))
            else:
                words.append(str(rng.randint(0, 9999)) if draw < 0.3 else rng.choice(FILLER))
        examples.append(Example(words, spans))
    return examples


def output_filesystem(output: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's own filesystem for a run's output (a local path or a URI), independent of gliner_ray.storage."""
    return pafs.FileSystem.from_uri(output if "://" in output else os.path.abspath(output))


def metrics_of(output: str) -> list[dict]:
    fs, path = output_filesystem(output)
    with fs.open_input_stream(path + "/metrics.jsonl") as f:
        return [json.loads(line) for line in f.read().decode().splitlines()]


def registered_checkpoint_step(output: str) -> int:
    """The step of the latest checkpoint Ray Train's controller has registered for the run in ``output`` (what a
    restart resumes from; a checkpoint stored but not yet registered when a worker dies is not used); 0 if none."""
    fs, root = output_filesystem(output)
    try:
        with fs.open_input_stream(root + "/run/checkpoint_manager_snapshot.json") as f:
            snapshot = json.loads(f.read())
    except (FileNotFoundError, OSError, ValueError):  # not there yet, or read while Ray rewrites it
        return 0
    return (snapshot.get("latest_checkpoint_result") or {}).get("metrics", {}).get("step", 0)


def tiny_settings(output: str, backbone: str, **overrides) -> TrainSettings:
    """A run of two workers on a tiny backbone, fast learning rates; ``overrides`` change any setting."""
    values = dict(output=output, backbone=backbone, hidden_size=32, dropout=0.1, workers=2, batch_size=8,
                  lr_encoder=1e-3, lr_other=3e-3, log_every=10, eval_every=40, checkpoint_every=20)
    return TrainSettings(**{**values, **overrides})
