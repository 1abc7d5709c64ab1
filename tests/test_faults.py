"""Faults of real corpora: damaged shards (truncated and corrupt compressed streams, unreadable Parquet row groups,
files that vanish or change while read), byte-order marks and CRLF, big files read in pieces. Reading is tested
on real files through ``corpus.read_records``; the extraction tests run the whole job on the shared Ray cluster."""

from __future__ import annotations

import gzip
import os
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import torch

from gliner_ray import corpus
from gliner_ray.shards import list_shards
from gliner_ray.kg import build_graph, entity_id
from gliner_ray.extract import Scale, extract
from tests.helpers import REPO
from tests.helpers.extraction import (
    LABELS, THRESHOLD, assert_same_as_predict, jsonl, make_texts, mention_rows, settings, success, write_corpus,
)
from tests.helpers.s3_faults import KINDS, FaultyProxy
from tests.helpers.training import tiny_settings

LOCAL = pafs.LocalFileSystem()


def records_of(path: Path, split_bytes: int | None = None, **options) -> list[corpus.Record]:
    """Every record of every shard of ``path``, pieces in order."""
    return [r for shard in list_shards(str(path), split_bytes=split_bytes) for r in corpus.read_records(LOCAL, shard, **options)]


def big_records(count: int, seed: int) -> list[dict]:
    """Records of about 2 KB each: a few of them fill several read blocks."""
    return [{"id": f"d{seed}-{i}", "text": " ".join(make_texts(25, seed * 1000 + i))} for i in range(count)]


def last_good_row(reason: str) -> int:
    return int(re.search(r"last good record: row (\d+)", reason).group(1))


def smash_row_group(path: Path, group: int) -> None:
    """Overwrite the text column's pages of one row group with garbage, as a bad disk sector would."""
    column = pq.ParquetFile(path).metadata.row_group(group).column(1)
    start = column.dictionary_page_offset or column.data_page_offset
    data = bytearray(path.read_bytes())
    data[start + 5:start + column.total_compressed_size - 5] = b"\xab" * (column.total_compressed_size - 10)
    path.write_bytes(bytes(data))


# ---- damaged shards, read directly ---------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_gzip_stream_keeps_the_records_before_the_damage_and_ends_with_one_error(tmp_path, damage):
    records = big_records(120, seed=1)
    compressed = bytearray(gzip.compress(jsonl(records)))
    if damage == "truncated":  # an interrupted download
        compressed = compressed[: len(compressed) // 2]
    else:  # flipped bytes in the middle: the stream's check fails (or its blocks stop decoding)
        middle = len(compressed) // 2
        compressed[middle:middle + 64] = bytes(b ^ 0x5A for b in compressed[middle:middle + 64])
    path = tmp_path / "part.jsonl.gz"
    path.write_bytes(bytes(compressed))

    read = records_of(path)

    *good, last = read
    assert last.row is None and last.error.startswith(corpus.DAMAGED)
    assert last_good_row(last.error) == good[-1].row
    documents = [(r.doc_id, r.text) for r in good if r.error is None]
    if damage == "truncated":  # everything before the cut is intact
        assert 0 < len(good) < len(records) and all(r.error is None for r in good)
        assert documents == [(r["id"], r["text"]) for r in records[: len(documents)]]
    else:  # gzip's only checksum is at the end: what came before it is kept, garbled lines included
        assert "CRC check failed" in last.error
        assert documents[:20] == [(r["id"], r["text"]) for r in records[:20]]


def test_an_unreadable_parquet_row_group_is_one_error_and_the_other_row_groups_are_read(tmp_path):
    texts = [" ".join(make_texts(20, i)) for i in range(300)]
    path = tmp_path / "part.parquet"
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(300)], "text": texts}), path, row_group_size=100)
    smash_row_group(path, 1)

    read = records_of(path)

    errors = [r for r in read if r.error is not None]
    assert len(errors) == 1 and errors[0].error.startswith(corpus.DAMAGED)
    assert "row group 1 (rows 100-199)" in errors[0].error and "last good record: row 99, id p99" in errors[0].error
    assert [(r.row, r.doc_id, r.text) for r in read if r.error is None] == [
        (i, f"p{i}", texts[i]) for i in [*range(100), *range(200, 300)]
    ]


