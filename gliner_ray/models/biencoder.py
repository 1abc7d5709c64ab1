"""Bi-encoder GLiNER networks (``labels_encoder`` in the config): a second encoder embeds each label on its own,
so the text goes through the text encoder without a label prompt.

    label vector q_t = mean over the tokens of labels_encoder([CLS] label [SEP]) (then a linear map to D)
    span variant:  scores as uni-encoder span models, with type vectors type_ffn(q_t)
    token variant: scores as token-level models, with type vectors q_t

The word vectors are the encoder's, without the BiLSTM: the reference library (0.2.29) builds one for these models
and saves its weights, but never applies it, and its bi-encoder checkpoints were trained that way.

A label's vector depends on that label alone, so the predictor (``predict/biencoder.py``) computes it once and
keeps it.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from .span import GLiNERModel
from .token import TokenModel


class LabelEncoder(nn.Module):
    """The labels encoder (+ projection to the model width) and mean pooling over each label's tokens."""

    def __init__(self, encoder: nn.Module, hidden_size: int):
        super().__init__()
        self.encoder = encoder
        width = encoder.config.hidden_size
        self.projection = nn.Linear(width, hidden_size) if width != hidden_size else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token ids (N, T) of N labels -> label vectors (N, D)."""
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.projection is not None:
            states = self.projection(states)
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class WithLabelEncoder:
    """Adds the label encoder to a family's network; its words skip the BiLSTM (see the module docstring)."""

    def __init__(self, config, encoder: nn.Module, labels_encoder: nn.Module):
        super().__init__(config, encoder)
        self.label_encoder = LabelEncoder(labels_encoder, config.hidden_size)

    def word_vectors(self, input_ids, attention_mask, word_index, word_counts, type_index) -> torch.Tensor:
        return self.encode(input_ids, attention_mask, word_index, word_counts, type_index, use_lstm=False)[0]

    # Scoring a block of labels at a time (the predictor's path, ``score_blocks``): the text side once per batch
    # (``word_terms``), the label side once per label (``label_terms``), then only word x label terms per block, so
    # memory grows with the block, not with the label count.


class BiEncoderSpanModel(WithLabelEncoder, GLiNERModel):
    """Text encoder + span head, type FFN over label vectors from the label encoder."""

    def word_terms(self, input_ids, attention_mask, word_index, word_counts, type_index) -> dict:
        """The text side of the span scores (``SpanHead.word_terms``)."""
        word_vecs = self.word_vectors(input_ids, attention_mask, word_index, word_counts, type_index)
        return self.span_head.word_terms(word_vecs, word_counts)

    def label_terms(self, label_vecs: torch.Tensor) -> list[torch.Tensor]:
        """Label vectors (U, D) -> their side of the span scores (``SpanHead.type_terms`` of type_ffn(q))."""
        return self.span_head.type_terms(self.type_ffn(label_vecs))

    def score_blocks(self, words: dict, labels: list[torch.Tensor], index: torch.Tensor,
                     block: int) -> Iterator[tuple[dict[str, int], torch.Tensor]]:
        """The logits of ``forward`` for the labels ``index`` (B, C) picks from ``label_terms``, by blocks of labels
        and widths (``SpanHead.score_blocks``)."""
        return self.span_head.score_blocks(words, labels, index, block)

    def forward(self, input_ids, attention_mask, word_index, word_counts, type_index, label_vecs) -> torch.Tensor:
        """Span logits (B, W, max_width, C) against label_vecs (B, C, D) from ``label_encoder``."""
        word_vecs = self.word_vectors(input_ids, attention_mask, word_index, word_counts, type_index)
        return self.span_head(word_vecs, self.type_ffn(label_vecs), word_counts)


class BiEncoderTokenModel(WithLabelEncoder, TokenModel):
    """Text encoder + token scorer over label vectors from the label encoder."""

    def word_terms(self, input_ids, attention_mask, word_index, word_counts, type_index) -> list[torch.Tensor]:
        """The text side of the token scores (``TokenScorer.word_terms``)."""
        return self.scorer.word_terms(self.word_vectors(input_ids, attention_mask, word_index, word_counts, type_index))

    def label_terms(self, label_vecs: torch.Tensor) -> list[torch.Tensor]:
        """Label vectors (U, D) -> their side of the token scores (``TokenScorer.type_terms``)."""
        return self.scorer.type_terms(label_vecs)

    def score_blocks(self, words: list[torch.Tensor], labels: list[torch.Tensor], index: torch.Tensor,
                     block: int) -> Iterator[tuple[dict[str, int], torch.Tensor]]:
        """({"first_type"}, logits (B, W, c, 3) of ``forward``) for the labels ``index`` (B, C) picks from
        ``label_terms``, ``block`` at a time."""
        for first in range(0, index.shape[1], block):
            picked = [term[index[:, first : first + block]] for term in labels]
            yield {"first_type": first}, self.scorer.score(words, picked)

    def forward(self, input_ids, attention_mask, word_index, word_counts, type_index, label_vecs) -> torch.Tensor:
        """Logits (B, W, C, 3): start, end, inside, against label_vecs (B, C, D)."""
        return self.scorer(self.word_vectors(input_ids, attention_mask, word_index, word_counts, type_index), label_vecs)

