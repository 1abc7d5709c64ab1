"""Relation extraction GLiNER network (``relations_layer`` in the config: the reference library's span "relex" models).

    input:  [CLS] <<ENT>> type1 … <<SEP>> <<REL>> relation1 <<REL>> relation2 … <<SEP>> word1 word2 … [SEP]
    span logits        as span.py (the <<REL>> part only adds context)
    entities           = spans inside the text whose best type scores above the entity threshold (before decoding)
    entity vectors e_n = the span head's vector of each entity (``SpanHead.span_vectors``)
    adjacency A_nm     = dot: σ(e_n · e_m)   bilinear: σ(P e_n · P e_m)   mlp: σ(MLP([e_n ; e_m]))
    pairs              = (n, m), n ≠ m, with A_nm > adjacency threshold ("none": every pair)
    relation logit     = pair_ffn([e_n ; e_m]) · state of each <<REL>> token

The predictor (``predict/relex.py``) picks the entities, and keeps the relations that pass its thresholds.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..model import GLiNERConfig, ffn
from .span import GLiNERModel


class Adjacency(nn.Module):
    """Which entity pairs may be related: (E, D) entity vectors -> (E, E) probabilities. Parameter names follow
    the reference's ``relations_rep_layer.relation_rep_layer``."""

    def __init__(self, mode: str, d: int):
        super().__init__()
        self.mode = mode
        if mode == "bilinear":
            self.proj = nn.Linear(d, d)
        elif mode == "mlp":
            self.mlp = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, 1))

    def forward(self, vecs: torch.Tensor) -> torch.Tensor:
        if self.mode == "dot":
            return torch.sigmoid(vecs @ vecs.T)
        if self.mode == "bilinear":
            projected = self.proj(vecs)
            return torch.sigmoid(projected @ projected.T)
        n = len(vecs)
        pairs = torch.cat([vecs.unsqueeze(1).expand(n, n, -1), vecs.unsqueeze(0).expand(n, n, -1)], dim=-1)
        return torch.sigmoid(self.mlp(pairs).squeeze(-1))


class RelexScores(NamedTuple):
    span_logits: torch.Tensor  # (B, W, K, C)
    word_vecs: torch.Tensor  # (B, W, D)
    relation_states: torch.Tensor  # (B, R, D): the token state at each <<REL>>


class RelexModel(GLiNERModel):
    """The span model plus an adjacency layer and the pair FFN that scores entity pairs against relation types."""

    def __init__(self, config: GLiNERConfig, encoder: nn.Module):
        super().__init__(config, encoder)
        d = config.hidden_size
        self.adjacency = Adjacency(config.relations_layer, d) if config.relations_layer != "none" else None
        self.pair_ffn = ffn(2 * d, 4 * d, d, config.dropout)

    def forward(self, input_ids, attention_mask, word_index, word_counts, type_index, relation_index) -> RelexScores:
        num_types = type_index.shape[1]
        word_vecs, prompt_states = self.encode(input_ids, attention_mask, word_index, word_counts,
                                               torch.cat([type_index, relation_index], dim=1))
        span_logits = self.span_head(word_vecs, self.type_ffn(prompt_states[:, :num_types]), word_counts)
        return RelexScores(span_logits, word_vecs, prompt_states[:, num_types:])

    def relation_logits(self, word_vecs: torch.Tensor, relation_states: torch.Tensor, entities: torch.Tensor,
                        adjacency_threshold: float, entity_scores: torch.Tensor | None = None,
                        max_pairs: int | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
        """One text: word_vecs (W, D), relation_states (R, D), entities (E, 2) word bounds -> the pairs (N, 2) of
        entity indices that pass the adjacency threshold, their relation logits (N, R), and how many pairs were left
        out: ``max_pairs``: at most
        that many pairs, those of the best-scoring entities (``entity_scores`` (E,)) first (``best_pairs``)."""
        vecs = self.span_head.span_vectors(word_vecs, entities)
        n = len(entities)
        others = ~torch.eye(n, dtype=torch.bool, device=vecs.device)
        if self.adjacency is not None:
            others &= self.adjacency(vecs) > adjacency_threshold
        pairs = others.nonzero()  # row-major: by head, then tail
        dropped = max(0, len(pairs) - max_pairs) if max_pairs is not None else 0
        if dropped:
            pairs = best_pairs(pairs, entity_scores, max_pairs)
        # pair_ffn([e_n ; e_m]) · r = W_2 ReLU(W_h e_n + W_t e_m + b_1) · r + b_2 · r: the first map splits into a
        # head and a tail term computed once per entity, the last folds into the relation side, so a pair costs
        # one (4D) sum and R dot products instead of two matrix products (E² pairs: 2/3 of the work, per pair).
        first, last = self.pair_ffn[0], self.pair_ffn[3]
        head_weight, tail_weight = first.weight.split(vecs.shape[1], dim=1)
        head_terms, tail_terms = F.linear(vecs, head_weight, first.bias), F.linear(vecs, tail_weight)  # (E, 4D)
        hidden = F.relu(head_terms[pairs[:, 0]] + tail_terms[pairs[:, 1]])  # (N, 4D); dropout is off in eval
        return pairs, hidden @ (relation_states @ last.weight).T + relation_states @ last.bias, dropped



def best_pairs(pairs: torch.Tensor, entity_scores: torch.Tensor, max_pairs: int) -> torch.Tensor:
    """The ``max_pairs`` of ``pairs`` (N, 2) between the best-scoring entities: a pair ranks by its weaker entity's
    rank, then its stronger one's, then head before tail. They keep their given (row-major) order."""
    rank = torch.empty_like(entity_scores, dtype=torch.long)
    rank[entity_scores.argsort(descending=True, stable=True)] = torch.arange(len(entity_scores), device=rank.device)
    n = len(entity_scores)
    head, tail = rank[pairs[:, 0]], rank[pairs[:, 1]]
    key = (torch.maximum(head, tail) * n + torch.minimum(head, tail)) * 2 + (head > tail).long()
    kept = key.argsort(stable=True)[:max_pairs].sort().values
    return pairs[kept]
