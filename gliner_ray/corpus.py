"""The records of a corpus shard (see shards.py), in plain Python and pyarrow (no Ray, no torch).

``read_records`` streams one shard as ``Record``s: a document, or the reason a record could not become one
(malformed JSON, undecodable bytes, missing or non-string or empty text, a text over the length cap, a line or
document over the size cap, or any other exception parsing it raised). A bad record never stops the reading; it
comes out as an error record. A damaged shard (a compressed stream that ends early or is corrupt, an unreadable
Parquet row group, a file that vanishes or changes while read) keeps the records read before the damage and ends
with one error record whose reason starts with ``DAMAGED`` and names the last good record.
"""

from __future__ import annotations

import json
from typing import Iterator, NamedTuple

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from . import storage
from .shards import BOM, DAMAGE_ERRORS, Shard, open_shard, shard_lines
from .text import not_unicode, record_labels

PARQUET_BATCH_ROWS = 1024
DAMAGED = "damaged shard: "  # the reason of the one error record that ends a damaged shard
# A line (JSON Lines) or document (text file, Parquet cell) over this many bytes is an error record, not a worker
# out of memory: parsing holds a few times its size (bytes, str, JSON objects).
MAX_RECORD_BYTES = 64 << 20
REASON_CHARS = 300  # an unexpected exception's message is cut to this length in its error record


class Fields(NamedTuple):
    """Where a record's id, text and (None: not read) own entity types are."""

    id: str
    text: str
    labels: str | None = None


class Record(NamedTuple):
    """A document (``text`` set) or a record that failed (``error`` set). ``row`` counts records from 0 in the
    shard (the line for JSON Lines, blank lines included); it is None when the whole shard could not be read.
    ``labels``: the document's own entity types (``labels_field``), None when the run has one label set."""

    row: int | None
    doc_id: str | None
    text: str | None
    error: str | None = None
    labels: tuple[str, ...] | None = None


def read_records(
    fs: pafs.FileSystem, shard: Shard, id_field: str = "id", text_field: str = "text", max_chars: int | None = None,
    max_bytes: int | None = MAX_RECORD_BYTES, labels_field: str | None = None,
) -> Iterator[Record]:
    """Stream the records of one shard, documents and failures alike, in file order, never the whole file at once.

    Whatever parsing one record raises makes it an error record; a line or document over ``max_bytes`` (None: no
    cap) is one too, read past in blocks, never held whole. A shard that breaks while read ends with a ``DAMAGED``
    error record after the records read before the break; so does one whose file changed (size or modification
    time) since it was listed. With ``labels_field``, a document's entity types are read from that field (see
    ``text.record_labels``); a record without usable ones is an error record."""
    readers = {"jsonl": _jsonl_records, "parquet": _parquet_records, "text": _text_records}
    last = None
    try:
        for record in readers[shard.format](fs, shard, Fields(id_field, text_field, labels_field), max_bytes):
            if record.error is None:
                record = _check_length(record, max_chars, max_bytes)
            last = record if record.row is not None else last
            yield record
        info = fs.get_file_info(shard.path)
    except DAMAGE_ERRORS as error:
        yield damaged(shard, last, f"{type(error).__name__}: {error}".strip())
        return
    if info.type != pafs.FileType.File:
        yield damaged(shard, last, "the file vanished while it was read")
    elif (info.size, info.mtime_ns or 0) != (shard.size, shard.mtime_ns):
        yield damaged(shard, last, f"the file changed while it was read (size {shard.size} -> {info.size} bytes, or its modification time)")


def damaged(shard: Shard, last: Record | None, reason: str) -> Record:
    """The error record that ends a damaged shard: what went wrong, and the last record read before it."""
    if last is None:
        kept = "no record read before it"
    else:
        kept = f"last good record: row {last.row}" + (f", id {last.doc_id}" if last.doc_id is not None else "")
    return Record(None, None, None, f"{DAMAGED}{reason}; {kept}")


