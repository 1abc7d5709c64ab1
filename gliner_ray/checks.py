"""Value checks that the predictors and the jobs share; each error names the flag or argument and its range."""

from __future__ import annotations

from typing import Any, Collection


def check_threshold(value: float, name: str) -> float:
    """A score threshold lies strictly between 0 and 1."""
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")
    return value


def check_at_least(value: int | None, name: str, minimum: int = 1) -> None:
    """A count (batch size, partitions, workers...) is at least ``minimum``; None means "not set"."""
    if value is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def changed_settings(previous: dict[str, Any], current: dict[str, Any], changeable: Collection[str] = ()) -> list[str]:
    """The names of the settings a resumed run would change: those that differ, outside ``changeable``."""
    return sorted(k for k in current if k not in changeable and previous.get(k) != current[k])
