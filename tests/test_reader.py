"""The total record reader: whatever one record raises makes it an error record and reading goes on; a line or
document over the size cap is an error record, read past without being held whole. Real files, read through
``corpus.read_records`` as the extraction's CPU stage reads them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from gliner_ray import corpus
from gliner_ray.shards import list_shards

LOCAL = pafs.LocalFileSystem()


def read(path: Path, split_bytes: int | None = None, **options) -> list[corpus.Record]:
    """Every record of every shard of ``path``, pieces in order."""
    shards = list_shards(str(path), split_bytes=split_bytes)
    return [r for shard in shards for r in corpus.read_records(LOCAL, shard, **options)]


def good(i: int) -> bytes:
    return json.dumps({"id": f"d{i}", "text": f"Ada Lovelace met Alan Turing {i} times."}).encode()


@pytest.mark.parametrize("bad, reason", [
    (b'{"id": "x", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "RecursionError"),
    (b'{"id": ' + b"7" * 5000 + b', "text": "a long id"}', "ValueError"),
])
def test_a_record_whose_parsing_raises_anything_is_an_error_row_and_reading_goes_on(tmp_path, bad, reason):
    path = tmp_path / "part.jsonl"
    path.write_bytes(b"\n".join([good(0), bad, good(2)]) + b"\n")

    records = read(path)

    assert [r.doc_id for r in records if r.error is None] == ["d0", "d2"]
    (error,) = [r for r in records if r.error is not None]
    assert error.row == 1 and error.error.startswith(f"record cannot be read: {reason}: ")
    assert len(error.error) < 400


@pytest.mark.parametrize("compressed", [False, True])
def test_a_line_over_the_size_cap_is_an_error_row_read_past_in_blocks(tmp_path, compressed):
    long_line = json.dumps({"id": "big", "text": "word " * 50_000}).encode()  # 250 KB
    data = b"\n".join([good(0), long_line, good(2), b"\x00" * 300_000, good(4)]) + b"\n"
    path = tmp_path / ("part.jsonl.gz" if compressed else "part.jsonl")
    path.write_bytes(gzip.compress(data) if compressed else data)

    records = read(path, max_bytes=100_000)

    assert [(r.row, r.doc_id) for r in records if r.error is None] == [(0, "d0"), (2, "d2"), (4, "d4")]
    errors = {r.row: r.error for r in records if r.error is not None}
    assert errors == {
        1: f"line has {len(long_line) + 1} bytes, more than the cap of 100000 bytes; pass a larger --max-record-size to read it",
        3: "line has 300001 bytes, more than the cap of 100000 bytes; pass a larger --max-record-size to read it",
    }
    assert [r.doc_id for r in read(path, max_bytes=None) if r.error is None] == ["d0", "big", "d2", "d4"]


def test_byte_ranges_split_inside_a_line_over_the_cap_read_every_other_line_once(tmp_path):
    lines = [good(i) for i in range(20)]
    lines[7] = b'{"id": "huge", "text": "' + b"x" * 50_000 + b'"}'
    path = tmp_path / "part.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    records = read(path, split_bytes=4096, max_bytes=10_000)

    assert sorted(r.doc_id for r in records if r.error is None) == sorted(f"d{i}" for i in range(20) if i != 7)
    assert [r.error.split(";")[0] for r in records if r.error is not None] == ["line has 50027 bytes, more than the cap of 10000 bytes"]


def test_a_text_file_or_parquet_cell_over_the_cap_is_an_error_row(tmp_path):
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "big.txt").write_text("é" * 40_000)  # 80 KB of UTF-8
    (tmp_path / "text" / "small.txt").write_text("Ada Lovelace met Alan Turing.")
    texts = ["short text", "é" * 40_000, "another short text"]
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": texts}), tmp_path / "cells.parquet")

    files = read(tmp_path / "text", max_bytes=50_000)
    cells = read(tmp_path / "cells.parquet", max_bytes=50_000)

    assert [(Path(r.doc_id).name, r.error) for r in files] == [
        ("big.txt", "file has more than the cap of 50000 bytes; pass a larger --max-record-size to read it"),
        ("small.txt", None),
    ]
    assert [(r.doc_id, r.error) for r in cells] == [
        ("a", None),
        ("b", "text has 80000 bytes, more than the cap of 50000 bytes; pass a larger --max-record-size to read it"),
        ("c", None),
    ]


def test_parquet_values_python_cannot_hold_make_error_rows_not_a_failed_shard(tmp_path):
    ids = pa.array([0, 10**16, 1], pa.timestamp("ms"))  # the middle one is past year 9999
    pq.write_table(pa.table({"id": ids, "text": ["one", "two", "three"]}), tmp_path / "dates.parquet")

    records = read(tmp_path / "dates.parquet")

    assert len(records) == 3 and all(r.row == i for i, r in enumerate(records))
    assert all(r.error and r.error.startswith("record cannot be read: ") for r in records)
    assert not any(r.error.startswith(corpus.DAMAGED) for r in records)