def _jsonl_records(fs: pafs.FileSystem, shard: Shard, fields: Fields, max_bytes: int | None) -> Iterator[Record]:
    for row, line in enumerate(shard_lines(fs, shard, max_bytes)):
        if isinstance(line, int):
            yield Record(row, None, None, _too_big("line", line, max_bytes))
        elif line.strip():  # blank lines are not records
            yield _parse_line(shard, row, line, fields)


def _parse_line(shard: Shard, row: int, line: bytes, fields: Fields) -> Record:
    """One JSON Lines record; whatever parsing it raises (a decoding error, a JSON nested too deep for the parser,
    an integer too long to convert) makes it an error record."""
    try:
        value = json.loads(line.decode("utf-8"))
        if not isinstance(value, dict):
            return Record(row, None, None, f"line holds a JSON {type(value).__name__}, not an object")
        labels = value.get(fields.labels, _MISSING) if fields.labels is not None else None
        return document(shard, row, value.get(fields.id), value.get(fields.text, _MISSING), fields, labels)
    except UnicodeDecodeError as error:
        return Record(row, None, None, f"line is not valid UTF-8 ({error.reason} at byte {error.start})")
    except json.JSONDecodeError as error:
        return Record(row, None, None, f"malformed JSON: {error.msg} at column {error.colno}")
    except Exception as error:  # noqa: BLE001 - one bad record never stops the reading
        return Record(row, None, None, unreadable(error))


def unreadable(error: Exception) -> str:
    """The reason of a record that raised an unexpected exception: its type and message."""
    message = f"{type(error).__name__}: {error}".strip().removesuffix(":")
    return "record cannot be read: " + (message if len(message) <= REASON_CHARS else message[:REASON_CHARS] + "...")


def _too_big(what: str, size: int | None, max_bytes: int | None) -> str:
    """The reason of a record over the size cap (``size`` None: not read to its end)."""
    has = "" if size is None else f"{size} bytes, "
    return f"{what} has {has}more than the cap of {max_bytes} bytes; pass a larger --max-record-size to read it"


def _parquet_records(fs: pafs.FileSystem, shard: Shard, fields: Fields, max_bytes: int | None) -> Iterator[Record]:
    # a file without a readable footer is damaged
    parquet = pq.ParquetFile(storage.ResumingReader(fs, shard.path, shard.size))
    names = parquet.schema_arrow.names
    if fields.text not in names:
        yield Record(None, None, None, f"no column {fields.text!r} (columns: {', '.join(names)}); pass --text-field")
        return
    columns = [fields.text] + [name for name in (fields.id, fields.labels) if name in names]
    metadata = parquet.metadata
    groups = range(shard.start, metadata.num_row_groups if shard.stop is None else shard.stop)
    first_row = sum(metadata.row_group(g).num_rows for g in range(groups.start))  # rows count from the file's start
    last = None
    for group in groups:
        rows = metadata.row_group(group).num_rows
        try:  # an unreadable row group is damage; the row groups after it are still read
            for record in _parquet_group(parquet, group, columns, first_row, shard, fields):
                last = record
                yield record
        except DAMAGE_ERRORS as error:
            yield damaged(shard, last, f"row group {group} (rows {first_row}-{first_row + rows - 1}) cannot be read: {error}")
        first_row += rows


def _parquet_group(
    parquet: pq.ParquetFile, group: int, columns: list[str], row: int, shard: Shard, fields: Fields
) -> Iterator[Record]:
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=[group], columns=columns):
        try:
            texts = batch.column(fields.text).to_pylist()
            ids = batch.column(fields.id).to_pylist() if fields.id in columns else [None] * len(texts)
            missing = None if fields.labels is None else _MISSING  # a file without the column: no record has it
            labels = batch.column(fields.labels).to_pylist() if fields.labels in columns else [missing] * len(texts)
        except Exception as error:  # noqa: BLE001 - values Python cannot hold (a date out of range): each row fails
            reason = unreadable(error)
            yield from (Record(row + i, None, None, reason) for i in range(batch.num_rows))
            row += batch.num_rows
            continue
        for doc_id, text, own_labels in zip(ids, texts, labels):
            yield _parquet_row(shard, row, doc_id, text, fields, own_labels)
            row += 1


