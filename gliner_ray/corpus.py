"""Corpus shards (local or S3) and the records they hold, in plain Python and pyarrow (no Ray, no torch).

A shard is one input file, or one piece of a big one. ``list_shards`` finds them (a file, a directory, a glob or an
``s3://`` prefix) and refuses bad input before any work starts; an uncompressed JSON Lines file over
``split_bytes`` becomes byte ranges (a range owns the lines that start in it), a Parquet file over it becomes
ranges of row groups, so one big file spreads over all workers. ``read_records`` streams one shard as
``Record``s: a document, or the reason a record could not become one (malformed JSON, undecodable bytes, missing
or non-string or empty text, a text over the length cap). A bad record never stops the reading; it comes out as an
error record. A damaged shard (a compressed stream that ends early or is corrupt, an unreadable Parquet row
group, a file that vanishes or changes while read) keeps the records read before the damage and ends with one
error record whose reason starts with ``DAMAGED`` and names the last good record.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import os
import zlib
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
SPLIT_BYTES = 64 << 20  # shards over this size are read in pieces of about this size
READ_BLOCK = 1 << 16  # bytes read from a file at a time
BOM = b"\xef\xbb\xbf"
DAMAGED = "damaged shard: "  # the reason of the one error record that ends a damaged shard
# What reading a damaged file raises: pyarrow's IO and decompression errors (OSError), Parquet decoding errors
# (ArrowException), the standard library's zlib and EOF errors.
DAMAGE_ERRORS = (OSError, EOFError, zlib.error, pa.ArrowException)


@dataclass(frozen=True)
class Shard:
    """One input file, or a piece of one: ``uri`` names the file to users, ``path`` addresses it on its
    filesystem, ``size`` and ``mtime_ns`` are the file's as listed. A piece has ``stop`` set: bytes
    ``[start, stop)`` of a JSON Lines file, row groups ``[start, stop)`` of a Parquet file."""

    uri: str
    path: str
    size: int
    mtime_ns: int
    format: str
    start: int = 0
    stop: int | None = None

    @property
    def source(self) -> str:
        """The name of what was read, as error rows give it: the file, or for a byte range ``<file>#bytes=A-B``
        (row numbers then count lines from the start of the range; Parquet row numbers are the file's)."""
        if self.stop is None or self.format == "parquet":
            return self.uri
        return f"{self.uri}#bytes={self.start}-{self.stop}"


class Record(NamedTuple):
    """A document (``text`` set) or a record that failed (``error`` set). ``row`` counts records from 0 in the
    shard (the line for JSON Lines, blank lines included); it is None when the whole shard could not be read."""

    row: int | None
    doc_id: str | None
    text: str | None
    error: str | None = None


def list_shards(
    input_uri: str, input_format: str | None = None, exclude: str | None = None, split_bytes: int | None = SPLIT_BYTES
) -> list[Shard]:
    """The input files under ``input_uri`` (a file, a directory searched recursively, or a glob), sorted by path,
    files over ``split_bytes`` cut into pieces (None: never).

    Names starting with ``.`` or ``_`` (``_SUCCESS``, ``.crc``) are skipped, as Spark and Ray do, and so is
    everything under ``exclude`` (an output directory inside the input). Raises FileNotFoundError when nothing
    matches and ValueError when the format cannot be told from the extensions.
    """
    fs, base, candidates = storage.find_files(input_uri)
    excluded = exclude.rstrip("/") + "/" if exclude else None
    found = [f for f in candidates if not (excluded and storage.display(fs, f.path).startswith(excluded))]
    if candidates and not found:  # every file lies in the output folder, which is never read as input
        if excluded == storage.display(fs, base).rstrip("/") + "/":
            what = f"--input and --output are the same folder ({exclude})"
        else:
            what = f"every file of --input {input_uri} lies inside --output {exclude}"
        raise ValueError(f"{what}, and the output folder is never read as input: choose an --output outside the input")
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
    if split_bytes is None:
        return shards
    return [piece for shard in shards for piece in split(fs, shard, split_bytes)]


def split(fs: pafs.FileSystem, shard: Shard, split_bytes: int) -> list[Shard]:
    """A file as pieces of about ``split_bytes``: byte ranges of uncompressed JSON Lines, runs of whole row groups
    of Parquet. Compressed streams and plain text files (one document each) stay whole, as does a file whose
    Parquet footer cannot be read (reading it then reports the damage)."""
    if shard.size <= split_bytes or shard.format == "text":
        return [shard]
    if shard.format == "jsonl":
        if shard.path.lower().endswith(COMPRESSION_EXTENSIONS):
            return [shard]
        starts = range(0, shard.size, split_bytes)
        return [Shard(**{**_fields(shard), "start": a, "stop": min(a + split_bytes, shard.size)}) for a in starts]
    try:
        metadata = pq.ParquetFile(fs.open_input_file(shard.path)).metadata
    except DAMAGE_ERRORS:
        return [shard]
    pieces, first, size = [], 0, 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        size += sum(row_group.column(c).total_compressed_size for c in range(row_group.num_columns))
        if size >= split_bytes or group == metadata.num_row_groups - 1:
            pieces.append(Shard(**{**_fields(shard), "start": first, "stop": group + 1}))
            first, size = group + 1, 0
    return pieces if len(pieces) > 1 else [shard]


def _fields(shard: Shard) -> dict:
    return {name: getattr(shard, name) for name in Shard.__dataclass_fields__}


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
    """Stream the records of one shard, documents and failures alike, in file order, never the whole file at once.

    A shard that breaks while read ends with a ``DAMAGED`` error record after the records read before the break;
    so does one whose file changed (size or modification time) since it was listed."""
    readers = {"jsonl": _jsonl_records, "parquet": _parquet_records, "text": _text_records}
    last = None
    try:
        for record in readers[shard.format](fs, shard, id_field, text_field):
            if record.error is None:
                record = _check_length(record, max_chars)
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


def _lines(fs: pafs.FileSystem, shard: Shard) -> Iterator[bytes]:
    """The lines of a JSON Lines shard, a leading byte-order mark dropped: all of them, or for a byte range
    ``[start, stop)`` those that start inside it (a line that runs past ``stop`` is read to its end)."""
    with _open(fs, shard) as reader:
        position, stop = max(shard.start - 1, 0), shard.stop
        if shard.start > 0:  # the line holding byte start-1 is the previous range's, up to its newline
            reader.seek(position)
            position += len(reader.readline())
        while stop is None or position < stop:
            line = reader.readline()
            if not line:
                return
            if position == 0 and line.startswith(BOM):
                line = line[len(BOM):]
            position += len(line)
            yield line


@contextlib.contextmanager
def _open(fs: pafs.FileSystem, shard: Shard) -> Iterator[io.BufferedIOBase]:
    """The shard's bytes as a buffered binary file, decompressed. gzip and bzip2 go through the standard library,
    which hands over every byte it decoded before a damaged spot (pyarrow drops its whole last read, megabytes
    of text); other compressions through pyarrow."""
    name = shard.path.lower()
    with storage.ResumingReader(fs, shard.path, shard.size) as raw:
        buffered = io.BufferedReader(raw, buffer_size=READ_BLOCK)
        if shard.stop is None and name.endswith(".gz"):
            yield gzip.GzipFile(fileobj=buffered)
        elif shard.stop is None and name.endswith(".bz2"):
            yield bz2.BZ2File(buffered)
        elif shard.stop is None and name.endswith(COMPRESSION_EXTENSIONS):
            codec = {".zst": "zstd", ".lz4": "lz4"}[os.path.splitext(name)[1]]
            yield io.BufferedReader(pa.input_stream(buffered, compression=codec), buffer_size=READ_BLOCK)
        else:  # uncompressed, or a byte range of an uncompressed file (random access)
            yield buffered


def _jsonl_records(fs: pafs.FileSystem, shard: Shard, id_field: str, text_field: str) -> Iterator[Record]:
    for row, line in enumerate(_lines(fs, shard)):
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
    # a file without a readable footer is damaged
    parquet = pq.ParquetFile(storage.ResumingReader(fs, shard.path, shard.size))
    names = parquet.schema_arrow.names
    if text_field not in names:
        yield Record(None, None, None, f"no column {text_field!r} (columns: {', '.join(names)}); pass --text-field")
        return
    columns = [text_field] + ([id_field] if id_field in names else [])
    metadata = parquet.metadata
    groups = range(shard.start, metadata.num_row_groups if shard.stop is None else shard.stop)
    first_row = sum(metadata.row_group(g).num_rows for g in range(groups.start))  # rows count from the file's start
    last = None
    for group in groups:
        rows = metadata.row_group(group).num_rows
        try:  # an unreadable row group is damage; the row groups after it are still read
            for record in _parquet_group(parquet, group, columns, first_row, shard, id_field, text_field):
                last = record
                yield record
        except DAMAGE_ERRORS as error:
            yield damaged(shard, last, f"row group {group} (rows {first_row}-{first_row + rows - 1}) cannot be read: {error}")
        first_row += rows


def _parquet_group(
    parquet: pq.ParquetFile, group: int, columns: list[str], row: int, shard: Shard, id_field: str, text_field: str
) -> Iterator[Record]:
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=[group], columns=columns):
        texts = batch.column(text_field).to_pylist()
        ids = batch.column(id_field).to_pylist() if id_field in columns else [None] * len(texts)
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
    with _open(fs, shard) as f:
        data = f.read().removeprefix(BOM)
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
    """The record's id as a string; records without one are named after their place, ``<shard source>#<row>``."""
    return f"{shard.source}#{row}" if value is None else str(value)


def _check_length(record: Record, max_chars: int | None) -> Record:
    if max_chars is not None and len(record.text) > max_chars:
        return Record(record.row, record.doc_id, None, f"text has {len(record.text)} characters, more than max_chars={max_chars}")
    return record
