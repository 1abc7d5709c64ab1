"""Bi-encoder GLiNER (``labels_encoder`` in the config): a second encoder embeds each label on its own, so the
text goes through the text encoder without a label prompt.

    label vector q_t = mean over the tokens of labels_encoder([CLS] label [SEP]) (then a linear map to D)
    span variant:  scores as uni-encoder span models, with type vectors type_ffn(q_t)
    token variant: scores as token-level models, with type vectors q_t

The word vectors are the encoder's, without the BiLSTM: the reference library (0.2.29) builds one for these models
and saves its weights, but never applies it, and its bi-encoder checkpoints were trained that way.

A label's vector depends on that label alone, so it is computed once per ``BiEncoderGLiNER`` and reused by every
later call (``encode_labels``); the cost of a text no longer grows with the number of labels in its prompt, and a
text window is as long as the text encoder allows.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..encoding import Batch, PromptTokenizer, Row, row_sizes
from ..gliner import GLiNER
from .span import GLiNERModel
from .token import TokenModel, append_token_spans


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


class BiEncoderSpanModel(WithLabelEncoder, GLiNERModel):
    """Text encoder + span head, type FFN over label vectors from the label encoder."""

    def forward(self, input_ids, attention_mask, word_index, word_counts, type_index, label_vecs) -> torch.Tensor:
        """Span logits (B, W, max_width, C) against label_vecs (B, C, D) from ``label_encoder``."""
        word_vecs = self.word_vectors(input_ids, attention_mask, word_index, word_counts, type_index)
        return self.span_head(word_vecs, self.type_ffn(label_vecs), word_counts)


class BiEncoderTokenModel(WithLabelEncoder, TokenModel):
    """Text encoder + token scorer over label vectors from the label encoder."""

    def forward(self, input_ids, attention_mask, word_index, word_counts, type_index, label_vecs) -> torch.Tensor:
        """Logits (B, W, C, 3): start, end, inside, against label_vecs (B, C, D)."""
        return self.scorer(self.word_vectors(input_ids, attention_mask, word_index, word_counts, type_index), label_vecs)


class TextOnlyTokenizer(PromptTokenizer):
    """Model inputs without a label prompt: [CLS] words [SEP]."""

    def prompt_token_ids(self, labels: Sequence[str], relations: Sequence[str] = ()) -> list[list[int]]:
        return []


class BiEncoderGLiNER(GLiNER):
    """``GLiNER`` for bi-encoder span checkpoints; label vectors are computed once per label and kept."""

    LABEL_BATCH = 64  # labels per forward pass of the label encoder
    MAX_CACHED_LABELS = 100_000
    prompt_tokenizer_class = TextOnlyTokenizer

    def __init__(self, model: nn.Module, tokenizer, config, labels_tokenizer):
        super().__init__(model, tokenizer, config)
        self.labels_tokenizer = labels_tokenizer
        self.label_vectors: dict[str, torch.Tensor] = {}
        self.label_encoder_runs = 0

    def prepare_labels(self, labels: Sequence[str]) -> None:
        """Encode these labels now, so that later calls with them never run the label encoder."""
        self.encode_labels(labels)

    @torch.inference_mode()
    def encode_labels(self, labels: Sequence[str]) -> torch.Tensor:
        """Vectors (len(labels), D) of these labels, computed only for labels not seen before."""
        missing = [label for label in dict.fromkeys(labels) if label not in self.label_vectors]
        if len(self.label_vectors) + len(missing) > self.MAX_CACHED_LABELS:
            self.label_vectors.clear()
            missing = list(dict.fromkeys(labels))
        self.model.eval()
        for first in range(0, len(missing), self.LABEL_BATCH):
            chunk = missing[first : first + self.LABEL_BATCH]
            tokens = self.labels_tokenizer(chunk, return_tensors="pt", truncation=True, padding="longest")
            vectors = self.model.label_encoder(tokens["input_ids"].to(self.device),
                                               tokens["attention_mask"].to(self.device))
            self.label_vectors.update(zip(chunk, vectors))
            self.label_encoder_runs += 1
        return torch.stack([self.label_vectors[label] for label in labels])

    def forward(self, batch: Batch, rows: Sequence[Row]) -> torch.Tensor:
        """Logits with each row's label vectors (cached: the label encoder runs only for labels not seen yet)."""
        type_counts = row_sizes(rows)[1]
        label_vecs = torch.zeros(len(rows), int(type_counts.max()), self.model.config.hidden_size, device=self.device,
                                 dtype=next(self.model.parameters()).dtype)
        for b, row in enumerate(rows):
            label_vecs[b, : len(row.labels)] = self.encode_labels(row.labels)
        return self.model(**batch.to(self.device).model_inputs(), label_vecs=label_vecs)

    def save_pretrained(self, path) -> None:
        super().save_pretrained(path)
        self.labels_tokenizer.save_pretrained(f"{path}/labels_tokenizer")


class BiEncoderTokenGLiNER(BiEncoderGLiNER):
    """``GLiNER`` for bi-encoder token-level checkpoints."""

    _candidates = staticmethod(append_token_spans)
