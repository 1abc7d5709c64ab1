"""Finding the shards of a corpus (local or S3), in plain Python and pyarrow (no Ray, no torch).

A shard is one input file, or one piece of a big one. ``list_shards`` finds them (a file, a directory, a glob or an
``s3://`` prefix) and refuses bad input before any work starts; an uncompressed JSON Lines file over
``split_bytes`` becomes byte ranges (a range owns the lines that start in it), a Parquet file over it becomes
ranges of row groups, so one big file spreads over all workers. ``open_shard`` and ``shard_lines`` give a shard's
bytes and lines; turning them into records is ``corpus.py``'s.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import os
import zlib
from dataclasses import dataclass
from typing import Iterator

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
READ_BLOCK = 1 << 16  # bytes read from a file at a time
BOM = b"\xef\xbb\xbf"
SPLIT_BYTES = 64 << 20  # shards over this size are read in pieces of about this size
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


def shard_lines(fs: pafs.FileSystem, shard: Shard, max_bytes: int | None) -> Iterator[bytes | int]:
    """The lines of a JSON Lines shard, a leading byte-order mark dropped: all of them, or for a byte range
    ``[start, stop)`` those that start inside it (a line that runs past ``stop`` is read to its end). A line over
    ``max_bytes`` comes as its length in bytes, read past in blocks."""
    with open_shard(fs, shard) as reader:
        position, stop = max(shard.start - 1, 0), shard.stop
        if shard.start > 0:  # the line holding byte start-1 is the previous range's, up to its newline
            reader.seek(position)
            position += skip_line(reader)
        while stop is None or position < stop:
            line = reader.readline(-1 if max_bytes is None else max_bytes + 1)
            if not line:
                return
            if max_bytes is not None and len(line) > max_bytes and not line.endswith(b"\n"):
                line = len(line) + skip_line(reader)
                position += line
                yield line
                continue
            if position == 0 and line.startswith(BOM):
                line = line[len(BOM):]
            position += len(line)
            yield line


def skip_line(reader: io.BufferedIOBase) -> int:
    """Read past the rest of the current line, newline included, a block at a time; returns the bytes read."""
    skipped = 0
    while (part := reader.readline(READ_BLOCK)) and not part.endswith(b"\n"):
        skipped += len(part)
    return skipped + len(part)


@contextlib.contextmanager
def open_shard(fs: pafs.FileSystem, shard: Shard) -> Iterator[io.BufferedIOBase]:
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
