"""The driver's running account of an extraction, kept from the summary rows the model actors emit per chunk."""

from __future__ import annotations

import json
import time
from typing import Any

# Where a chunk's time goes, in the order it goes there: the CPU stage (chunks.py), then the model actor.
CPU_STAGES = ("read", "split", "tokenize", "plan", "arrow")
MODEL_STAGES = ("unpack", "collate", "forward", "candidates", "decode", "write")


class Progress:
    """The driver's running account of a job: words and time per stage from the chunk summaries, the model
    actors' busy share, and an estimate of the time left from the input bytes still to process."""

    def __init__(self, total_bytes: int):
        self.started = time.time()
        self.total_bytes = max(total_bytes, 1)
        self.done_bytes = 0
        self.words = 0
        self.tokens = self.padded_tokens = 0  # sub-tokens through the model, without and with padding
        self.stage_seconds = dict.fromkeys(CPU_STAGES + MODEL_STAGES, 0.0)
        self.actors: dict[str, tuple[float, float]] = {}  # actor -> (seconds in forward passes, seconds since its first call)
        self.label_encoder_runs: dict[str, int] = {}  # actor -> forward passes of its labels encoder (bi-encoders)

    def add(self, summary: dict) -> None:
        self.words += summary["words"]
        self.tokens += summary["tokens"]
        self.padded_tokens += summary["padded_tokens"]
        for stage, seconds in json.loads(summary["seconds"]).items():
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds
        busy, elapsed = self.actors.get(summary["actor"], (0.0, 0.0))
        if summary["actor_elapsed"] >= elapsed:
            self.actors[summary["actor"]] = (summary["actor_forward"], summary["actor_elapsed"])
            self.label_encoder_runs[summary["actor"]] = summary["actor_label_encoder_runs"]

    def shard_done(self, marker: dict, size: int) -> str:
        """One line about a finished shard and the job so far."""
        self.done_bytes += size
        elapsed = time.time() - self.started
        left = elapsed * (self.total_bytes - self.done_bytes) / max(self.done_bytes, 1)
        return (
            f"{marker['source']}: {marker['documents']} documents ({marker['failed']} failed), {marker['mentions']} "
            f"mentions | {self.words:,} words in {elapsed:.0f} s, {self.words / max(elapsed, 1e-9):,.0f} words/s, "
            f"model busy {self.model_busy:.0%}, {self.done_bytes / self.total_bytes:.0%} of the input, about "
            f"{_duration(left)} left"
        )

    @property
    def model_busy(self) -> float:
        busy, elapsed = (sum(x) for x in zip(*self.actors.values())) if self.actors else (0.0, 0.0)
        return busy / elapsed if elapsed else 0.0

    def statistics(self) -> dict[str, Any]:
        return {"words": self.words, "model_busy": round(self.model_busy, 4), "model_actors": len(self.actors),
                "label_encoder_runs": sum(self.label_encoder_runs.values()),
                "padded_token_share": round(1 - self.tokens / self.padded_tokens, 4) if self.padded_tokens else 0.0,
                "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()}}


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
