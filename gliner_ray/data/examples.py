"""The ``Example`` every reader produces and every trainer and evaluator consumes, the ``Dataset`` a reader returns,
label maps that rename entity types, and the checks that skip unusable examples (counted, with one warning)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Iterable, Mapping, NamedTuple

import fsspec

log = logging.getLogger(__name__)


@dataclass
class Example:
    """One annotated text: pre-split words and entity spans ``(start_word, end_word_inclusive, label)``."""

    words: list[str]
    spans: list[tuple[int, int, str]] = field(default_factory=list)


class Dataset(NamedTuple):
    """What a reader returns: the usable examples, the dataset's entity types (the prompt an evaluation gives
    every sentence) and how many examples were skipped as unusable."""

    examples: list[Example]
    types: list[str]
    skipped: int


def load_label_map(value: str) -> dict[str, str]:
    """A label map from inline JSON (``'{"PER": "person"}'``) or from a JSON file (local path or URI)."""
    if value.lstrip().startswith("{"):
        source, text = "--label-map", value
    else:
        source = value
        with fsspec.open(value, "rt", encoding="utf-8") as f:
            text = f.read()
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ValueError(f'{source}: a label map is a JSON object of tag name to type name, e.g. {{"PER": "person"}}')
    return mapping


def relabel(dataset: Dataset, label_map: Mapping[str, str]) -> Dataset:
    """The dataset with each entity type ``t`` renamed to ``label_map.get(t, t)`` (types stay unique, in order)."""
    if not label_map:
        return dataset
    examples = [
        Example(e.words, [(s, t, label_map.get(label, label)) for s, t, label in e.spans]) for e in dataset.examples
    ]
    types = list(dict.fromkeys(label_map.get(t, t) for t in dataset.types))
    return Dataset(examples, types, dataset.skipped)


def example_problem(example: Example) -> str | None:
    """Why an example cannot be trained or evaluated on (no words, a bad span, an empty label), or None."""
    n = len(example.words)
    if n == 0:
        return "no words"
    if not all(isinstance(word, str) for word in example.words):
        return "words are not all strings"
    for span in example.spans:
        start, end, label = span
        if not isinstance(label, str) or not label.strip():
            return f"empty label in span {span}"
        if not isinstance(start, int) or not isinstance(end, int):
            return f"span {span} has non-integer bounds"
        if end < start:
            return f"inverted span {span}"
        if start < 0 or end >= n:
            return f"span {span} out of range for {n} words"
    return None


def drop_invalid(examples: Iterable[tuple[str, Example]], source: str) -> tuple[list[Example], int]:
    """Keep the usable examples of ``(where, example)`` pairs; warn once with the count and a few reasons."""
    kept, problems = [], []
    for where, example in examples:
        problem = example_problem(example)
        if problem is None:
            kept.append(example)
        else:
            problems.append(f"{where}: {problem}")
    if problems:
        shown = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
        log.warning("%s: skipped %d of %d examples: %s", source, len(problems), len(kept) + len(problems), shown)
    return kept, len(problems)
