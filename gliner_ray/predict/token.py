"""Token-level GLiNER (``TokenModel``): entities read off each word's start, end and inside scores per type.

A span of words i..j has type t when start_it, end_jt and every inside_kt (i <= k <= j) pass the threshold; its
score is the least of them. Spans have no width limit, and the spans found go through the same greedy decoding as
span models. Long texts are windowed as for span models; a span is taken from the window it starts in, so one
longer than ``max_width`` words that runs past that window's end is cut there.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..decode import Span
from ..encoding import Row, row_sizes
from .base import GLiNER


def token_spans(probs: Sequence[Sequence[Sequence[float]]], threshold: float) -> list[tuple[int, int, int, float]]:
    """(start word, end word inclusive, type, score) of each span whose start, end and inside probabilities all
    pass ``threshold`` (start and end strictly above, inside at least); probs[w][t] = (start, end, inside)."""
    spans = []
    num_words = len(probs)
    num_types = len(probs[0]) if num_words else 0
    for t in range(num_types):
        for i in range(num_words):
            start = probs[i][t][0]
            if start <= threshold:
                continue
            least_inside = 1.0
            for j in range(i, num_words):  # extend the span while every word inside it stays inside
                inside = probs[j][t][2]
                if inside < threshold:
                    break
                least_inside = min(least_inside, inside)
                end = probs[j][t][1]
                if end > threshold:
                    spans.append((i, j, t, min(start, end, least_inside)))
    return spans


def append_token_spans(logits: torch.Tensor, rows: Sequence[Row], threshold: float, out: list[list[Span]],
                       first_type: int = 0) -> None:
    """Token logits (B, W, c, 3) of the row's labels ``first_type`` .. ``first_type + c`` -> ``out[b]`` gets the
    spans of row b found by ``token_spans`` that start in the row's own word range, in text word indices
    (``GLiNER._candidates`` for token-level models)."""
    probs = torch.sigmoid(logits.float()).cpu()
    word_counts, type_counts = row_sizes(rows)
    for b, (row, words, types) in enumerate(zip(rows, word_counts.tolist(), type_counts.tolist())):
        offset = row.window.start
        for start, end, type_, score in token_spans(probs[b, :words, : max(types - first_type, 0)].tolist(), threshold):
            if row.window.own_start <= offset + start < row.window.own_end:
                out[b].append(Span(offset + start, offset + end, row.labels[first_type + type_], score))


class TokenGLiNER(GLiNER):
    """``GLiNER`` for token-level checkpoints: same API, entities read from per-word scores."""

    _candidates = staticmethod(append_token_spans)
