"""The driver's running account of an extraction, kept from the summary rows the model actors emit per chunk."""

from __future__ import annotations

import json
import time
from typing import Any

# Where a chunk's time goes, in the order it goes there: the CPU stage (chunks.py), then the model actor.
CPU_STAGES = ("read", "split", "tokenize", "plan", "arrow")
MODEL_STAGES = ("unpack", "collate", "forward", "candidates", "decode", "write")
ESTIMATE_AFTER_SHARDS = 3  # the time left is said once this many shards are done: the first ones carry the start-up


class Progress:
    """The driver's running account of a job: words and time per stage from the chunk summaries, the model
    actors' busy share, and an estimate of the time left from the input bytes still to process."""

    def __init__(self, total_bytes: int):
        self.started = time.time()
        self.total_bytes = max(total_bytes, 1)
        self.done_bytes = 0
        self.shards_done = 0
        self.first_shard: tuple[float, int] | None = None  # when the first shard finished, and the bytes done then
        self.words = 0
        self.records = self.failed = 0  # records read (documents and errors), and errors among them
        self.tokens = self.padded_tokens = 0  # sub-tokens through the model, without and with padding
        self.stage_seconds = dict.fromkeys(CPU_STAGES + MODEL_STAGES, 0.0)
        self.actors: dict[str, tuple[float, float]] = {}  # actor -> (seconds in forward passes, seconds since its first call)
        self.label_encoder_runs: dict[str, int] = {}  # actor -> forward passes of its labels encoder (bi-encoders)
        self.label_sets: set[str] = set()  # the documents' own label sets (--labels-field), by name (hash)

    def add(self, summary: dict) -> None:
        self.words += summary["words"]
        self.records += summary["documents"]
        self.failed += summary["failed"]
        self.label_sets.update(json.loads(summary.get("label_sets") or "[]"))
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
        self.shards_done += 1
        now = time.time()
        self.first_shard = self.first_shard or (now, self.done_bytes)
        elapsed = now - self.started
        left = self.time_left(now)
        return (
            f"{marker['source']}: {marker['documents']} documents ({marker['failed']} failed), {marker['mentions']} "
            f"mentions | {self.words:,} words in {elapsed:.0f} s, {self.words / max(elapsed, 1e-9):,.0f} words/s, "
            f"model busy {self.model_busy:.0%}, {self.done_bytes / self.total_bytes:.0%} of the input"
            + (f", about {duration(left)} left" if left is not None else "")
        )

    def time_left(self, now: float) -> float | None:
        """Seconds left at the pace since the first shard finished (the start-up before it, loading models,
        says nothing of the pace); None until ``ESTIMATE_AFTER_SHARDS`` shards are done."""
        if self.first_shard is None or self.shards_done < ESTIMATE_AFTER_SHARDS:
            return None
        since, bytes_then = self.first_shard
        pace = (self.done_bytes - bytes_then) / max(now - since, 1e-9)
        return (self.total_bytes - self.done_bytes) / pace if pace > 0 else None

    @property
    def model_busy(self) -> float:
        busy, elapsed = (sum(x) for x in zip(*self.actors.values())) if self.actors else (0.0, 0.0)
        return busy / elapsed if elapsed else 0.0

    def statistics(self) -> dict[str, Any]:
        statistics = {"words": self.words, "model_busy": round(self.model_busy, 4), "model_actors": len(self.actors),
                      "label_encoder_runs": sum(self.label_encoder_runs.values()),
                      "padded_token_share": round(1 - self.tokens / self.padded_tokens, 4) if self.padded_tokens else 0.0,
                      "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()}}
        if self.label_sets:
            statistics["label_sets"] = len(self.label_sets)  # distinct label sets among the documents of this run
        return statistics


def duration(seconds: float) -> str:
    """4h05m, 1m12s or 9s."""
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