def test_a_file_that_vanishes_or_changes_while_read_ends_with_a_damage_error(tmp_path):
    path = tmp_path / "part.jsonl"
    path.write_bytes(jsonl(big_records(60, seed=2)))
    (shard,) = list_shards(str(path))

    reading = corpus.read_records(LOCAL, shard)
    first = next(reading)
    path.write_bytes(jsonl(big_records(70, seed=3)))  # replaced under the reader
    rest = list(reading)
    assert first.error is None and rest[-1].error.startswith(corpus.DAMAGED) and "changed while it was read" in rest[-1].error

    (shard,) = list_shards(str(path))
    reading = corpus.read_records(LOCAL, shard)
    next(reading)
    path.unlink()
    rest = list(reading)
    assert rest[-1].error.startswith(corpus.DAMAGED) and "vanished" in rest[-1].error


def test_byte_order_mark_and_crlf_line_ends_are_read_as_plain_utf8(tmp_path):
    lines = [json.dumps({"id": f"b{i}", "text": f"Ada Lovelace met Alan Turing {i}."}) for i in range(3)]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bom.jsonl").write_bytes(corpus.BOM + "\r\n".join(lines).encode() + b"\r\n")
    (tmp_path / "in" / "bom.txt").write_bytes(corpus.BOM + "Grace Hopper\r\nvisited Oslo.\r\n".encode())

    read = records_of(tmp_path / "in" / "bom.jsonl") + records_of(tmp_path / "in" / "bom.txt")

    assert [(r.doc_id, r.text, r.error) for r in read] == [
        ("b0", "Ada Lovelace met Alan Turing 0.", None), ("b1", "Ada Lovelace met Alan Turing 1.", None),
        ("b2", "Ada Lovelace met Alan Turing 2.", None),
        (str(tmp_path / "in" / "bom.txt"), "Grace Hopper\r\nvisited Oslo.\r\n", None),
    ]


# ---- big files in pieces ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("split_bytes", [1, 97, 1000, 4096, 10**9])
def test_byte_ranges_read_every_line_exactly_once(tmp_path, split_bytes):
    records = [{"id": f"r{i}", "text": "x" * (i * 37 % 300 + 1)} for i in range(60)]
    body = b"".join(json.dumps(r).encode() + (b"\r\n" if i % 3 else b"\n") + (b"\n" if i % 7 == 0 else b"") for i, r in enumerate(records))
    path = tmp_path / "big.jsonl"
    path.write_bytes(corpus.BOM + body[:-1])  # no newline after the last record

    shards = list_shards(str(path), split_bytes=split_bytes)
    read = [r for shard in shards for r in corpus.read_records(LOCAL, shard)]

    assert [(r.doc_id, r.text) for r in read] == [(r["id"], r["text"]) for r in records]
    if split_bytes < path.stat().st_size:
        assert len(shards) == -(-path.stat().st_size // split_bytes) and shards[-1].stop == path.stat().st_size
        assert [(s.start, s.stop) for s in shards] == [(a, min(a + split_bytes, path.stat().st_size)) for a in range(0, path.stat().st_size, split_bytes)]
    else:
        assert [(s.start, s.stop) for s in shards] == [(0, None)]


def test_parquet_pieces_are_runs_of_row_groups_with_the_files_row_numbers(tmp_path):
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"text": [f"text {i} " * 30 for i in range(500)]}), path, row_group_size=50)

    shards = list_shards(str(path), split_bytes=1)  # every row group is over it: one piece each
    read = [r for shard in shards for r in corpus.read_records(LOCAL, shard)]

    assert [(s.start, s.stop) for s in shards] == [(g, g + 1) for g in range(10)]
    assert [(r.row, r.doc_id, r.text) for r in read] == [(i, f"{path}#{i}", f"text {i} " * 30) for i in range(500)]
    assert list_shards(str(path), split_bytes=None) == list_shards(str(path), split_bytes=10**9)


