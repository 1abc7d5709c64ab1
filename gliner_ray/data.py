"""Annotated data: the ``Example`` every reader produces and every trainer and evaluator consumes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Example:
    """One annotated text: pre-split words and entity spans ``(start_word, end_word_inclusive, label)``."""

    words: list[str]
    spans: list[tuple[int, int, str]] = field(default_factory=list)
