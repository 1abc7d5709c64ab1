"""The chunk format: a shard's records cut into chunks of planned documents, one Ray Data row each, and read back.

A chunk row holds ``shard``, ``source``, ``chunk`` (its number in the shard), ``last``, ``documents`` (a list of
DOCUMENT_TYPE), ``errors`` (the chunk's bad records) and ``seconds`` (JSON: time per stage so far). All windows of
a document, and all documents of a chunk, travel together. ``plan_chunk`` packs one in the CPU stage;
``unpack_chunk`` and ``unpack_documents`` read it back in the model actor.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any, Iterator, NamedTuple

import numpy as np
import pyarrow as pa

from .. import corpus, storage
from ..corpus import Record
from ..shards import Shard
from ..encoding import TokenizedText
from ..text import Window, plan_windows, sentence_ends, word_splitter
from ..timing import lap
from .label_sets import check_label_sets, labels_of
from .settings import Settings, prompt_tokenizer

# One planned document: its words' character offsets, its sub-tokens flat (word i is
# tokens[token_offsets[i]:token_offsets[i + 1]]) and its model windows. Built from numpy arrays, read back as them.
# A document over LONG_DOCUMENT_CHARS characters travels as text alone (``sliced``): the model actor plans and
# scores it in slices of about SLICE_WORDS words (scoring.py), so the actor's memory does not grow with a document's
# length. ``labels``: the document's own entity types (``--labels-field``; null: the run's ``--labels``).
WINDOW_TYPE = pa.struct([("start", pa.int32()), ("end", pa.int32()), ("own_start", pa.int32()), ("own_end", pa.int32())])
DOCUMENT_TYPE = pa.struct(
    [("doc_id", pa.string()), ("text", pa.string()), ("word_starts", pa.list_(pa.int32())),
     ("word_ends", pa.list_(pa.int32())), ("tokens", pa.list_(pa.int32())), ("token_offsets", pa.list_(pa.int32())),
     ("windows", pa.list_(WINDOW_TYPE)), ("sliced", pa.bool_()), ("labels", pa.list_(pa.string()))]
)
CHUNK_ERROR_TYPE = pa.struct([("row", pa.int64()), ("doc_id", pa.string()), ("reason", pa.string())])
HEADER = ("shard", "source", "chunk", "last")  # what the chunk's summary row repeats
INT_COLUMNS = ("word_starts", "word_ends", "tokens", "token_offsets")
CHUNK_MAX_CHARS = 1 << 22  # a chunk also ends once its documents hold this many characters
LONG_DOCUMENT_CHARS = 1 << 20


# ---- packing (the CPU stage) ----------------------------------------------------------------------------------
def read_chunks(shards: pa.Table, settings: Settings, chunk_size: int) -> Iterator[pa.Table]:
    """For each shard row, stream its records as chunk rows: documents planned for the model, failures kept."""
    for shard_row in shards.to_pylist():
        key = shard_row.pop("key")
        shard = Shard(**shard_row)
        fs, _ = storage.resolve(shard.uri)
        records = corpus.read_records(
            fs, shard, settings.id_field, settings.text_field, settings.max_chars, settings.max_record_bytes,
            settings.labels_field,
        )
        tick = time.perf_counter()
        for index, chunk, last in _cut(records, chunk_size):
            seconds = {"read": time.perf_counter() - tick}
            yield plan_chunk(key, shard.source, index, last, chunk, settings, seconds)
            tick = time.perf_counter()


def _cut(records: Iterator[Record], chunk_size: int) -> Iterator[tuple[int, list[Record], bool]]:
    """Consecutive chunks of at most ``chunk_size`` records (and about CHUNK_MAX_CHARS characters), each with its
    index and whether it is the shard's last. An empty shard still gives one (empty, last) chunk."""
    chunk, chars, index = [], 0, 0
    for record in records:
        if chunk and (len(chunk) >= chunk_size or chars >= CHUNK_MAX_CHARS):
            yield index, chunk, False
            chunk, chars, index = [], 0, index + 1
        chunk.append(record)
        chars += len(record.text or "")
    yield index, chunk, True