# ---- the extraction job ------------------------------------------------------------------------------------------
def test_damaged_shards_become_errors_and_the_job_finishes_the_rest(ray_cluster, tmp_path, tiny_gliner_dir):
    """The issue's case: a .jsonl.gz cut short beside good shards used to fail the whole job."""
    (tmp_path / "in").mkdir()
    good = big_records(6, seed=4)
    (tmp_path / "in" / "a-good.jsonl").write_bytes(jsonl(good))
    cut = big_records(20, seed=5)
    compressed = gzip.compress(jsonl(cut))
    (tmp_path / "in" / "b-cut.jsonl.gz").write_bytes(compressed[: len(compressed) // 2])
    bom = big_records(3, seed=6)
    (tmp_path / "in" / "c-bom.jsonl").write_bytes(corpus.BOM + b"".join(json.dumps(r).encode() + b"\r\n" for r in bom))
    output = str(tmp_path / "out")

    summary = extract(str(tmp_path / "in"), output, settings(tiny_gliner_dir), Scale(actors=(1, 1), chunk_size=16))

    errors = pq.read_table(f"{output}/errors").to_pylist()
    assert len(errors) == 1 and errors[0]["source"] == str(tmp_path / "in" / "b-cut.jsonl.gz")
    assert errors[0]["reason"].startswith(corpus.DAMAGED) and "ended before the end-of-stream" in errors[0]["reason"]
    kept = cut[: last_good_row(errors[0]["reason"]) + 1]
    assert 0 < len(kept) < len(cut)
    documents = {r["id"]: r["text"] for r in good + kept + bom}
    assert_same_as_predict(pq.read_table(f"{output}/mentions"), tiny_gliner_dir, documents)
    assert summary["damaged_shards"] == [str(tmp_path / "in" / "b-cut.jsonl.gz")] == success(output)["damaged_shards"]
    assert (summary["documents"], summary["failed"]) == (len(documents) + 1, 1)

    # A re-run reads the damaged shard again (here: the download completed meanwhile) and replaces its rows.
    (tmp_path / "in" / "b-cut.jsonl.gz").write_bytes(compressed)
    again = extract(str(tmp_path / "in"), output, settings(tiny_gliner_dir), Scale(actors=(1, 1), chunk_size=16))
    assert (again["shards_processed"], again["damaged_shards"], again["failed"]) == (1, [], 0)
    assert_same_as_predict(pq.read_table(f"{output}/mentions"), tiny_gliner_dir, {r["id"]: r["text"] for r in good + cut + bom})


def test_a_big_file_read_in_pieces_gives_the_output_of_one_piece_and_resumes_per_piece(ray_cluster, tmp_path, tiny_gliner_dir):
    (tmp_path / "in").mkdir()
    records = big_records(24, seed=7)
    path = tmp_path / "in" / "big.jsonl"
    path.write_bytes(jsonl(records))
    whole, pieces = str(tmp_path / "whole"), str(tmp_path / "pieces")

    extract(str(path), whole, settings(tiny_gliner_dir, split_bytes=None), Scale(actors=(1, 1), chunk_size=4))
    summary = extract(str(path), pieces, settings(tiny_gliner_dir, split_bytes=8000), Scale(actors=(1, 2), chunk_size=4))

    assert summary["shards"] == -(-path.stat().st_size // 8000) > 4 and summary["files"] == 1
    assert mention_rows(pq.read_table(f"{pieces}/mentions")) == mention_rows(pq.read_table(f"{whole}/mentions"))
    assert_same_as_predict(pq.read_table(f"{pieces}/mentions"), tiny_gliner_dir, {r["id"]: r["text"] for r in records})
    markers = sorted((tmp_path / "pieces" / "_progress").glob("shard-*.json"))
    assert len(markers) == summary["shards"]

    # Resume per piece: forget two finished pieces; the re-run redoes only those, and the output is unchanged.
    for marker in markers[:2]:
        marker.unlink()
    (tmp_path / "pieces" / "_SUCCESS").unlink()
    again = extract(str(path), pieces, settings(tiny_gliner_dir, split_bytes=8000), Scale(actors=(1, 1), chunk_size=4))
    assert again["shards_processed"] == 2
    assert mention_rows(pq.read_table(f"{pieces}/mentions")) == mention_rows(pq.read_table(f"{whole}/mentions"))
    with pytest.raises(ValueError, match="other settings.*split_bytes"):
        extract(str(path), pieces, settings(tiny_gliner_dir, split_bytes=4000))


# ---- S3 faults ---------------------------------------------------------------------------------------------------
def test_s3_throttling_dropped_connections_and_slow_answers_change_nothing(ray_cluster, s3_endpoint, s3_bucket, tiny_gliner_dir, monkeypatch):
    """Every 4th request to S3 fails (503 SlowDown, connection dropped before or during the answer) or is slow:
    extraction and the graph built from it come out as without faults, nothing counted as damaged."""
    import ray

    s3 = boto3.client("s3")
    documents = {}
    for shard in range(3):
        records = [{"id": f"s{shard}-{i}", "text": t} for i, t in enumerate(make_texts(8, seed=40 + shard, long_every=5))]
        documents.update({r["id"]: r["text"] for r in records})
        body = jsonl(records)
        s3.put_object(Bucket=s3_bucket, Key=f"corpus/part-{shard}.jsonl" + (".gz" if shard == 2 else ""),
                      Body=gzip.compress(body) if shard == 2 else body)
    output = f"s3://{s3_bucket}/out"

    with FaultyProxy(s3_endpoint, every=4, delay=0.5) as proxy:
        job = subprocess.run(
            [sys.executable, "-m", "gliner_ray.cli", "extract", "--input", f"s3://{s3_bucket}/corpus", "--output", output,
             "--model", tiny_gliner_dir, "--labels", ",".join(LABELS), "--threshold", str(THRESHOLD), "--chunk-size", "3",
             "--split-size", "2KB", "--actors", "1", "--s3-endpoint", proxy.url, "--address", ray.get_runtime_context().gcs_address],
            cwd=REPO, capture_output=True, text=True, timeout=600,
        )
        assert job.returncode == 0, job.stderr[-3000:]
        extracted_through_proxy = dict(proxy.faults)
        corpus_reads = sum(n for path, n in proxy.paths.items() if "/corpus/" in path and "list-type" not in path)

        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        graph = build_graph(output, f"s3://{s3_bucket}/graph-faulty", resolution="none")  # ids of the forms
        kg_faults = sum(proxy.faults.values()) - sum(extracted_through_proxy.values())
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)

    assert set(extracted_through_proxy) == set(KINDS) and kg_faults > 0
    assert corpus_reads > 3 * 2  # the workers read the shards through the proxy, piece by piece
    summary = success(output)
    assert summary["shards"] > summary["files"] == 3 and summary["damaged_shards"] == [] and summary["failed"] == 0
    assert_same_as_predict(pq.read_table(f"{output}/mentions"), tiny_gliner_dir, documents)
    assert pq.read_table(f"{output}/errors").num_rows == 0

    # The graph holds each mention exactly once, linked to the entity of its surface form and type.
    mentions = pq.read_table(f"{output}/mentions").to_pylist()
    linked = pq.read_table(f"s3://{s3_bucket}/graph-faulty/mention_entities").to_pylist()
    key = lambda m: (m["doc_id"], m["start"], m["end"], m["label"])  # noqa: E731
    assert sorted(map(key, linked)) == sorted(map(key, mentions))
    assert all(m["entity_id"] == entity_id(m["span"], m["label"]) for m in linked)
    entities = pq.read_table(f"s3://{s3_bucket}/graph-faulty/entities").to_pylist()
    assert sum(e["mentions"] for e in entities) == len(mentions) == graph["mentions_kept"]
    assert {e["entity_id"] for e in entities} == {m["entity_id"] for m in linked}


# ---- a full disk -------------------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs mounted for the test (root only), unmounted after it."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root and mount rights): {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_fails_with_a_clear_message_and_publishes_no_half_shard(ray_cluster, tmp_path, small_disk, tiny_gliner_dir):
    documents = write_corpus(tmp_path / "in", shards=6, docs_per_shard=6, seed=60)
    output = small_disk / "out"
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize - 80 * 1024))

    with pytest.raises(OSError, match=r"disk of .* is full \(no space left on the device of .*/out/") as failure:
        extract(str(tmp_path / "in"), str(output), settings(tiny_gliner_dir), Scale(actors=(1, 1), chunk_size=2))

    assert "re-run the same command to resume" in str(failure.value)
    assert not (output / "_SUCCESS").exists()
    assert not [p for p in output.rglob(".*") if p.is_file()]  # no temporary left behind
    published = {p.name.removeprefix("shard-").removesuffix(".json") for p in (output / "_progress").glob("shard-*.json")}
    for folder in ("mentions", "errors"):
        assert {p.name.split("-", 1)[0] for p in (output / folder).glob("*.parquet")} <= published

    filler.unlink()  # space again: the same command finishes the job, each row once
    summary = extract(str(tmp_path / "in"), str(output), settings(tiny_gliner_dir), Scale(actors=(1, 1), chunk_size=2))
    assert summary["shards_processed"] == 6 - len(published)
    assert_same_as_predict(pq.read_table(output / "mentions"), tiny_gliner_dir, documents)


