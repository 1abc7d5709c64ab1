"""``GLiNER``: a checkpoint's model and tokenizer together, with ``predict`` over texts of any length."""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from .. import checkpoint
from ..checks import check_at_least, check_threshold
from ..decode import Span, greedy_decode
from ..encoding import Batch, PromptTokenizer, Row
from ..model import GLiNERConfig
from ..models.span import GLiNERModel
from ..precision import inference_dtype
from ..text import clean_labels, word_splitter
from ..timing import lap

logger = logging.getLogger(__name__)


def logit_cut(threshold: float) -> float:
    """A cut on logits that every logit whose sigmoid passes ``threshold`` is above: log(t / (1 - t)), taken a
    few float32 steps below t so that rounding in the sigmoid never drops a span (survivors are tested exactly)."""
    low = np.float32(threshold)
    for _ in range(4):
        low = np.nextafter(low, np.float32(0))
    if low <= 0:
        return -math.inf
    cut = math.log(float(low)) - math.log1p(-float(low))
    return cut - 1e-6 * (1 + abs(cut))  # and below the float32 rounding of the cut itself


class GLiNER:
    """Open-type NER: ``GLiNER.from_pretrained("urchade/gliner_small-v2.1").predict(texts, ["person", ...])``."""

    prompt_tokenizer_class = PromptTokenizer  # how the family lays out model inputs (bi-encoders: no label prompt)
    label_encoder_runs = 0  # forward passes of a labels encoder so far (bi-encoders; uni-encoders have none)
    tokens_scored = padded_tokens_scored = 0  # sub-tokens through forward passes so far, without and with padding

    def __init__(self, model: GLiNERModel, tokenizer, config: GLiNERConfig):
        self.model = model
        self.config = config
        self.tokenizer = tokenizer
        self.prompt_tokenizer = self.prompt_tokenizer_class.for_encoder(tokenizer, config, model.encoder.config)
        self.split_words = word_splitter(config.words_splitter_type)

    def prepare_labels(self, labels: Sequence[str]) -> None:
        """Compute ahead what depends on the labels alone (bi-encoders: their vectors); nothing for uni-encoders."""

    # ---- loading and saving -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        cache_dir: str | None = None,
        revision: str | None = None,
    ) -> "GLiNER":
        """Load a hub id or a local checkpoint directory (either config generation), strictly. The result is the
        ``GLiNER`` class of the checkpoint's family (token-level, bi-encoder...: see ``predict/families.py``).
        ``dtype``: a torch dtype or a precision name (``auto``, ``bf16``, ``fp16``, ``fp32``; see ``precision.py``);
        None is fp32."""
        # The one import upwards in predict/: the base class hands out its subclasses, and the family table that
        # names them (families.py) imports them, so it is read when a checkpoint is loaded, not when this loads.
        from .families import load_predictor

        return load_predictor(name_or_path, device, dtype, cache_dir, revision)

    @classmethod
    def from_backbone(
        cls,
        encoder_name_or_path: str | os.PathLike,
        hidden_size: int | None = None,
        max_width: int = 12,
        dropout: float = 0.4,
        span_mode: str = "markerV0",
        max_len: int = 384,
        device: str | torch.device | None = None,
        num_rnn_layers: int = 1,
    ) -> "GLiNER":
        """A fresh GLiNER on a pretrained encoder (for training): new span, type and LSTM layers.

        ``hidden_size`` defaults to the encoder's width (no projection layer); ``num_rnn_layers=0``: no BiLSTM.
        """
        encoder = AutoModel.from_pretrained(encoder_name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(encoder_name_or_path)
        config = GLiNERConfig(
            model_name=str(encoder_name_or_path),
            hidden_size=hidden_size or encoder.config.hidden_size,
            max_width=max_width,
            span_mode=span_mode,
            dropout=dropout,
            max_len=max_len,
            num_rnn_layers=num_rnn_layers,
        )
        config.check_supported()
        tokenizer.add_tokens([*checkpoint.ADDED_TOKENS, config.ent_token, config.sep_token], special_tokens=True)
        encoder.resize_token_embeddings(len(tokenizer))
        config.class_token_index = tokenizer.convert_tokens_to_ids(config.ent_token)
        config.vocab_size = len(tokenizer)
        config.encoder_config = encoder.config.to_dict()
        return cls(GLiNERModel(config, encoder), tokenizer, config).to(device)

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write a checkpoint that both ``GLiNER.from_pretrained`` and the reference library load."""
        checkpoint.save_checkpoint(self.model, self.tokenizer, self.config, Path(path))

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | str | None = None) -> "GLiNER":
        """Move to ``device`` (default: CUDA when present) and cast to ``dtype`` (a torch dtype or a precision
        name: ``auto`` is bf16 where native, fp16 on older GPUs, fp32 elsewhere); None keeps the weights' dtype.
        A precision the device cannot compute natively is a ValueError naming the alternative."""
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype is not None:
            dtype = inference_dtype(dtype, device)
        self.model.to(device=device, dtype=dtype)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ---- prediction -----------------------------------------------------------------------------------------
    def predict(
        self,
        texts: Sequence[str] | str,
        labels: Sequence[str] | Sequence[Sequence[str]],
        threshold: float = 0.5,
        flat_ner: bool = True,
        multi_label: bool = False,
        batch_size: int = 8,
    ) -> list[list[dict[str, Any]]]:
        """Entities of each text as ``{"start", "end", "text", "label", "score"}``, character offsets, end exclusive.

        ``labels`` is one list for all texts or one list per text. Texts longer than the model's window are
        cut into overlapping windows and merged back, so nothing is lost.
        """
        texts, split = self.split_texts(texts)
        spans = self.predict_words([s.words for s in split], labels, threshold, flat_ner, multi_label, batch_size)
        return [[self.entity_dict(text, words, span) for span in doc_spans]
                for text, words, doc_spans in zip(texts, split, spans)]

    def split_texts(self, texts: Sequence[str] | str) -> tuple[Sequence[str], list]:
        """The texts as a list, and each split into words with character offsets (the checkpoint's splitter)."""
        if isinstance(texts, str):
            texts = [texts]
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(f"texts[{i}] is a {type(text).__name__}, not a string")
        return texts, [self.split_words(text) for text in texts]

    @staticmethod
    def entity_dict(text: str, words, span: Span) -> dict[str, Any]:
        """A decoded span of ``text`` (split into ``words``) as the entity dict ``predict`` returns."""
        start, end = words.starts[span.start], words.ends[span.end]
        return {"start": start, "end": end, "text": text[start:end], "label": span.label, "score": span.score}

    @torch.inference_mode()
    def predict_words(
        self,
        texts: Sequence[Sequence[str]],
        labels: Sequence[str] | Sequence[Sequence[str]],
        threshold: float = 0.5,
        flat_ner: bool = True,
        multi_label: bool = False,
        batch_size: int = 8,
    ) -> list[list[Span]]:
        """Entities of each pre-split text as ``Span(start_word, end_word_inclusive, label, score)``."""
        check_threshold(threshold, "threshold")
        check_at_least(batch_size, "batch_size")
        label_sets = self._label_sets(labels, len(texts))
        rows = []
        for i, words in enumerate(texts):
            rows += self.prompt_tokenizer.rows(i, words, label_sets[i], self.config.max_len, self.config.max_width)
        self.log_label_passes(label_sets)
        candidates: list[list[Span]] = [[] for _ in texts]
        for row, spans in zip(rows, self.score_rows(rows, threshold, batch_size)):
            candidates[row.text_index] += spans
        return [greedy_decode(c, flat_ner=flat_ner, multi_label=multi_label) for c in candidates]

    def log_label_passes(self, label_sets: Sequence[Sequence[str]]) -> int:
        """The most label passes any of these label lists needs (``PromptTokenizer.label_passes``), logged when over 1."""
        passes = max((len(self.prompt_tokenizer.label_passes(labels)) for labels in {tuple(x) for x in label_sets}), default=1)
        if passes > 1:
            logger.info("%d entity types do not fit one prompt: each window is scored in %d label passes",
                        max(map(len, label_sets)), passes)
        return passes

    @torch.inference_mode()
    def score_rows(
        self, rows: Sequence[Row], threshold: float, batch_size: int | None = 8,
        seconds: dict[str, float] | None = None, max_tokens: int | None = None,
    ) -> list[list[Span]]:
        """Candidate spans above ``threshold`` for each row, in text word indices, only those starting in the
        row's own part of its window. Rows run longest first in batches of ``batch_size`` rows, or of up to
        ``max_tokens`` padded sub-tokens (``plan_batches``), so padding stays small. ``seconds`` (optional)
        accumulates the time spent to collate, in the forward pass and picking candidates."""
        results: list[list[Span]] = [[] for _ in rows]
        for chunk, batch_rows, logits in self.forward_batches(rows, batch_size, seconds, max_tokens):
            tick = time.perf_counter()
            self._candidates(logits, batch_rows, threshold, [results[i] for i in chunk])
            lap(seconds, "candidates", tick)
        return results

    def forward_batches(
        self, rows: Sequence[Row], batch_size: int | None, seconds: dict[str, float] | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[tuple[list[int], list[Row], Any]]:
        """(indices into ``rows``, those rows, the model's output) per batch, longest rows first. Counts the
        sub-tokens scored, and those of the padded batches, in ``tokens_scored`` and ``padded_tokens_scored``."""
        self.model.eval()
        ends = len(self.prompt_tokenizer.prefix) + len(self.prompt_tokenizer.suffix)
        synchronize = seconds is not None and self.device.type == "cuda"  # time the forward, not its launch
        for chunk in plan_batches([row.num_tokens + ends for row in rows], batch_size, max_tokens):
            tick = time.perf_counter()
            batch_rows = [rows[i] for i in chunk]
            batch = self.prompt_tokenizer.collate_rows(batch_rows)
            self.tokens_scored += int(batch.attention_mask.sum())
            self.padded_tokens_scored += batch.input_ids.numel()
            tick = lap(seconds, "collate", tick)
            output = self.forward(batch, batch_rows)
            if synchronize:
                torch.cuda.synchronize()
            lap(seconds, "forward", tick)
            yield chunk, batch_rows, output

    def forward(self, batch: Batch, rows: Sequence[Row]) -> torch.Tensor:
        """The model's logits for a collated batch of ``rows``; bi-encoders add their cached label vectors."""
        return self.model(**batch.to(self.device).model_inputs())

    @staticmethod
    def _candidates(logits: torch.Tensor, rows: Sequence[Row], threshold: float, out: list[list[Span]],
                    first_type: int = 0, first_width: int = 0) -> None:
        """Append to ``out[b]`` the spans of row b scoring above ``threshold``: inside the text, of one of its
        labels, starting in the row's own word range. ``logits`` (B, W, k, c) score widths ``first_width`` ..
        ``+ k`` against the row's labels ``first_type`` .. ``+ c`` (bi-encoders score a block at a time). The logits
        are compared once with the threshold's logit (``logit_cut``; the sigmoid is monotonic), then only those few
        are checked and scored, exactly as ``sigmoid(logit) > threshold``. Each family reads its own logits
        (token-level models: see ``predict/token.py``)."""
        hits = (logits.float() > logit_cut(threshold)).nonzero()
        if not len(hits):
            return
        scores = torch.sigmoid(logits[tuple(hits.T)].float()).cpu().numpy()
        b, word, width, type_ = hits.cpu().numpy().T
        window_start = np.array([row.window.start for row in rows])
        own_start = np.array([row.window.own_start for row in rows]) - window_start
        own_end = np.array([row.window.own_end for row in rows]) - window_start
        word_counts = np.array([len(row.word_starts) for row in rows])
        type_counts = np.array([len(row.labels) for row in rows])
        keep = ((scores > threshold) & (word >= own_start[b]) & (word < own_end[b])
                & (word + first_width + width < word_counts[b]) & (first_type + type_ < type_counts[b]))
        b, word, width, type_, scores = b[keep], word[keep], width[keep], type_[keep], scores[keep].tolist()
        starts = window_start[b] + word
        ends = (starts + first_width + width).tolist()
        starts = starts.tolist()
        bounds = np.searchsorted(b, np.arange(len(rows) + 1))  # nonzero() is ordered by row
        for k, row in enumerate(rows):
            lo, hi = bounds[k], bounds[k + 1]
            if lo < hi:
                labels = [row.labels[first_type + t] for t in type_[lo:hi].tolist()]
                out[k].extend(map(Span, starts[lo:hi], ends[lo:hi], labels, scores[lo:hi]))

    @staticmethod
    def _label_sets(labels: Sequence[str] | Sequence[Sequence[str]], num_texts: int) -> list[list[str]]:
        """One cleaned label list per text, from a shared list or per-text lists."""
        if labels and not isinstance(labels, str) and all(isinstance(x, (list, tuple)) for x in labels):
            if len(labels) != num_texts:
                raise ValueError(f"got {len(labels)} label lists for {num_texts} texts: give one list per text, or one shared list")
            return [clean_labels(x) for x in labels]
        shared = clean_labels(labels)
        return [shared] * num_texts


def plan_batches(num_tokens: Sequence[int], batch_size: int | None, max_tokens: int | None = None) -> list[list[int]]:
    """Row indices per batch, longest rows first: ``batch_size`` rows a batch, or with ``max_tokens`` as many as
    fit in that many sub-tokens once padded to the batch's longest row (at least one; at most ``batch_size``
    when both are given). Rows of like length then share a batch, so batches are full and padding small."""
    if not batch_size and not max_tokens:
        raise ValueError("give a batch size, a token budget per batch, or both")
    order = sorted(range(len(num_tokens)), key=lambda i: -num_tokens[i])
    batches, first = [], 0
    while first < len(order):
        size = batch_size or len(order)
        if max_tokens:
            size = min(size, max(1, max_tokens // max(1, num_tokens[order[first]])))
        batches.append(order[first : first + size])
        first += size
    return batches
