"""Uni-encoder span GLiNER (``span_mode`` markerV0 / marker): a score for every span x type.

    input:  [CLS] <<ENT>> type1 <<ENT>> type2 … <<SEP>> word1 word2 … [SEP]
    word states, <<ENT>> states = WordEncoder.encode(input)            (encoder, then BiLSTM; ../model.py)
    type vectors   = type_ffn(state of each <<ENT>>)
    span score     = span vector(start word, end word) · type vector, for spans of up to max_width words

The predictor of this family is ``GLiNER`` itself (../predict/base.py); the other families subclass it.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..model import SPAN_MODES, GLiNERConfig, WordEncoder, ffn


class SpanHead(nn.Module):
    """Scores every span (start word i, width k) against every type vector q.

    markerV0: span_ij = FFN_out(ReLU([FFN_start(h_i) ; FFN_end(h_j)])), FFN_out = Linear(2D,4D) ReLU Linear(4D,D).
    marker:   span_ij = Linear(2D,D)(ReLU([FFN_start(h_i) ; FFN_end(h_j)])).

    Neither is computed per span. The first map of FFN_out splits into a start term a_i = W_s s_i + b and an
    end term c_j = W_e e_j (once per word), and the last map folds into the type side q' = W_2ᵀ q (once per
    type), so score_ijt = ReLU(a_i + c_j) · q'_t + b_2 · q_t. For ``marker`` both maps are linear and the
    score is a sum of per-word, per-type terms.
    """

    def __init__(self, hidden_size: int, max_width: int, dropout: float, span_mode: str = "markerV0"):
        super().__init__()
        self.max_width = max_width
        self.span_mode = span_mode
        d = hidden_size
        if span_mode == "markerV0":
            self.project_start = ffn(d, 4 * d, d, dropout)
            self.project_end = ffn(d, 4 * d, d, dropout)
            self.out_project = ffn(2 * d, 4 * d, d, dropout)
        elif span_mode == "marker":
            self.project_start = ffn(d, 2 * d, d, dropout)
            self.project_end = ffn(d, 2 * d, d, dropout)
            self.out_project = nn.Linear(2 * d, d)
        else:
            raise ValueError(f"span_mode {span_mode!r} is not supported; use one of {SPAN_MODES}")

    def forward(self, word_vecs: torch.Tensor, type_vecs: torch.Tensor, word_counts: torch.Tensor) -> torch.Tensor:
        """word_vecs (B, W, D), type_vecs (B, C, D), word_counts (B,) -> span logits (B, W, max_width, C).

        Entry [b, i, k, t] scores words i..i+k of text b against type t. Only words and spans inside their text
        are computed (padding is most of a batch of short sentences); the other entries hold no score and must
        be masked (``span_mask``). The same as ``score`` of ``word_terms`` and ``type_terms``, which let a caller
        score the types a block at a time.
        """
        return self.score(self.word_terms(word_vecs, word_counts), self.type_terms(type_vecs))

    def type_terms(self, type_vecs: torch.Tensor) -> list[torch.Tensor]:
        """type_vecs (..., C, D) -> what the score needs of each type: markerV0 [W_2ᵀ q (..., C, 4D),
        b_2 · q (..., C)]; marker [start part (..., C, D), end part (..., C, D), bias · q (..., C)]. Indexing the C axis of each term
        selects those types."""
        d = type_vecs.shape[-1]
        if self.span_mode == "markerV0":
            last = self.out_project[3]
            return [type_vecs @ last.weight, type_vecs @ last.bias]
        out = self.out_project
        return [type_vecs @ out.weight[:, :d], type_vecs @ out.weight[:, d:], type_vecs @ out.bias]

    def word_terms(self, word_vecs: torch.Tensor, word_counts: torch.Tensor) -> dict:
        """The per-word part of the score, computed once for any number of types: markerV0 the start and end terms
        of the real words, packed (N, 4D); marker the start and end vectors (B, W, D)."""
        batch, num_words, d = word_vecs.shape
        device = word_vecs.device
        counts = word_counts.cpu().unsqueeze(1)
        positions = torch.arange(num_words)
        real_words = (positions < counts).flatten().nonzero().squeeze(1)  # b * W + i of each word, text by text
        words_after = (counts - 1 - positions).flatten()[real_words]  # how many words follow it in its text
        real_words = real_words.to(device)
        packed = word_vecs.flatten(0, 1)[real_words]  # (N, D)
        starts = F.relu(self.project_start(packed))
        ends = F.relu(self.project_end(packed))
        if self.span_mode == "marker":
            return {"starts": unpad(starts, real_words, batch, num_words),
                    "ends": unpad(ends, real_words, batch, num_words)}
        first = self.out_project[0]
        start_weight, end_weight = first.weight.split(d, dim=1)  # split: its gradient is one concatenation
        return {"start_terms": F.linear(starts, start_weight, first.bias), "end_terms": F.linear(ends, end_weight),
                "real_words": real_words, "words_after": words_after, "shape": (batch, num_words)}

    def score(self, words: dict, types: list[torch.Tensor]) -> torch.Tensor:
        """``word_terms`` against ``type_terms`` of (B, C) types -> span logits (B, W, max_width, C), as ``forward``."""
        if self.span_mode == "marker":
            start_types, end_types, bias = types
            start_scores = words["starts"] @ start_types.transpose(-1, -2)  # (B, W, C)
            end_scores = words["ends"] @ end_types.transpose(-1, -2)  # (B, W, C)
            end_scores = F.pad(end_scores, (0, 0, 0, self.max_width - 1)).unfold(1, self.max_width, 1).transpose(2, 3)
            # [b, i, k]: start i, end i + k
            return start_scores.unsqueeze(2) + end_scores + bias.unsqueeze(1).unsqueeze(1)
        folded_types, bias = types[0].transpose(-1, -2), types[1]  # (B, 4D, C), (B, C)
        scores = [unpad(*self.width_hidden(words, k), *words["shape"]) @ folded_types  # each text, its own types
                  for k in range(self.max_width)]
        return torch.stack(scores, dim=2) + bias.unsqueeze(1).unsqueeze(1)

    def width_hidden(self, words: dict, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """markerV0: the hidden layer ReLU(a_i + c_{i+k}) of every width-k span inside its text, packed (n, 4D), and
        each span's start word as b * W + i: one width at a time, rather than (B, W, K, 4D) at once."""
        real_words = words["real_words"]
        # Texts are contiguous in the packed rows, so a width-k span starting at row n ends at row n + k.
        span_starts = (words["words_after"] >= k).nonzero().squeeze(1).to(real_words.device)
        span_terms = (words["start_terms"].index_select(0, span_starts)
                      + words["end_terms"].index_select(0, span_starts + k))
        return self.out_project[2](F.relu(span_terms)), real_words[span_starts]

    def score_blocks(self, words: dict, types: list[torch.Tensor], index: torch.Tensor,
                     block: int) -> Iterator[tuple[dict[str, int], torch.Tensor]]:
        """``score`` for the types ``index`` (B, C) picks from ``type_terms`` of U types, ``block`` types at a time:
        ({"first_type", "first_width"}, logits (B, W, k, c)) with each markerV0 width's hidden layer computed once.
        When every row has the same types, the spans are scored packed (no padding words) against one type matrix."""
        if self.span_mode == "marker":
            for first in range(0, index.shape[-1], block):
                picked = [term[index[:, first : first + block]] for term in types]
                yield {"first_type": first}, self.score(words, picked)
            return
        shared = bool((index == index[:1]).all())
        for k in range(self.max_width):
            hidden, at = self.width_hidden(words, k)
            if not shared:
                hidden = unpad(hidden, at, *words["shape"])  # (B, W, 4D)
            for first in range(0, index.shape[-1], block):
                if shared:
                    folded_types, bias = (term[index[0, first : first + block]] for term in types)  # (c, 4D), (c,)
                    logits = unpad(hidden @ folded_types.T + bias, at, *words["shape"])  # (B, W, c)
                else:
                    folded_types, bias = (term[index[:, first : first + block]] for term in types)  # (B, c, 4D), (B, c)
                    logits = hidden @ folded_types.transpose(-1, -2) + bias.unsqueeze(-2)
                yield {"first_type": first, "first_width": k}, logits.unsqueeze(2)

    def span_vectors(self, word_vecs: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
        """word_vecs (W, D) of one text, bounds (N, 2) first and last word -> the N span vectors (N, D), computed
        explicitly (relation models need them for the few spans they pair up)."""
        starts = F.relu(self.project_start(word_vecs[bounds[:, 0]]))
        ends = F.relu(self.project_end(word_vecs[bounds[:, 1]]))
        return self.out_project(torch.cat([starts, ends], dim=-1))


class GLiNERModel(WordEncoder):
    """Encoder + BiLSTM + span head + type FFN. Inputs come from ``PromptTokenizer.collate`` (encoding.py)."""

    def __init__(self, config: GLiNERConfig, encoder: nn.Module):
        super().__init__(config, encoder)
        d = config.hidden_size
        self.span_head = SpanHead(d, config.max_width, config.dropout, config.span_mode)
        self.type_ffn = ffn(d, 4 * d, d, config.dropout)

    def forward(self, input_ids, attention_mask, word_index, word_counts, type_index) -> torch.Tensor:
        """Span logits (B, W, max_width, C); the inputs are those of ``WordEncoder.encode``."""
        word_vecs, ent_states = self.encode(input_ids, attention_mask, word_index, word_counts, type_index)
        return self.span_head(word_vecs, self.type_ffn(ent_states), word_counts)


def unpad(rows: torch.Tensor, index: torch.Tensor, batch: int, num_words: int) -> torch.Tensor:
    """rows (N, X) of words at flat positions ``index`` (b * W + i) -> (B, W, X), zero elsewhere."""
    padded = rows.new_zeros(batch * num_words, rows.shape[-1])
    return padded.index_copy(0, index, rows).view(batch, num_words, -1)


def span_mask(word_counts: torch.Tensor, num_words: int, max_width: int) -> torch.Tensor:
    """(B, W, K) bool: whether span [i, i + k] lies inside the text."""
    ends = torch.arange(num_words).unsqueeze(1) + torch.arange(max_width).unsqueeze(0)  # (W, K)
    return ends.unsqueeze(0) < word_counts.view(-1, 1, 1)
