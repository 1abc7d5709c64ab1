"""A training run's settings (the CLI flags map one to one), their checks, and the record that keeps a re-run of
``OUTPUT`` from changing the recipe of the run it resumes."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pyarrow.fs as pafs

from .. import storage
from ..checks import changed_settings, check_at_least, check_threshold

PRECISIONS = ("auto", "bf16", "fp32")
SETTINGS_FILE = "settings.json"  # the run's settings, so a re-run that would change its recipe is refused
# Settings a re-run may change: how long and where it runs, and what it logs. Any other change (a learning rate,
# the batch size...) would be ignored after a resume, since the optimizer and schedule come from the checkpoint.
CHANGEABLE_ON_RESUME = {"output", "steps", "workers", "gpu", "cpus_per_worker", "log_every", "eval_every",
                        "checkpoint_every", "keep_checkpoints", "max_failures", "eval_threshold", "precision"}


@dataclass
class TrainSettings:
    """Everything a training run needs besides its data; the CLI flags map one to one."""

    output: str  # local directory or s3://bucket/prefix
    backbone: str | None = None  # a pretrained encoder: train a fresh GLiNER on it
    init: str | None = None  # a GLiNER checkpoint: fine-tune it
    steps: int = 1000  # optimizer steps in all (each worker takes one batch per step)
    batch_size: int = 8  # sentences per worker per batch (unless max_tokens)
    max_tokens: int | None = None  # instead: batches of similar length, texts x longest text <= this many sub-tokens
    accumulate: int = 1  # batches per optimizer step (gradient accumulation)
    workers: int = 1
    gpu: bool = False
    cpus_per_worker: int | None = None  # None: the node's CPUs divided by the workers it holds (default_cpus_per_worker)
    lr_encoder: float = 1e-5
    lr_other: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    loss_reduction: str = "sum"  # "sum" (the reference trainer's default) or "mean" over valid spans
    focal_alpha: float = -1.0  # < 0: no class weighting
    focal_gamma: float = 0.0  # 0: plain BCE
    max_types: int = 25
    max_len: int = 384  # words per training text (fresh models; --init keeps its checkpoint's)
    max_width: int = 12  # fresh models only
    hidden_size: int | None = None  # fresh models only; default: the encoder's width
    dropout: float = 0.4  # fresh models only
    log_every: int = 10
    eval_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    max_failures: int = 3
    eval_threshold: float = 0.5
    seed: int = 0
    precision: str = "auto"  # bf16 autocast where the hardware multiplies bf16 natively ("auto"), always, or never

    def check(self) -> None:
        """Raise a ValueError naming the first setting that cannot work."""
        if (self.backbone is None) == (self.init is None):
            raise ValueError("give exactly one of --backbone (a pretrained encoder) or --init (a GLiNER checkpoint)")
        for name in ("steps", "batch_size", "max_tokens", "accumulate", "workers", "cpus_per_worker", "log_every",
                     "eval_every", "checkpoint_every", "keep_checkpoints", "max_types", "max_len", "max_width"):
            check_at_least(getattr(self, name), flag(name))
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.loss_reduction not in ("sum", "mean"):
            raise ValueError(f"--loss-reduction must be 'sum' or 'mean', got {self.loss_reduction!r}")
        if not 0.0 <= self.warmup_ratio <= 1.0:
            raise ValueError(f"--warmup-ratio must lie in [0, 1], got {self.warmup_ratio}")
        check_threshold(self.eval_threshold, "--eval-threshold")

    @property
    def run_dir(self) -> str:
        return storage.join(self.output, "run")


def flag(name: str) -> str:
    """The command-line flag of a setting: max_len -> --max-len."""
    return "--" + name.replace("_", "-")


def record_settings(settings: TrainSettings) -> None:
    """Write ``OUTPUT/settings.json``; when ``OUTPUT`` already holds a checkpoint of a run, first refuse any
    change to that run's recorded settings outside ``CHANGEABLE_ON_RESUME``: a re-run resumes from that
    checkpoint and could not honour it. (A run that died before its first checkpoint may be re-run with any flags.)"""
    fs, path = storage.resolve(storage.join(settings.output, SETTINGS_FILE))
    current = dataclasses.asdict(settings)
    if has_checkpoint(settings) and fs.get_file_info(path).type == pafs.FileType.File:
        with fs.open_input_stream(path) as f:
            previous = json.loads(f.read())
        changed = [f"{flag(name)} {previous.get(name)} -> {current[name]}"
                   for name in changed_settings(previous, current, CHANGEABLE_ON_RESUME)]
        if changed:
            raise ValueError(
                f"{settings.output} holds a run with other settings ({'; '.join(changed)}); a re-run resumes that "
                "run, so give its flags again to continue it, or a new --output to start another"
            )
    storage.write_bytes(fs, path, json.dumps(current, indent=2).encode())


def has_checkpoint(settings: TrainSettings) -> bool:
    """Whether ``OUTPUT/run/`` holds a checkpoint that a re-run would resume from."""
    return last_checkpoint_step(settings) is not None


def last_checkpoint_step(settings: TrainSettings) -> int | None:
    """The step of the latest checkpoint under ``OUTPUT/run/`` (``checkpoint_00000500``); None when none."""
    run_fs, run_dir = storage.resolve(settings.run_dir)
    entries = run_fs.get_file_info(pafs.FileSelector(run_dir, allow_not_found=True))
    steps = [e.base_name.removeprefix("checkpoint_") for e in entries if e.base_name.startswith("checkpoint_")]
    return max((int(step) for step in steps if step.isdigit()), default=None)
