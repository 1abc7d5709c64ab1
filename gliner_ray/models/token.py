"""Token-level GLiNER network (``span_mode: token_level``, e.g. NuNER-Zero): each word gets three scores per
type, for starting, ending and lying inside an entity of that type (``predict/token.py`` reads entities off them).

    word vectors h_w (BiLSTM), type vectors q_t (the <<ENT>> states, no FFN)
    [a_w ; b_w] = proj_token(h_w)       [c_t ; e_t] = proj_label(q_t)          (each D wide)
    (start, end, inside)_wt = out_mlp([a_w ; c_t ; b_w * e_t])            (Linear(3D,4D) ReLU Linear(4D,3))
"""

from __future__ import annotations

import torch
from torch import nn

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
        return self.score(self.word_terms(word_vecs), self.type_terms(type_vecs))

    # The first layer on [a ; c ; b * e] is a word term + a type term + the product term, per pair.
    def word_terms(self, word_vecs: torch.Tensor) -> list[torch.Tensor]:
        """word_vecs (B, W, D) -> [W_word a_w (B, W, 4D), b_w (B, W, D)], computed once for any number of types."""
        a, b = self.proj_token(word_vecs).split(word_vecs.shape[-1], dim=-1)  # (B, W, D) each
        return [a @ self.out_mlp[0].weight.split(word_vecs.shape[-1], dim=1)[0].T, b]

    def type_terms(self, type_vecs: torch.Tensor) -> list[torch.Tensor]:
        """type_vecs (..., C, D) -> [W_type c_t + bias (..., C, 4D), e_t (..., C, D)]."""
        c, e = self.proj_label(type_vecs).split(type_vecs.shape[-1], dim=-1)
        first = self.out_mlp[0]
        return [c @ first.weight.split(type_vecs.shape[-1], dim=1)[1].T + first.bias, e]

    def score(self, words: list[torch.Tensor], types: list[torch.Tensor]) -> torch.Tensor:
        """``word_terms`` against ``type_terms`` of (B, C) types -> logits (B, W, C, 3)."""
        (word_term, b), (type_term, e) = words, types
        w_product = self.out_mlp[0].weight.split(b.shape[-1], dim=1)[2]
        hidden = word_term.unsqueeze(2) + type_term.unsqueeze(1) + (b.unsqueeze(2) * e.unsqueeze(1)) @ w_product.T
        return self.out_mlp[3](torch.relu(self.out_mlp[1](hidden)))  # hidden: (B, W, C, 4D)


class TokenModel(WordEncoder):
    """Encoder + BiLSTM + token scorer."""

    def __init__(self, config, encoder: nn.Module):
        super().__init__(config, encoder)
        self.scorer = TokenScorer(config.hidden_size, config.dropout)

    def forward(self, input_ids, attention_mask, word_index, word_counts, type_index) -> torch.Tensor:
        """Logits (B, W, C, 3): start, end, inside; inputs as ``WordEncoder.encode``."""
        word_vecs, ent_states = self.encode(input_ids, attention_mask, word_index, word_counts, type_index)
        return self.scorer(word_vecs, ent_states)

