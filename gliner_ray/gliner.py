"""``GLiNER``: a checkpoint's model and tokenizer together, with ``predict`` over texts of any length."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import AutoModel, AutoTokenizer

from . import checkpoint
from .decode import Span, greedy_decode
from .encoding import Batch, PromptTokenizer, Row
from .model import GLiNERConfig, GLiNERModel, span_mask
from .text import clean_labels, word_splitter


class GLiNER:
    """Open-type NER: ``GLiNER.from_pretrained("urchade/gliner_small-v2.1").predict(texts, ["person", ...])``."""

    prompt_tokenizer_class = PromptTokenizer  # how the family lays out model inputs (bi-encoders: no label prompt)

    def __init__(self, model: GLiNERModel, tokenizer, config: GLiNERConfig):
        self.model = model
        self.config = config
        self.tokenizer = tokenizer
        self.prompt_tokenizer = self.prompt_tokenizer_class.for_encoder(tokenizer, config, model.encoder.config)
        self.split_words = word_splitter(config.words_splitter_type)

    # ---- loading and saving -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        cache_dir: str | None = None,
        revision: str | None = None,
    ) -> "GLiNER":
        """Load a hub id or a local checkpoint directory (either config generation), strictly. The result is the
        ``GLiNER`` class of the checkpoint's family (token-level, bi-encoder...: see ``gliner_ray.models``)."""
        from .models import family_of

        path = checkpoint.resolve_checkpoint_dir(name_or_path, cache_dir=cache_dir, revision=revision)
        config = checkpoint.read_config(path)
        tokenizer = checkpoint.load_tokenizer(config, path)
        ent_id = tokenizer.convert_tokens_to_ids(config.ent_token)
        if config.class_token_index not in (-1, ent_id):
            raise ValueError(
                f"{path}: class_token_index={config.class_token_index} in {checkpoint.CONFIG_FILE} but the tokenizer "
                f"gives {config.ent_token!r} id {ent_id}; the tokenizer files do not belong to these weights"
            )
        config.class_token_index = ent_id
        model = checkpoint.build_model(config, tokenizer)
        checkpoint.load_weights_strictly(model, checkpoint.read_state_dict(path))
        extras = {"labels_tokenizer": checkpoint.load_labels_tokenizer(config, path)} if config.labels_encoder else {}
        return family_of(config).predictor(model, tokenizer, config, **extras).to(device, dtype)

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
    ) -> "GLiNER":
        """A fresh GLiNER on a pretrained encoder (for training): new span, type and LSTM layers.

        ``hidden_size`` defaults to the encoder's width (no projection layer).
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

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "GLiNER":
        """Move to ``device`` (default: CUDA when present) and optionally cast to ``dtype`` (bf16/fp16 on GPU)."""
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
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
        if isinstance(texts, str):
            texts = [texts]
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(f"texts[{i}] is a {type(text).__name__}, not a string")
        split = [self.split_words(text) for text in texts]
        spans = self.predict_words([s.words for s in split], labels, threshold, flat_ner, multi_label, batch_size)
        results = []
        for text, words, doc_spans in zip(texts, split, spans):
            entities = []
            for span in doc_spans:
                start, end = words.starts[span.start], words.ends[span.end]
                entities.append(
                    {"start": start, "end": end, "text": text[start:end], "label": span.label, "score": span.score}
                )
            results.append(entities)
        return results

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
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        label_sets = self._label_sets(labels, len(texts))
        rows = []
        for i, words in enumerate(texts):
            rows += self.prompt_tokenizer.rows(i, words, label_sets[i], self.config.max_len, self.config.max_width)
        candidates: list[list[Span]] = [[] for _ in texts]
        for row, spans in zip(rows, self.score_rows(rows, threshold, batch_size)):
            candidates[row.text_index] += spans
        return [greedy_decode(c, flat_ner=flat_ner, multi_label=multi_label) for c in candidates]

    @torch.inference_mode()
    def score_rows(self, rows: Sequence[Row], threshold: float, batch_size: int = 8) -> list[list[Span]]:
        """Candidate spans above ``threshold`` for each row, in text word indices, only those starting in the
        row's own part of its window. Rows run longest first in batches of ``batch_size``, so padding stays small."""
        self.model.eval()
        order = sorted(range(len(rows)), key=lambda i: -rows[i].num_tokens)
        results: list[list[Span]] = [[] for _ in rows]
        for first in range(0, len(order), batch_size):
            chunk = order[first : first + batch_size]
            batch = self.prompt_tokenizer.collate([rows[i].prompt for i in chunk], [rows[i].words for i in chunk])
            for b, word, end, type_, score in self._candidates(batch, [rows[i] for i in chunk], threshold):
                row = rows[chunk[b]]
                start = row.window.start + word
                if row.window.own_start <= start < row.window.own_end:
                    results[chunk[b]].append(Span(start, row.window.start + end, row.labels[type_], score))
        return results

    def _candidates(self, batch: Batch, rows: Sequence[Row], threshold: float) -> list[tuple[int, int, int, int, float]]:
        """(row of the batch, start word, end word inclusive, type, probability) of every span above ``threshold``,
        word indices within the row. Each family's ``GLiNER`` class scores its own way (see ``gliner_ray.models``)."""
        logits = self.model(**batch.to(self.device).model_inputs())
        return self.read_candidates(logits, batch.word_counts, batch.type_counts, threshold)

    @staticmethod
    def read_candidates(logits: torch.Tensor, word_counts: torch.Tensor, type_counts: torch.Tensor,
                        threshold: float) -> list[tuple[int, int, int, int, float]]:
        """Span logits (B, W, K, C) -> ``_candidates``' tuples; spans past a row's words and types are ignored."""
        probs = torch.sigmoid(logits.float())
        valid = span_mask(word_counts, probs.shape[1], probs.shape[2]).unsqueeze(-1)
        valid = valid & (torch.arange(probs.shape[3]) < type_counts.view(-1, 1, 1, 1))
        probs = probs.masked_fill(~valid.to(probs.device), 0.0)
        above = probs > threshold
        hits, scores = above.nonzero().tolist(), probs[above].tolist()
        return [(b, word, word + width, type_, score) for (b, word, width, type_), score in zip(hits, scores)]

    @staticmethod
    def _label_sets(labels: Sequence[str] | Sequence[Sequence[str]], num_texts: int) -> list[list[str]]:
        """One cleaned label list per text, from a shared list or per-text lists."""
        if labels and not isinstance(labels, str) and all(isinstance(x, (list, tuple)) for x in labels):
            if len(labels) != num_texts:
                raise ValueError(f"got {len(labels)} label lists for {num_texts} texts: give one list per text, or one shared list")
            return [clean_labels(x) for x in labels]
        shared = clean_labels(labels)
        return [shared] * num_texts
