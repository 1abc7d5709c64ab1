"""The model actor of an extraction: scores a chunk's planned documents, decodes their mentions (and relations) as
``GLiNER.predict`` does, maps words to character offsets and stages the chunk's tables (store.stage)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pyarrow as pa

from .. import corpus
from ..decode import Relation, RelationCandidate, Span, decode_relations, greedy_decode
from ..encoding import Row, TokenizedText, window_rows
from ..predict import GLiNER
from ..slicing import plan_slices
from ..text import Window, split_in_pieces
from ..timing import lap
from .chunks import Document, unpack_chunk, unpack_documents
from .label_sets import label_set_names, labels_of
from .settings import Settings
from .store import ERROR_SCHEMA, MENTION_SCHEMA, RELATION_SCHEMA, Store, stage

SLICE_WORDS = 1 << 14  # words planned and scored at once in a long document (about 45 windows)
MAX_LABEL_SETS = 4096  # label sets whose passes an actor keeps (--labels-field), the cache cleared beyond


class ScoreChunks:
    """A model actor: loads the checkpoint once, then scores, decodes and writes one chunk per call.

    Beside GPU actors two calls run at once, in threads: the model is behind a lock, so while one call holds it
    for its forward passes the other unpacks its chunk, decodes and writes, and the model never waits on them.
    ``model_busy`` is the share of the actor's time spent inside forward passes."""

    def __init__(self, settings: Settings, output_uri: str, batch_size: int | None, threads: int,
                 slice_words: int = SLICE_WORDS, max_tokens: int | None = None):
        import torch

        torch.set_num_threads(threads)
        self.settings = settings
        self.batch_size, self.max_tokens = batch_size, max_tokens  # rows, padded sub-tokens per forward pass
        self.slice_words = slice_words
        self.model = GLiNER.from_pretrained(settings.model, dtype=settings.precision)
        # Per label set (the run's, or with --labels-field each document's own): its label passes (labels too many
        # for one prompt) and their prompts; every window of a document is scored once per pass of its set.
        self.passes: dict[tuple[str, ...], list[tuple[tuple[str, ...], list[list[int]]]]] = {}
        if settings.labels:
            self.model.prepare_labels(settings.labels)  # bi-encoders: the label vectors, once for the whole corpus
        self.store = Store(output_uri)
        self.model_lock = threading.Lock()
        self.actor = uuid.uuid4().hex
        self.started: float | None = None
        self.forward_seconds = 0.0

    def __call__(self, chunks: pa.Table) -> pa.Table:
        """One summary row per chunk row (Ray Data hands a batch of one)."""
        if self.started is None:
            self.started = time.perf_counter()
        return pa.Table.from_pylist([self.process(chunks.slice(i, 1)) for i in range(chunks.num_rows)])

    def process(self, chunk: pa.Table) -> dict[str, Any]:
        """Score one chunk row, write its staged files, and report its counts and where its time went."""
        info, documents, errors, seconds = unpack_chunk(chunk)
        mentions, relations, words = self.mentions(documents, seconds)
        dropped_pairs = seconds.pop("dropped_pairs", 0)  # counted beside the stage times while scoring
        # Counted in _score (sub-tokens through the model, without and with padding), reported apart from the seconds
        tokens, padded_tokens = seconds.pop("tokens", 0), seconds.pop("padded_tokens", 0)
        tick = time.perf_counter()
        errors = pa.Table.from_pylist([{"source": info["source"], **e} for e in errors], schema=ERROR_SCHEMA)
        tables = {"mentions": mentions, "relations": relations, "errors": errors}
        stage(self.store, info["shard"], info["chunk"], tables, self.settings.metadata())
        lap(seconds, "write", tick)
        return {
            **info, "documents": len(documents) + len(errors), "failed": len(errors),
            "mentions": mentions.num_rows, "relations": relations.num_rows, "dropped_pairs": dropped_pairs, "words": words, "seconds": json.dumps(seconds), "actor": self.actor,
            "tokens": tokens, "padded_tokens": padded_tokens,
            "actor_forward": self.forward_seconds, "actor_elapsed": time.perf_counter() - self.started,
            "actor_label_encoder_runs": self.model.label_encoder_runs,
            "damaged": any(reason.startswith(corpus.DAMAGED) for reason in errors["reason"].to_pylist()),
            "label_sets": json.dumps(label_set_names(x for x in documents.field("labels").to_pylist() if x is not None)),
        }

    def mentions(self, documents: pa.StructArray, seconds: dict[str, float]) -> tuple[pa.Table, pa.Table, int]:
        """Entity mentions of the chunk's documents, exactly as ``GLiNER.predict`` finds them, their relations (as
        ``predict_relations`` finds them; none unless ``--relations``), and their words."""
        tick = time.perf_counter()
        docs = unpack_documents(documents)
        rows = [row for d, doc in enumerate(docs) for row in self._rows(d, doc.tokens, doc.windows, doc.labels)]
        lap(seconds, "unpack", tick)
        found, pairs, char_offsets, words = self._candidates(docs, rows, seconds)
        tick = time.perf_counter()
        kept, relations = self._decode(found, pairs)
        tables = _mention_table(docs, char_offsets, kept), _relation_table(docs, char_offsets, relations)
        lap(seconds, "decode", tick)
        return *tables, words

    def _candidates(self, docs: list[Document], rows: list[Row], seconds: dict[str, float]) -> tuple[list, list, list, int]:
        """Per document: its candidate spans, its relation candidates, and the character offsets of each word's
        start and end (of the candidates' words only, for a sliced document); and the words scored in all."""
        scored, scored_pairs = self._score(rows, seconds)
        tick = time.perf_counter()
        found: list[list[Span]] = [[] for _ in docs]
        pairs: list[list[RelationCandidate]] = [[] for _ in docs]
        for row, spans, row_pairs in zip(rows, scored, scored_pairs):
            found[row.text_index].extend(spans)
            pairs[row.text_index].extend(row_pairs)
        char_offsets: list[tuple] = [({}, {}) if doc.sliced else (doc.word_starts, doc.word_ends) for doc in docs]
        words = sum(len(doc.word_starts) for doc in docs)
        lap(seconds, "decode", tick)
        for d, doc in enumerate(docs):
            if doc.sliced:
                words += self._score_slices(d, doc.text, found[d], pairs[d], char_offsets[d], seconds, doc.labels)
        return found, pairs, char_offsets, words

    def _rows(self, d: int, text: TokenizedText, windows: list[Window], own_labels: tuple[str, ...] | None,
              first_word: int = 0) -> list[Row]:
        """The model rows of document ``d``: each of its windows once per label pass of its label set. Documents
        with the same set share prompts; their rows, like all the chunk's, share forward passes (``_score``)."""
        return [row for labels, prompt in self._passes(labels_of(self.settings, own_labels))
                for row in window_rows(d, text, windows, labels, prompt, self.settings.relations, first_word)]

    def _passes(self, labels: tuple[str, ...]) -> list[tuple[tuple[str, ...], list[list[int]]]]:
        """The label passes of a label set and their prompts, kept per set (bi-encoders keep each label's vector:
        ``encode_labels``)."""
        passes = self.passes.get(labels)  # two calls may run at once (threads): no lookup after a clear
        if passes is None:
            if len(self.passes) >= MAX_LABEL_SETS:
                self.passes.clear()
            tokenizer, relations = self.model.prompt_tokenizer, self.settings.relations
            passes = self.passes[labels] = [(group, tokenizer.prompt_token_ids(group, relations))
                                            for group in tokenizer.label_passes(labels, relations)]
        return passes

    def _decode(self, found: list[list[Span]], pairs: list[list[RelationCandidate]]) -> tuple[list, list]:
        """The mentions each document keeps (greedy decoding) and the relations between them, as (document, Span)
        and (document, Relation) pairs."""
        kept, relations = [], []
        for d, candidates in enumerate(found):
            spans = greedy_decode(candidates, flat_ner=self.settings.flat_ner, multi_label=self.settings.multi_label)
            kept += [(d, span) for span in spans]
            if pairs[d]:
                relations += [(d, relation) for relation in decode_relations(pairs[d], spans)]
        return kept, relations

    def _score(self, rows: list, seconds: dict[str, float]) -> tuple[list[list], list[list]]:
        """The candidate spans and relation candidates (with ``--relations``; else none) of each row, holding the
        model (and counting its busy time)."""
        settings = self.settings
        with self.model_lock:
            forward_before = seconds.get("forward", 0.0)
            tokens_before, padded_before = self.model.tokens_scored, self.model.padded_tokens_scored
            if settings.relations:
                dropped_before = self.model.dropped_pairs
                scored, pairs = self.model.score_relation_rows(
                    rows, settings.threshold, relation_threshold=settings.relation_threshold,
                    batch_size=self.batch_size, seconds=seconds, max_pairs=settings.max_pairs,
                    max_tokens=self.max_tokens)
                seconds["dropped_pairs"] = seconds.get("dropped_pairs", 0) + self.model.dropped_pairs - dropped_before
            else:
                scored = self.model.score_rows(rows, settings.threshold, self.batch_size, seconds, self.max_tokens)
                pairs = [[] for _ in rows]
            self.forward_seconds += seconds.get("forward", 0.0) - forward_before
            seconds["tokens"] = seconds.get("tokens", 0) + self.model.tokens_scored - tokens_before
            seconds["padded_tokens"] = seconds.get("padded_tokens", 0) + self.model.padded_tokens_scored - padded_before
        return scored, pairs

    def _score_slices(self, d: int, text: str, found: list, pairs: list, char_offsets: tuple[dict, dict],
                      seconds: dict[str, float], own_labels: tuple[str, ...] | None = None) -> int:
        """Score a long document slice by slice (``slicing.plan_slices``): the candidates (and relation
        candidates), exactly those of the whole document, join ``found`` (and ``pairs``), and the character offsets
        of their first and last words join ``char_offsets``, so decoding runs over the whole document as for any
        other. Returns its words."""
        tokenizer, config = self.model.prompt_tokenizer, self.model.config
        budget = tokenizer.window_budget(labels_of(self.settings, own_labels), self.settings.relations)
        # Pieces of as many characters as a slice has words: a slice gathers a few.
        pieces = split_in_pieces(self.model.split_words, text, self.slice_words)
        first_chars, last_chars = char_offsets
        words, tick = 0, time.perf_counter()
        for part in plan_slices(tokenizer, pieces, budget, config.max_len, config.max_width, self.slice_words):
            rows = self._rows(d, part.text, part.windows, own_labels, part.first_word)
            lap(seconds, "plan", tick)
            scored, scored_pairs = self._score(rows, seconds)
            for spans in scored:
                for span in spans:
                    first_chars[span.start] = part.word_starts[span.start - part.first_word]
                    last_chars[span.end] = part.word_ends[span.end - part.first_word]
                found.extend(spans)
            for row_pairs in scored_pairs:
                pairs.extend(row_pairs)
            words, tick = part.first_word + len(part.word_starts), time.perf_counter()
        return words


