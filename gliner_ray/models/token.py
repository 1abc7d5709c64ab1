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

