"""Token-level GLiNER (``span_mode: token_level``, e.g. NuNER-Zero): each word gets three scores per type, for
starting, ending and lying inside an entity of that type, and entities are read off those scores.

    word vectors h_w (BiLSTM), type vectors q_t (the <<ENT>> states, no FFN)
    [a_w ; b_w] = proj_token(h_w)       [c_t ; e_t] = proj_label(q_t)          (each D wide)
    (start, end, inside)_wt = out_mlp([a_w ; c_t ; b_w * e_t])            (Linear(3D,4D) ReLU Linear(4D,3))

A span of words i..j has type t when start_it, end_jt and every inside_kt (i <= k <= j) pass the threshold; its
score is the least of them. Spans have no width limit, and the spans found go through the same greedy decoding as
span models. Long texts are windowed as for span models; a span is taken from the window it starts in, so one
longer than ``max_width`` words that runs past that window's end is cut there.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..decode import Span
from ..encoding import Row, row_sizes
from ..gliner import GLiNER
from ..model import Dropout, WordEncoder


class TokenScorer(nn.Module):
    """(start, end, inside) logits of every word x type pair; parameter names as the reference's ``scorer``."""

    def __init__(self, hidden_size: int, dropout: float):
        super().__init__()
        d = hidden_size
        self.proj_token = nn.Linear(d, 2 * d)
        self.proj_label = nn.Linear(d, 2 * d)
        self.out_mlp = nn.Sequential(nn.Linear(3 * d, 4 * d), Dropout(dropout), nn.ReLU(), nn.Linear(4 * d, 3))

    def forward(self, word_vecs: torch.Tensor, type_vecs: torch.Tensor) -> torch.Tensor:
        """word_vecs (B, W, D), type_vecs (B, C, D) -> logits (B, W, C, 3)."""
        d = word_vecs.shape[-1]
        a, b = self.proj_token(word_vecs).split(d, dim=-1)  # (B, W, D) each
        c, e = self.proj_label(type_vecs).split(d, dim=-1)  # (B, C, D) each
        first = self.out_mlp[0]
        w_word, w_type, w_product = first.weight.split(d, dim=1)
        # The first layer on [a ; c ; b * e] is a word term + a type term + the product term, per pair.
        hidden = (
            (a @ w_word.T).unsqueeze(2)
            + (c @ w_type.T + first.bias).unsqueeze(1)
            + (b.unsqueeze(2) * e.unsqueeze(1)) @ w_product.T
        )  # (B, W, C, 4D)
        return self.out_mlp[3](torch.relu(self.out_mlp[1](hidden)))


class TokenModel(WordEncoder):
    """Encoder + BiLSTM + token scorer."""

    def __init__(self, config, encoder: nn.Module):
        super().__init__(config, encoder)
        self.scorer = TokenScorer(config.hidden_size, config.dropout)

    def forward(self, input_ids, attention_mask, word_index, word_counts, type_index) -> torch.Tensor:
        """Logits (B, W, C, 3): start, end, inside; inputs as ``WordEncoder.encode``."""
        word_vecs, ent_states = self.encode(input_ids, attention_mask, word_index, word_counts, type_index)
        return self.scorer(word_vecs, ent_states)


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


def append_token_spans(logits: torch.Tensor, rows: Sequence[Row], threshold: float, out: list[list[Span]]) -> None:
    """Token logits (B, W, C, 3) -> ``out[b]`` gets the spans of row b found by ``token_spans`` that start in the
    row's own word range, in text word indices (``GLiNER._candidates`` for token-level models)."""
    probs = torch.sigmoid(logits.float()).cpu()
    word_counts, type_counts = row_sizes(rows)
    for b, (row, words, types) in enumerate(zip(rows, word_counts.tolist(), type_counts.tolist())):
        offset = row.window.start
        for start, end, type_, score in token_spans(probs[b, :words, :types].tolist(), threshold):
            if row.window.own_start <= offset + start < row.window.own_end:
                out[b].append(Span(offset + start, offset + end, row.labels[type_], score))


class TokenGLiNER(GLiNER):
    """``GLiNER`` for token-level checkpoints: same API, entities read from per-word scores."""

    _candidates = staticmethod(append_token_spans)
