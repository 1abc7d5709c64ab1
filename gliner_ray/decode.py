"""Greedy span decoding: keep the best-scoring spans that do not clash (plain Python, no torch); then the
relations whose two spans were kept.

A span is ``(start, end, label, score)`` over word indices, ``end`` inclusive, as in GLiNER's data format.
"""

from __future__ import annotations

from operator import attrgetter, itemgetter
from typing import Iterable, NamedTuple


class Span(NamedTuple):
    start: int  # first word
    end: int  # last word (inclusive)
    label: str
    score: float


def greedy_decode(candidates: Iterable[Span], flat_ner: bool = True, multi_label: bool = False) -> list[Span]:
    """Walk candidates from best to worst score and keep each one that fits with those already kept.

    ``flat_ner``: kept spans never overlap. Otherwise spans may nest fully but never cross.
    ``multi_label``: the very same span may be kept with several labels. Ties in score keep the earlier
    span (by start, then end). Cost: a sort, then a constant amount of work per candidate, because a kept
    span can only clash with kept spans that start at most ``max width`` words earlier.
    Returns the kept spans ordered by position.
    """
    # Best score first, ties by position: two stable sorts with C-level keys (a third of the time of one lambda).
    ordered = sorted(sorted(candidates, key=itemgetter(0, 1)), key=attrgetter("score"), reverse=True)
    if flat_ner:
        return _flat(ordered, multi_label)
    kept: list[Span] = []
    kept_bounds: set[tuple[int, int]] = set()
    ends_by_start: dict[int, list[int]] = {}  # start word -> ends of kept spans that start there
    max_width = 0
    for span in ordered:
        bounds = (span.start, span.end)
        if bounds in kept_bounds:
            if not multi_label:
                continue
        elif _clashes(span.start, span.end, ends_by_start, max_width, flat_ner):
            continue
        else:
            kept_bounds.add(bounds)
            ends_by_start.setdefault(span.start, []).append(span.end)
            max_width = max(max_width, span.end - span.start + 1)
        kept.append(span)
    kept.sort(key=lambda s: (s.start, s.end))
    return kept


def _flat(ordered: list[Span], multi_label: bool) -> list[Span]:
    """Flat decoding: one byte per word says whether a kept span covers it, so a clash is one ``find`` in C."""
    taken = bytearray(max((span.end for span in ordered), default=-1) + 1)
    kept: list[Span] = []
    kept_bounds: set[tuple[int, int]] = set()
    for span in ordered:
        start, end = span.start, span.end
        if taken.find(1, start, end + 1) != -1:
            if not (multi_label and (start, end) in kept_bounds):
                continue
        else:
            taken[start : end + 1] = b"\x01" * (end - start + 1)
            if multi_label:
                kept_bounds.add((start, end))
        kept.append(span)
    kept.sort(key=itemgetter(0, 1))
    return kept


def _clashes(start: int, end: int, ends_by_start: dict[int, list[int]], max_width: int, flat_ner: bool) -> bool:
    """Whether ``[start, end]`` overlaps (flat) or crosses (nested) a kept span other than itself."""
    for other_start in range(start - max_width + 1, end + 1):
        for other_end in ends_by_start.get(other_start, ()):
            if other_end < start:
                continue  # ends before us: disjoint
            if flat_ner:
                return True
            inside = start <= other_start and other_end <= end
            outside = other_start <= start and end <= other_end
            if not (inside or outside):
                return True
    return False


class RelationCandidate(NamedTuple):
    """A scored (head span, relation type, tail span) before decoding; spans as word bounds, ends inclusive."""

    head: tuple[int, int]
    tail: tuple[int, int]
    relation: str
    score: float


class Relation(NamedTuple):
    head: Span
    tail: Span
    relation: str
    score: float


def decode_relations(candidates: Iterable[RelationCandidate], entities: Iterable[Span]) -> list[Relation]:
    """The candidates whose head and tail are both among the decoded ``entities`` (matched by bounds; with
    several labels on one span, the first in position order), each (head, relation, tail) once with its best
    score (overlapping windows can score a pair twice). Ordered by head, tail, then relation."""
    by_bounds: dict[tuple[int, int], Span] = {}
    for span in entities:
        by_bounds.setdefault((span.start, span.end), span)
    best: dict[tuple, RelationCandidate] = {}
    for c in candidates:
        if c.head in by_bounds and c.tail in by_bounds:
            key = (c.head, c.tail, c.relation)
            if key not in best or c.score > best[key].score:
                best[key] = c
    return [Relation(by_bounds[c.head], by_bounds[c.tail], c.relation, c.score)
            for _, c in sorted(best.items(), key=itemgetter(0))]
