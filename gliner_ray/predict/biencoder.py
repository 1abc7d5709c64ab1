"""Bi-encoder GLiNER predictors (``BiEncoderSpanModel``, ``BiEncoderTokenModel``): texts carry no label prompt.

A label's vector depends on that label alone, so it is computed once per ``BiEncoderGLiNER`` and reused by every
later call (``encode_labels``); the cost of a text no longer grows with the number of labels in its prompt, and a
text window is as long as the text encoder allows.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import torch
from torch import nn

from ..decode import Span
from ..encoding import Batch, PromptTokenizer, Row
from .base import GLiNER
from .token import append_token_spans


class TextOnlyTokenizer(PromptTokenizer):
    """Model inputs without a label prompt: [CLS] words [SEP]."""

    def prompt_token_ids(self, labels: Sequence[str], relations: Sequence[str] = ()) -> list[list[int]]:
        return []


class BiEncoderGLiNER(GLiNER):
    """``GLiNER`` for bi-encoder span checkpoints; label vectors are computed once per label and kept."""

    LABEL_BATCH = 64  # labels per forward pass of the label encoder
    label_block = 64  # labels scored at once: memory (B, W, max_width, label_block)
    MAX_CACHED_LABELS = 100_000
    prompt_tokenizer_class = TextOnlyTokenizer

    def __init__(self, model: nn.Module, tokenizer, config, labels_tokenizer):
        super().__init__(model, tokenizer, config)
        self.labels_tokenizer = labels_tokenizer
        self.label_vectors: dict[str, torch.Tensor] = {}
        self.label_encoder_runs = 0
        self._label_terms: tuple[tuple, list[torch.Tensor]] = ((), [])  # (labels, device, dtype), their terms

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

    def forward(self, batch: Batch, rows: Sequence[Row]) -> Iterator[tuple[dict[str, int], torch.Tensor]]:
        """The text side of the scores now, then lazily (offsets, logits) per block of ``label_block`` labels of
        each row (and per width, span models; ``model.score_blocks``): a block's logits are freed before the next
        is computed, so memory grows with the block, never with words x widths x labels."""
        labels, index = self.batch_labels(rows)
        words = self.model.word_terms(**batch.to(self.device).model_inputs())
        label_terms = self.label_terms(labels)
        index = index.to(self.device)
        return self.model.score_blocks(words, label_terms, index, self.label_block)

    def _candidates(self, blocks: Iterable[tuple[dict[str, int], torch.Tensor]], rows: Sequence[Row],
                    threshold: float, out: list[list[Span]]) -> None:
        """The candidates of each block in turn (``block_candidates`` at its offsets). A span's labels keep their
        order, so greedy decoding (by score, then position) keeps the entities of one pass."""
        for offsets, logits in blocks:
            self.block_candidates(logits, rows, threshold, out, **offsets)

    block_candidates = staticmethod(GLiNER._candidates)

    @staticmethod
    def batch_labels(rows: Sequence[Row]) -> tuple[tuple[str, ...], torch.Tensor]:
        """The distinct labels of these rows, and (B, C) where row b's label t is among them (0 past its labels)."""
        labels = tuple(dict.fromkeys(label for row in rows for label in row.labels))
        position = {label: u for u, label in enumerate(labels)}
        index = torch.zeros(len(rows), max(len(row.labels) for row in rows), dtype=torch.long)
        for b, row in enumerate(rows):
            index[b, : len(row.labels)] = torch.tensor([position[label] for label in row.labels])
        return labels, index

    def label_terms(self, labels: tuple[str, ...]) -> list[torch.Tensor]:
        """The labels' side of the scores (``model.label_terms`` of their cached vectors), kept for the last set."""
        key = (labels, self.device, next(self.model.parameters()).dtype)
        if self._label_terms[0] != key:
            self._label_terms = (key, self.model.label_terms(self.encode_labels(labels)))
        return self._label_terms[1]

    def save_pretrained(self, path) -> None:
        super().save_pretrained(path)
        self.labels_tokenizer.save_pretrained(f"{path}/labels_tokenizer")


class BiEncoderTokenGLiNER(BiEncoderGLiNER):
    """``GLiNER`` for bi-encoder token-level checkpoints."""

    block_candidates = staticmethod(append_token_spans)
