"""What extraction tests share: the labels and threshold of the tiny random GLiNER, texts about named things,
corpora written as JSON Lines, and the check that a job's mentions are those ``GLiNER.predict`` finds in this
process."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from gliner_ray import GLiNER
from gliner_ray.extract import Settings
from tests.helpers import REPO

LABELS = ("person", "organization", "location")
THRESHOLD = 0.3  # low: a random model then finds many mentions to compare
NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "IBM", "the United Nations", "Paris", "Mount Kenya", "Oslo"]
VERBS = ["met", "visited", "wrote to", "left", "praised", "founded a lab near"]


def make_texts(count: int, seed: int, long_every: int = 0) -> list[str]:
    """Sentences about named things; every ``long_every``-th text is long enough to need several model windows."""
    rng = random.Random(seed)
    texts = []
    for i in range(count):
        sentences = 60 if long_every and i % long_every == long_every - 1 else rng.randint(1, 4)
        texts.append(" ".join(
            f"{rng.choice(NAMES)} {rng.choice(VERBS)} {rng.choice(NAMES)} in {rng.randint(1900, 2020)}."
            for _ in range(sentences)
        ))
    return texts


def jsonl(records: list) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def mention_rows(table: pa.Table) -> list[tuple]:
    """Sorted (doc_id, start, end, span, label) rows: duplicates stay visible."""
    return sorted((r["doc_id"], r["start"], r["end"], r["span"], r["label"]) for r in table.to_pylist())


def expected_rows(model_dir: str, documents: dict[str, str], labels: list = list(LABELS)) -> tuple[list[tuple], dict[tuple, float]]:
    """What ``GLiNER.predict`` finds in the documents, in this process, as rows and scores; ``labels``: one list
    for all documents or one per document."""
    predictions = GLiNER.from_pretrained(model_dir).predict(list(documents.values()), labels, threshold=THRESHOLD)
    found = [
        ((doc_id, e["start"], e["end"], e["text"], e["label"]), e["score"])
        for doc_id, entities in zip(documents, predictions)
        for e in entities
    ]
    return sorted(row for row, _ in found), dict(found)


def assert_same_as_predict(mentions: pa.Table, model_dir: str, documents: dict[str, str], labels: list = list(LABELS)) -> None:
    rows, scores = expected_rows(model_dir, documents, labels)
    assert len(rows) > len(documents)  # the comparison has something to compare
    assert mention_rows(mentions) == rows
    for r in mentions.to_pylist():
        assert r["score"] == pytest.approx(scores[(r["doc_id"], r["start"], r["end"], r["span"], r["label"])], abs=1e-5)


def settings(model_dir: str, **changes) -> Settings:
    return Settings(model=model_dir, labels=LABELS, threshold=THRESHOLD, **changes)


def success(output: str) -> dict:
    fs, path = pafs.FileSystem.from_uri(output) if "://" in output else (pafs.LocalFileSystem(), output)
    with fs.open_input_stream(f"{path}/_SUCCESS") as f:
        return json.loads(f.read())


def s3_listing(bucket: str, prefix: str) -> dict[str, str]:
    """key -> ETag of the objects under ``prefix``."""
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def write_corpus(directory: Path, shards: int, docs_per_shard: int, seed: int) -> dict[str, str]:
    """``shards`` JSON Lines files of ``make_texts`` records in ``directory``; returns id -> text."""
    directory.mkdir(parents=True)
    documents = {}
    for shard in range(shards):
        records = [{"id": f"{shard}-{i}", "text": t} for i, t in enumerate(make_texts(docs_per_shard, seed + shard, long_every=3))]
        (directory / f"part-{shard:02d}.jsonl").write_bytes(jsonl(records))
        documents.update({r["id"]: r["text"] for r in records})
    return documents


def start_job(corpus: Path, output: Path, model_dir: str, *flags: str) -> subprocess.Popen:
    """``gliner-ray extract`` as its own driver process, on the test's Ray cluster."""
    import ray

    command = [
        sys.executable, "-m", "gliner_ray.cli", "extract", "--input", str(corpus), "--output", str(output),
        "--model", model_dir, "--labels", ",".join(LABELS), "--threshold", str(THRESHOLD),
        "--address", ray.get_runtime_context().gcs_address, *flags,
    ]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(condition, job: subprocess.Popen, timeout: float = 600) -> None:
    """Poll ``condition`` until it holds, generously (a job starting its own Ray on a busy machine takes minutes);
    fail the test if the job ends first or it takes too long."""
    deadline = time.time() + timeout
    while not condition():
        if job.poll() is not None:
            pytest.fail(f"the job ended (code {job.returncode}) before the test could step in:\n{job.stdout.read()[-3000:]}")
        if time.time() > deadline:
            job.kill()
            pytest.fail("timed out waiting for the job")
        time.sleep(0.05)
