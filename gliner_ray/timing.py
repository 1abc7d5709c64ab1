"""Stage timers: the per-stage seconds that predict, extraction and training report."""

from __future__ import annotations

import time


def lap(seconds: dict[str, float] | None, stage: str, since: float) -> float:
    """Add the time since ``since`` to ``seconds[stage]`` (when timing is asked for); returns now."""
    now = time.perf_counter()
    if seconds is not None:
        seconds[stage] = seconds.get(stage, 0.0) + now - since
    return now