def _mention_table(docs: list[Document], char_offsets: list[tuple], kept: list[tuple[int, Span]]) -> pa.Table:
    return pa.table({"doc_id": _doc_ids(docs, kept), **_located("", docs, char_offsets, kept),
                     "score": pa.array([span.score for _, span in kept], pa.float32())}, schema=MENTION_SCHEMA)


def _relation_table(docs: list[Document], char_offsets: list[tuple], relations: list[tuple[int, Relation]]) -> pa.Table:
    return pa.table(
        {"doc_id": _doc_ids(docs, relations), **_located("head_", docs, char_offsets, [(d, r.head) for d, r in relations]),
         **_located("tail_", docs, char_offsets, [(d, r.tail) for d, r in relations]),
         "relation": pa.array([r.relation for _, r in relations], pa.string()),
         "score": pa.array([r.score for _, r in relations], pa.float32())},
        schema=RELATION_SCHEMA,
    )


def _located(prefix: str, docs: list[Document], char_offsets: list[tuple], found: list[tuple[int, Span]]) -> dict[str, Any]:
    """Columns start, end, span, label of decoded spans: their words' character offsets, the text covered."""
    starts = [int(char_offsets[d][0][span.start]) for d, span in found]
    ends = [int(char_offsets[d][1][span.end]) for d, span in found]
    return {f"{prefix}start": pa.array(starts, pa.int64()), f"{prefix}end": pa.array(ends, pa.int64()),
            f"{prefix}span": [docs[d].text[a:b] for (d, _), a, b in zip(found, starts, ends)],
            f"{prefix}label": pa.array([span.label for _, span in found], pa.string())}


def _doc_ids(docs: list[Document], found: list[tuple[int, Any]]) -> pa.Array:
    return pa.array([docs[d].doc_id for d, _ in found], pa.string())
