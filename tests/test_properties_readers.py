"""Property: any bytes as a JSON Lines, text, gzipped JSON Lines or Parquet shard give documents plus error records,
as many as the records (lines) read, and no exception escapes the reader."""

from __future__ import annotations

import gzip
import io
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gliner_ray import corpus
from gliner_ray.shards import list_shards

LOCAL = pafs.LocalFileSystem()
MAX_BYTES = 64  # small, so that generated lines cross it
BOUNDED = settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["id", "text", "x"]), inner, max_size=3),
    max_leaves=8,
)
lines = st.one_of(
    st.binary(max_size=80),  # anything, including newlines, NULs and invalid UTF-8
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda i, t: json.dumps({"id": i, "text": t}).encode(), st.integers() | st.text(max_size=5), st.text(max_size=40)),
    st.sampled_from([b"", b"  \t", b"\xef\xbb\xbf{}", b'{"text": ' + b"[" * 100_000 + b"}", b'{"id": ' + b"9" * 5000 + b', "text": "a"}']),
)
files = st.lists(lines, max_size=12).map(lambda ls: b"\n".join(ls)) | st.binary(max_size=300)


def read(data: bytes, name: str, max_bytes: int | None = MAX_BYTES) -> list[corpus.Record]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        (shard,) = list_shards(str(path), split_bytes=None)
        return list(corpus.read_records(LOCAL, shard, max_bytes=max_bytes))


def expected_records(data: bytes, max_bytes: int | None) -> int:
    """The records a JSON Lines file holds: its non-blank lines (a leading byte-order mark dropped) and its
    lines over the cap."""
    count = 0
    for i, line in enumerate(io.BytesIO(data).readlines()):
        content = line.removesuffix(b"\n")
        if max_bytes is not None and len(content) > max_bytes:
            count += 1
        elif (line.removeprefix(corpus.BOM) if i == 0 else line).strip():
            count += 1
    return count


def assert_documents_or_errors(records: list[corpus.Record]) -> None:
    for record in records:
        assert (record.text is None) != (record.error is None)
        if record.text is not None:
            assert record.text.strip() and isinstance(record.doc_id, str)
            record.text.encode("utf-8")  # writable as UTF-8


@BOUNDED
@given(files, st.sampled_from([MAX_BYTES, None]))
def test_any_bytes_as_json_lines_give_one_record_per_non_blank_line(data, max_bytes):
    records = read(data, "part.jsonl", max_bytes)

    assert_documents_or_errors(records)
    assert len(records) == expected_records(data, max_bytes)
    assert [r.row for r in records] == sorted({r.row for r in records})


@BOUNDED
@given(files)
def test_gzipped_json_lines_read_as_the_plain_file_and_any_bytes_as_gzip_do_not_escape(data):
    plain = [(r.row, r.text, r.error) for r in read(data, "part.jsonl")]

    assert [(r.row, r.text, r.error) for r in read(gzip.compress(data), "part.jsonl.gz")] == plain
    broken = read(data, "part.jsonl.gz")  # not a gzip stream: records until the damage, then one damage record
    assert_documents_or_errors(broken)
    assert sum(1 for r in broken if r.error and r.error.startswith(corpus.DAMAGED)) <= 1


@BOUNDED
@given(st.binary(max_size=300), st.sampled_from([MAX_BYTES, None]))
def test_any_bytes_as_a_text_file_give_exactly_one_record(data, max_bytes):
    records = read(data, "page.txt", max_bytes)

    assert_documents_or_errors(records)
    assert len(records) == 1 and records[0].row == 0


cells = st.one_of(st.none(), st.text(max_size=80), st.binary(max_size=80))


@BOUNDED
@given(st.lists(st.tuples(st.none() | st.text(max_size=8) | st.integers(), cells), max_size=20), st.booleans())
def test_any_parquet_cells_give_one_record_per_row(rows, as_binary):
    ids = pa.array([str(i) if i is not None else None for i, _ in rows], pa.string())
    texts = [t if isinstance(t, bytes) or t is None else t.encode("utf-8", "surrogatepass") for _, t in rows]
    texts = pa.array(texts, pa.binary()) if as_binary else pa.array(
        [t.decode("utf-8", "replace") if t is not None else None for t in texts], pa.string())
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": ids, "text": texts}), buffer, row_group_size=7)

    records = read(buffer.getvalue(), "part.parquet")

    assert_documents_or_errors(records)
    assert [r.row for r in records] == list(range(len(rows)))


@BOUNDED
@given(st.binary(max_size=300))
def test_any_bytes_as_parquet_are_one_damaged_shard_record(data):
    records = read(data, "part.parquet")

    assert len(records) == 1 and records[0].error.startswith(corpus.DAMAGED)