def plan_chunk(
    key: str, source: str, index: int, last: bool, records: list[Record], settings: Settings,
    seconds: dict[str, float] | None = None, long_chars: int = LONG_DOCUMENT_CHARS,
) -> pa.Table:
    """One chunk row: each document split into words, tokenized and cut into model windows, as flat Arrow arrays;
    a document over ``long_chars`` characters is left to the model actor to plan in slices (``sliced``).
    ``seconds`` accumulates the time per stage (split, tokenize, plan, arrow); it travels in the row."""
    seconds = {} if seconds is None else seconds
    records = check_label_sets(records, settings)
    documents = [r for r in records if r.error is None]
    columns = _plan_documents(documents, settings, long_chars, seconds)
    tick = time.perf_counter()
    errors = [{"row": r.row, "doc_id": r.doc_id, "reason": r.error} for r in records if r.error is not None]
    table = pa.table(
        {"shard": [key], "source": [source], "chunk": [index], "last": [last],
         "documents": pa.ListArray.from_arrays(pa.array([0, len(documents)], pa.int32()), _document_array(documents, columns)),
         "errors": pa.array([errors], pa.list_(CHUNK_ERROR_TYPE))}
    )
    lap(seconds, "arrow", tick)
    return table.append_column("seconds", pa.array([json.dumps(seconds)]))


def _plan_documents(documents: list[Record], settings: Settings, long_chars: int, seconds: dict[str, float]) -> dict[str, list]:
    """Per document, as the columns of DOCUMENT_TYPE: whether it is sliced, its words' character offsets, its
    sub-tokens and its windows (numpy arrays; empty for a sliced document)."""
    tokenizer, config = prompt_tokenizer(settings.model)
    overlap = 2 * config.max_width
    split_words = word_splitter(config.words_splitter_type)  # the checkpoint's, as GLiNER.predict uses
    columns: dict[str, list] = defaultdict(list)
    for record in documents:
        columns["sliced"].append(len(record.text) > long_chars)
        if columns["sliced"][-1]:
            for name in INT_COLUMNS:
                columns[name].append(np.zeros(0, np.int32))
            columns["windows"].append([])
            continue
        tick = time.perf_counter()
        words = split_words(record.text)
        tick = lap(seconds, "split", tick)
        text = tokenizer.tokenize(words.words)
        tick = lap(seconds, "tokenize", tick)
        budget = tokenizer.window_budget(labels_of(settings, record.labels), settings.relations)  # every label pass scores these windows
        windows = plan_windows(np.diff(text.offsets), config.max_len, budget, overlap, sentence_ends(words.words)) if words.words else []
        columns["word_starts"].append(words.starts)
        columns["word_ends"].append(words.ends)
        columns["tokens"].append(text.tokens)
        columns["token_offsets"].append(text.offsets)
        columns["windows"].append(windows)
        lap(seconds, "plan", tick)
    return columns


def _document_array(documents: list[Record], columns: dict[str, list]) -> pa.StructArray:
    fields = {
        "doc_id": pa.array([r.doc_id for r in documents], pa.string()),
        "text": pa.array([r.text for r in documents], pa.string()),
        **{name: _list_array(columns[name], pa.int32()) for name in INT_COLUMNS},
        "windows": _windows_array(columns["windows"]),
        "sliced": pa.array(columns["sliced"], pa.bool_()),
        "labels": pa.array([r.labels for r in documents], pa.list_(pa.string())),
    }
    return pa.StructArray.from_arrays(list(fields.values()), fields=list(DOCUMENT_TYPE))


def _offsets(lengths: list[int]) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.array(offsets)