def _parquet_row(shard: Shard, row: int, doc_id, text, fields: Fields, labels) -> Record:
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return document(shard, row, doc_id, text, fields, labels)
    except UnicodeDecodeError as error:
        return Record(row, _doc_id(shard, row, doc_id), None, f"text is not valid UTF-8 ({error.reason} at byte {error.start})")
    except Exception as error:  # noqa: BLE001 - one bad record never stops the reading
        return Record(row, None, None, unreadable(error))


def _text_records(fs: pafs.FileSystem, shard: Shard, fields: Fields, max_bytes: int | None) -> Iterator[Record]:
    with open_shard(fs, shard) as f:
        data = f.read(-1 if max_bytes is None else max_bytes + len(BOM) + 1).removeprefix(BOM)
    if max_bytes is not None and len(data) > max_bytes:
        yield Record(0, shard.uri, None, _too_big("file", None, max_bytes))
        return
    try:
        yield document(shard, 0, shard.uri, data.decode("utf-8"), fields, None if fields.labels is None else _MISSING)
    except UnicodeDecodeError as error:
        yield Record(0, shard.uri, None, f"file is not valid UTF-8 ({error.reason} at byte {error.start})")
    except Exception as error:  # noqa: BLE001
        yield Record(0, shard.uri, None, unreadable(error))


_MISSING = object()


def document(shard: Shard, row: int, doc_id, text, fields: Fields, labels=None) -> Record:
    """A record from raw field values: a document when ``text`` is a non-blank string (and, when ``fields.labels``
    is read, ``labels`` a list of entity types), else an error record."""
    id_field, text_field = fields.id, fields.text
    if isinstance(doc_id, (dict, list)):
        return Record(row, None, None, f"{id_field!r} is a JSON {type(doc_id).__name__}, not a string or number")
    doc_id = _doc_id(shard, row, doc_id)
    if (problem := not_unicode(doc_id)) is not None:
        return Record(row, None, None, f"{id_field!r} {problem}")
    if text is _MISSING:
        return Record(row, doc_id, None, f"no {text_field!r} field; pass --text-field to read another one")
    if text is None:
        return Record(row, doc_id, None, f"{text_field!r} is null")
    if not isinstance(text, str):
        return Record(row, doc_id, None, f"{text_field!r} is a {type(text).__name__}, not a string")
    if not text.strip():
        return Record(row, doc_id, None, "empty text")
    if (problem := not_unicode(text)) is not None:
        return Record(row, doc_id, None, f"{text_field!r} {problem}")
    if fields.labels is None:
        return Record(row, doc_id, text)
    if labels is _MISSING:
        return Record(row, doc_id, None, f"no {fields.labels!r} field; pass --labels-field to read another one, "
                                         f"or --labels to give all documents the same entity types")
    labels = record_labels(labels, fields.labels)
    return Record(row, doc_id, None, labels) if isinstance(labels, str) else Record(row, doc_id, text, None, labels)


def _doc_id(shard: Shard, row: int, value) -> str:
    """The record's id as a string; records without one are named after their place, ``<shard source>#<row>``."""
    return f"{shard.source}#{row}" if value is None else str(value)


def _check_length(record: Record, max_chars: int | None, max_bytes: int | None) -> Record:
    """The record, or an error record when its text is over ``max_chars`` characters or ``max_bytes`` bytes."""
    if max_chars is not None and len(record.text) > max_chars:
        return Record(record.row, record.doc_id, None, f"text has {len(record.text)} characters, more than max_chars={max_chars}")
    if max_bytes is not None and 4 * len(record.text) > max_bytes and (size := len(record.text.encode())) > max_bytes:
        return Record(record.row, record.doc_id, None, _too_big("text", size, max_bytes))
    return record