# ---- node loss ---------------------------------------------------------------------------------------------------
TRAIN_STEPS = 20


@pytest.fixture(scope="module")
def node_loss(tmp_path_factory, tiny_gliner_dir, tiny_bert_dir):
    """A three-node cluster on this machine, in its own process (tests/helpers/node_loss.py): an extraction whose
    worker node dies after the first shard is published, then a training run whose worker's node dies once a
    checkpoint of step >= 2 is registered; each time a new node joins, as spot instances do. One cluster start
    serves both."""
    folder = tmp_path_factory.mktemp("node-loss")
    documents = write_corpus(folder / "in", shards=6, docs_per_shard=6, seed=70)
    temp_dir = tempfile.mkdtemp(prefix="rn-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    try:
        run = subprocess.run(
            [sys.executable, "-m", "tests.helpers.node_loss", temp_dir,
             "extract", str(folder / "in"), str(folder / "out"), tiny_gliner_dir, ",".join(LABELS), str(THRESHOLD),
             "train", str(folder / "run"), tiny_bert_dir, str(TRAIN_STEPS)],
            cwd=REPO, capture_output=True, text=True, timeout=600,
        )
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads([line for line in run.stdout.splitlines() if line.startswith("{")][-1])
    return {"documents": documents, "output": folder / "out", "run": str(folder / "run"), **results}
@pytest.mark.timeout(1200)  # a cluster of its own, a node lost and replaced: minutes on a busy machine; fail, never hang


def test_a_worker_node_killed_mid_extraction_leaves_the_output_of_an_uninterrupted_run(node_loss, tiny_gliner_dir):
    result = node_loss["extract"]
    assert result["killed"] == 1
    assert result["summary"]["shards_processed"] == 6 and result["summary"]["documents"] == len(node_loss["documents"])
    assert_same_as_predict(pq.read_table(node_loss["output"] / "mentions"), tiny_gliner_dir, node_loss["documents"])
@pytest.mark.timeout(1200)  # a cluster of its own, a node lost and replaced: minutes on a busy machine; fail, never hang


def test_a_worker_node_killed_mid_training_resumes_from_the_last_checkpoint_taking_each_step_once(node_loss, tiny_bert_dir):
    """The run resumes from the checkpoint registered when the node died; each step appears once in the metrics,
    and every step's learning rates are those of the warm-up + cosine schedule replayed without a fault."""
    from gliner_ray.training import warmup_cosine

    killed, records = node_loss["train"]["killed"], node_loss["train"]["records"]
    assert killed, "the job ended before a checkpoint of step 2 was registered: no node was killed"
    resumed = [r["step"] for r in records if r.get("resumed")]
    # a later checkpoint may have been registered between the check and the kill
    assert len(resumed) == 1 and 2 <= killed["after_checkpoint"] <= resumed[0] < TRAIN_STEPS and resumed[0] % 2 == 0, (killed, resumed)
    logged = [r for r in records if "loss" in r]
    assert [r["step"] for r in logged] == list(range(1, TRAIN_STEPS + 1))
    # the resumed schedule continues where the checkpoint left it (a fresh one would warm up again)
    settings = tiny_settings(node_loss["run"], tiny_bert_dir, steps=TRAIN_STEPS)
    encoder, other = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([{"params": [encoder], "lr": settings.lr_encoder}, {"params": [other], "lr": settings.lr_other}])
    schedule = warmup_cosine(optimizer, TRAIN_STEPS, settings.warmup_ratio)
    for record in logged:
        optimizer.step()
        schedule.step()
        assert (record["lr_encoder"], record["lr_other"]) == pytest.approx(tuple(schedule.get_last_lr()), rel=1e-9), record
