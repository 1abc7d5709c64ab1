"""What a training run leaves under ``OUTPUT`` (local or s3://) and in its checkpoints: the metrics log, the
plot, the published model, and each checkpoint's contents (a GLiNER checkpoint, the trainer state, the metrics)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import pyarrow.fs as pafs
import torch

from .. import storage
from ..checkpoint import CONFIG_FILE
from ..evaluate import png_bytes
from ..predict import GLiNER

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"  # optimizer, schedule and step beside the GLiNER checkpoint in model/
METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "training.png"
FINAL_DIR = "final"


def jsonl_bytes(records: Sequence[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def parse_jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ---- a checkpoint's directory -----------------------------------------------------------------------------
def write_checkpoint_files(directory: str | Path, gliner: GLiNER, state: dict[str, Any], history: Sequence[dict]) -> None:
    """Fill a checkpoint directory: ``model/`` (a GLiNER checkpoint), the trainer state and the metrics so far."""
    directory = Path(directory)
    gliner.save_pretrained(directory / "model")
    torch.save(state, directory / STATE_FILE)
    (directory / METRICS_FILE).write_bytes(jsonl_bytes(history))


def read_checkpoint_files(directory: str | Path) -> tuple[GLiNER, dict[str, Any], list[dict]]:
    """The GLiNER (on the CPU), trainer state and metrics that ``write_checkpoint_files`` wrote."""
    directory = Path(directory)
    gliner = GLiNER.from_pretrained(directory / "model", device="cpu")
    state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
    history = parse_jsonl((directory / METRICS_FILE).read_text(encoding="utf-8"))
    return gliner, state, history


# ---- OUTPUT/ ------------------------------------------------------------------------------------------------
class MetricsLog:
    """Rank 0's metric records, rewritten whole to ``OUTPUT/metrics.jsonl`` at each report (S3 has no append)."""

    def __init__(self, output: str, history: list[dict]):
        self.fs, self.path = storage.resolve(storage.join(output, METRICS_FILE))
        self.history = history

    def add(self, record: dict) -> None:
        self.history.append(record)
        logger.info("step %d: %s", record["step"], record)
        self.write()

    def write(self) -> None:
        storage.write_bytes(self.fs, self.path, jsonl_bytes(self.history))


def read_metrics(output: str) -> list[dict]:
    """The records of ``OUTPUT/metrics.jsonl``."""
    fs, path = storage.resolve(storage.join(output, METRICS_FILE))
    with fs.open_input_stream(path) as f:
        return parse_jsonl(f.read().decode())


def plot_metrics(records: Sequence[dict], uri: str) -> None:
    """Write ``metrics_figure`` as a PNG at ``uri``."""
    storage.write_bytes(*storage.resolve(uri), png_bytes(metrics_figure(records), dpi=100))


def metrics_figure(records: Sequence[dict]) -> Any:
    """Loss and eval F1 (in %, as evaluate reports it) against step: a matplotlib ``Figure``."""
    from matplotlib.figure import Figure  # only the driver draws, once at the end: not loaded in every worker

    figure = Figure(figsize=(10, 4))
    loss_ax, f1_ax = figure.subplots(1, 2)
    loss_points = [(r["step"], r["loss"]) for r in records if "loss" in r]
    f1_points = [(r["step"], 100 * r["f1"]) for r in records if "f1" in r]
    for ax, points, name in ((loss_ax, loss_points, "training loss"), (f1_ax, f1_points, "eval F1 (%, exact match)")):
        if points:
            ax.plot(*zip(*points), marker="." if len(points) < 50 else None)
        else:
            ax.text(0.5, 0.5, "no --eval data", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("step")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    f1_ax.set_ylim(0, 100)
    if loss_points and min(loss for _, loss in loss_points) > 0:
        loss_ax.set_yscale("log")  # the first steps' loss is 100x the rest: a linear axis flattens the curve
    for r in records:
        if r.get("resumed"):
            loss_ax.axvline(r["step"], color="gray", linestyle=":")
    figure.tight_layout()
    return figure


def publish_model(checkpoint, uri: str) -> None:
    """Copy the checkpoint's ``model/`` to ``uri``, ``gliner_config.json`` last, so a copy cut short never looks
    like a complete checkpoint (both loaders require that file)."""
    dest_fs, dest = storage.resolve(uri)
    source = checkpoint.path + "/model"
    infos = checkpoint.filesystem.get_file_info(pafs.FileSelector(source))
    files = sorted((i.path for i in infos if i.type == pafs.FileType.File), key=lambda p: p.endswith(CONFIG_FILE))
    storage.delete(dest_fs, dest)
    dest_fs.create_dir(dest, recursive=True)
    for file in files:
        pafs.copy_files(file, dest + "/" + file.rsplit("/", 1)[1], source_filesystem=checkpoint.filesystem,
                        destination_filesystem=dest_fs)