def _list_array(parts: list, value_type: pa.DataType) -> pa.Array:
    """A list<value_type> array with one entry per part (a list or numpy array of ints), without a Python loop
    over the values."""
    values = np.concatenate([np.asarray(p, dtype=np.int32) for p in parts]) if parts else np.zeros(0, np.int32)
    return pa.ListArray.from_arrays(_offsets([len(p) for p in parts]), pa.array(values, value_type))


def _windows_array(per_document: list[list[Window]]) -> pa.Array:
    flat = np.array([w for windows in per_document for w in windows], dtype=np.int32).reshape(-1, 4)
    struct = pa.StructArray.from_arrays([pa.array(flat[:, k]) for k in range(4)], fields=list(WINDOW_TYPE))
    return pa.ListArray.from_arrays(_offsets([len(w) for w in per_document]), struct)


# ---- unpacking (the model actor) ------------------------------------------------------------------------------
class Chunk(NamedTuple):
    """A chunk row read back; its documents stay packed until ``unpack_documents``."""

    header: dict[str, Any]  # shard, source, chunk, last
    documents: pa.StructArray  # of DOCUMENT_TYPE
    errors: list[dict]  # row, doc_id, reason
    seconds: dict[str, float]


class Document(NamedTuple):
    """A planned document read back: numpy views into its chunk's arrays (empty for a sliced document)."""

    doc_id: str
    text: str
    sliced: bool
    tokens: TokenizedText
    windows: list[Window]
    word_starts: np.ndarray  # the character offset of each word's start, and of its end
    word_ends: np.ndarray
    labels: tuple[str, ...] | None  # its own entity types (``--labels-field``), None: the run's


def unpack_chunk(row: pa.Table) -> Chunk:
    """The one chunk in a table of one row."""
    header = {name: row[name][0].as_py() for name in HEADER}
    return Chunk(header, row["documents"].combine_chunks().flatten(), row["errors"][0].as_py(),
                 json.loads(row["seconds"][0].as_py()))


def unpack_documents(documents: pa.StructArray) -> list[Document]:
    """A chunk's documents, from a few flat numpy arrays (no Python loop over tokens or words)."""
    docs = pa.RecordBatch.from_struct_array(documents)
    tokens, token_bounds = _flat(docs["tokens"])
    offsets, offset_bounds = _flat(docs["token_offsets"])
    word_starts, word_bounds = _flat(docs["word_starts"])
    word_ends, _ = _flat(docs["word_ends"])
    window_lists = docs["windows"]
    window_values = window_lists.flatten()
    windows = np.stack([window_values.field(k).to_numpy() for k in range(4)], axis=1).tolist()
    window_bounds = _bounds(window_lists)
    return [
        Document(
            doc_id, text, sliced,
            TokenizedText(tokens[token_bounds[d] : token_bounds[d + 1]], offsets[offset_bounds[d] : offset_bounds[d + 1]]),
            [Window(*w) for w in windows[window_bounds[d] : window_bounds[d + 1]]],
            word_starts[word_bounds[d] : word_bounds[d + 1]], word_ends[word_bounds[d] : word_bounds[d + 1]],
            None if labels is None else tuple(labels),
        )
        for d, (doc_id, text, sliced, labels) in enumerate(zip(
            docs["doc_id"].to_pylist(), docs["text"].to_pylist(), docs["sliced"].to_pylist(), docs["labels"].to_pylist()))
    ]


def _flat(lists: pa.ListArray) -> tuple[np.ndarray, np.ndarray]:
    """The values of a list array as one numpy array, and the bounds of each list in it."""
    return lists.flatten().to_numpy(zero_copy_only=False), _bounds(lists)


def _bounds(lists: pa.ListArray) -> np.ndarray:
    """Where each list of a list array starts in its flattened values, and where the last one ends."""
    bounds = lists.offsets.to_numpy()
    return (bounds - bounds[0]).astype(np.int64)
