"""Corpus shards (local or S3) and the records they hold, in plain Python and pyarrow (no Ray, no torch).

A shard is one input file. ``list_shards`` finds them (a file, a directory, a glob or an ``s3://`` prefix) and
refuses bad input before any work starts. ``read_records`` streams one shard as ``Record``s: a document, or the
reason a record could not become one (malformed JSON, undecodable bytes, missing or non-string or empty text,
a text over the length cap). A bad record never stops the reading; it comes out as an error record.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from . import storage

FORMATS = ("jsonl", "parquet", "text")
FORMAT_EXTENSIONS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".parquet": "parquet", ".pq": "parquet",
    ".txt": "text", ".text": "text", ".md": "text",
}
COMPRESSION_EXTENSIONS = (".gz", ".bz2", ".zst", ".lz4")  # read transparently by pyarrow (not for parquet)
PARQUET_BATCH_ROWS = 1024


@dataclass(frozen=True)
class Shard:
    """One input file: ``uri`` names it to users (and in errors), ``path`` addresses it on its filesystem."""

    uri: str
    path: str
    size: int
    mtime_ns: int
    format: str


class Record(NamedTuple):
    """A document (``text`` set) or a record that failed (``error`` set). ``row`` counts records from 0 in the
    shard (the line for JSON Lines, blank lines included); it is None when the whole shard could not be read."""

    row: int | None
    doc_id: str | None
    text: str | None
    error: str | None = None


def list_shards(input_uri: str, input_format: str | None = None, exclude: str | None = None) -> list[Shard]:
    """The input files under ``input_uri`` (a file, a directory searched recursively, or a glob), sorted by path.

    Names starting with ``.`` or ``_`` (``_SUCCESS``, ``.crc``) are skipped, as Spark and Ray do, and so is
    everything under ``exclude`` (an output directory inside the input). Raises FileNotFoundError when nothing
    matches and ValueError when the format cannot be told from the extensions.
    """
    fs, _, candidates = storage.find_files(input_uri)
    excluded = exclude.rstrip("/") + "/" if exclude else None
    found = [f for f in candidates if not (excluded and storage.display(fs, f.path).startswith(excluded))]
    if not found:
        hint = " (does the bucket exist?)" if "://" in input_uri else ""
        raise FileNotFoundError(f"no input files matched {input_uri}{hint}")
    shards = [
        Shard(storage.display(fs, f.path), f.path, f.size, f.mtime_ns or 0, input_format or format_from_extension(f.path))
        for f in found
    ]
    formats = sorted({shard.format for shard in shards})
    if len(formats) > 1:
        examples = ", ".join(f"{fmt}: {next(s.uri for s in shards if s.format == fmt)}" for fmt in formats)
        raise ValueError(
            f"{input_uri} mixes input formats ({examples}): pass --format to read them all one way, "
            f"or point --input at files of one kind"
        )
    return shards


def format_from_extension(path: str) -> str:
    name = path.lower()
    for compression in COMPRESSION_EXTENSIONS:
        name = name.removesuffix(compression)
    fmt = FORMAT_EXTENSIONS.get(os.path.splitext(name)[1])
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of {path} from its extension: pass --format {'|'.join(FORMATS)} "
            f"(known extensions: {', '.join(sorted(FORMAT_EXTENSIONS))}, optionally compressed)"
        )
    return fmt


def read_records(
    fs: pafs.FileSystem, shard: Shard, id_field: str = "id", text_field: str = "text", max_chars: int | None = None
) -> Iterator[Record]:
    """Stream the records of one shard, documents and failures alike, in file order, never the whole file at once."""
    readers = {"jsonl": _jsonl_records, "parquet": _parquet_records, "text": _text_records}
    for record in readers[shard.format](fs, shard, id_field, text_field):
        if record.error is None:
            record = _check_length(record, max_chars)
        yield record


def _jsonl_records(fs: pafs.FileSystem, shard: Shard, id_field: str, text_field: str) -> Iterator[Record]:
    with fs.open_input_stream(shard.path, compression="detect") as raw:
        for row, line in enumerate(io.BufferedReader(raw, buffer_size=1 << 20)):
            if not line.strip():
                continue  # blank lines are not records
            try:
                value = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as error:
                yield Record(row, None, None, f"line is not valid UTF-8 ({error.reason} at byte {error.start})")
                continue
            except json.JSONDecodeError as error:
                yield Record(row, None, None, f"malformed JSON: {error.msg} at column {error.colno}")
                continue
            if not isinstance(value, dict):
                yield Record(row, None, None, f"line holds a JSON {type(value).__name__}, not an object")
                continue
            yield document(shard, row, value.get(id_field), value.get(text_field, _MISSING), id_field, text_field)


def _parquet_records(fs: pafs.FileSystem, shard: Shard, id_field: str, text_field: str) -> Iterator[Record]:
    try:
        parquet = pq.ParquetFile(fs.open_input_file(shard.path))
    except pa.ArrowInvalid as error:
        yield Record(None, None, None, f"not a readable Parquet file: {error}")
        return
    names = parquet.schema_arrow.names
    if text_field not in names:
        yield Record(None, None, None, f"no column {text_field!r} (columns: {', '.join(names)}); pass --text-field")
        return
    columns = [text_field] + ([id_field] if id_field in names else [])
    row = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
        texts = batch.column(text_field).to_pylist()
        ids = batch.column(id_field).to_pylist() if id_field in names else [None] * len(texts)
        for doc_id, text in zip(ids, texts):
            if isinstance(text, bytes):
                try:
                    text = text.decode("utf-8")
                except UnicodeDecodeError as error:
                    yield Record(row, _doc_id(shard, row, doc_id), None, f"text is not valid UTF-8 ({error.reason} at byte {error.start})")
                    row += 1
                    continue
            yield document(shard, row, doc_id, text, id_field, text_field)
            row += 1


def _text_records(fs: pafs.FileSystem, shard: Shard, id_field: str, text_field: str) -> Iterator[Record]:
    with fs.open_input_stream(shard.path, compression="detect") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        yield Record(0, shard.uri, None, f"file is not valid UTF-8 ({error.reason} at byte {error.start})")
        return
    yield document(shard, 0, shard.uri, text, id_field, text_field)


_MISSING = object()


def document(shard: Shard, row: int, doc_id, text, id_field: str, text_field: str) -> Record:
    """A record from raw field values: a document when ``text`` is a non-blank string, else an error record."""
    if isinstance(doc_id, (dict, list)):
        return Record(row, None, None, f"{id_field!r} is a JSON {type(doc_id).__name__}, not a string or number")
    doc_id = _doc_id(shard, row, doc_id)
    if (problem := _not_unicode(doc_id)) is not None:
        return Record(row, None, None, f"{id_field!r} {problem}")
    if text is _MISSING:
        return Record(row, doc_id, None, f"no {text_field!r} field; pass --text-field to read another one")
    if text is None:
        return Record(row, doc_id, None, f"{text_field!r} is null")
    if not isinstance(text, str):
        return Record(row, doc_id, None, f"{text_field!r} is a {type(text).__name__}, not a string")
    if not text.strip():
        return Record(row, doc_id, None, "empty text")
    if (problem := _not_unicode(text)) is not None:
        return Record(row, doc_id, None, f"{text_field!r} {problem}")
    return Record(row, doc_id, text)


def _not_unicode(value: str) -> str | None:
    """What keeps a decoded string from being written as UTF-8 (a lone surrogate from a JSON escape), if anything."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"holds an invalid character ({error.reason} at {error.start})"
    return None


def _doc_id(shard: Shard, row: int, value) -> str:
    """The record's id as a string; records without one are named after their place, ``<shard uri>#<row>``."""
    return f"{shard.uri}#{row}" if value is None else str(value)


def _check_length(record: Record, max_chars: int | None) -> Record:
    if max_chars is not None and len(record.text) > max_chars:
        return Record(record.row, record.doc_id, None, f"text has {len(record.text)} characters, more than max_chars={max_chars}")
    return record
