"""Bi-encoder GLiNER predictors (``BiEncoderSpanModel``, ``BiEncoderTokenModel``): texts carry no label prompt.

A label's vector depends on that label alone, so it is computed once per ``BiEncoderGLiNER`` and reused by every
later call (``encode_labels``); the cost of a text no longer grows with the number of labels in its prompt, and a
text window is as long as the text encoder allows.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..encoding import Batch, PromptTokenizer, Row, row_sizes
from .base import GLiNER
from .token import append_token_spans


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
