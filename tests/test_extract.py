"""Corpus extraction on the shared local Ray cluster, with a tiny random GLiNER, real Parquet and a real S3
endpoint (moto on loopback). Every expectation comes from ``GLiNER.predict`` run in this process, or from the
records the test itself wrote."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
import time

import boto3
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gliner_ray.cli import main
from gliner_ray.extract import Scale, Settings, extract
from gliner_ray.slicing import plan_slices
from tests.helpers.extraction import (
    LABELS, THRESHOLD, assert_same_as_predict, jsonl, make_texts, mention_rows, s3_listing, settings, start_job,
    success, wait_for, write_corpus,
)


# ---- S3 in, S3 out ------------------------------------------------------------------------------------------
def test_jsonl_shards_on_s3_give_the_mentions_of_predict_and_a_rerun_adds_nothing(ray_cluster, s3_bucket, tiny_gliner_dir):
    s3 = boto3.client("s3")
    documents = {}
    for shard, texts in enumerate([make_texts(9, seed=1, long_every=4), make_texts(7, seed=2), make_texts(5, seed=3)]):
        records = [{"id": f"s{shard}-{i}", "text": text} for i, text in enumerate(texts)]
        documents.update({r["id"]: r["text"] for r in records})
        s3.put_object(Bucket=s3_bucket, Key=f"corpus/part-{shard}.jsonl", Body=jsonl(records))
    output = f"s3://{s3_bucket}/out"

    first = extract(f"s3://{s3_bucket}/corpus", output, settings(tiny_gliner_dir), Scale(chunk_size=4))

    mentions = pq.read_table(f"{output}/mentions")
    assert mentions.schema.remove_metadata() == pa.schema(
        [("doc_id", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("span", pa.string()),
         ("label", pa.string()), ("score", pa.float32())]
    )
    assert_same_as_predict(mentions, tiny_gliner_dir, documents)
    assert max(len(text.split()) for text in documents.values()) > 384  # windowing took part
    metadata = json.loads(mentions.schema.metadata[b"gliner_ray"])
    assert metadata == {"model": tiny_gliner_dir, "labels": list(LABELS), "threshold": THRESHOLD, "flat_ner": True, "multi_label": False,
                        "precision": "fp32"}
    assert success(output) == first
    assert (first["documents"], first["failed"], first["mentions"]) == (len(documents), 0, mentions.num_rows)
    assert (first["model"], first["labels"], first["threshold"]) == (tiny_gliner_dir, list(LABELS), THRESHOLD)
    assert not s3_listing(s3_bucket, "out/_tmp/")
    errors = pq.read_table(f"{output}/errors")  # no error at all still reads as an (empty) table
    assert errors.num_rows == 0 and errors.schema.names == ["source", "row", "doc_id", "reason"]

    # Re-run: nothing left to do, no file rewritten, not even _SUCCESS.
    files = s3_listing(s3_bucket, "out/mentions/")
    again = extract(f"s3://{s3_bucket}/corpus", output, settings(tiny_gliner_dir), Scale(chunk_size=4))
    assert again == first == success(output)  # the finished run's record, statistics included, untouched
    assert s3_listing(s3_bucket, "out/mentions/") == files
    assert mention_rows(pq.read_table(f"{output}/mentions")) == mention_rows(mentions)

    # Other settings over the same output are refused, not mixed in.
    with pytest.raises(ValueError, match="other settings.*threshold"):
        extract(f"s3://{s3_bucket}/corpus", output, Settings(model=tiny_gliner_dir, labels=LABELS, threshold=0.4))


# ---- bad records ---------------------------------------------------------------------------------------------
def test_every_bad_record_becomes_an_error_row_and_good_ones_are_all_processed(ray_cluster, tmp_path, tiny_gliner_dir, caplog):
    good = dict(zip([f"g{i}" for i in range(6)], make_texts(6, seed=4)))
    lines = [
        json.dumps({"id": "g0", "text": good["g0"]}).encode(),
        b'{"id": "broken", "text": "no closing quote}',
        json.dumps({"id": "g1", "text": good["g1"]}).encode(),
        json.dumps({"id": "no-text", "body": "elsewhere"}).encode(),
        json.dumps({"id": "null-text", "text": None}).encode(),
        json.dumps({"id": "number-text", "text": 42}).encode(),
        json.dumps({"id": "blank-text", "text": "  \n "}).encode(),
        b'{"id": "bad-bytes", "text": "caf\xe9"}',
        b'["not", "an", "object"]',
        b'{"id": "lone-surrogate", "text": "a \\ud800 b"}',
        json.dumps({"id": "too-long", "text": "word " * 500}).encode(),
        json.dumps({"id": "g2", "text": good["g2"]}).encode(),
    ]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "in" / "b.jsonl").write_bytes(jsonl([{"id": k, "text": good[k]} for k in ("g3", "g4", "g5")]))
    output = str(tmp_path / "out")

    with caplog.at_level("INFO", logger="gliner_ray.extract"):
        summary = extract(str(tmp_path / "in"), output, settings(tiny_gliner_dir, max_chars=1000), Scale(actors=(1, 1), chunk_size=3))

    errors = {(r["row"], r["doc_id"]): r for r in pq.read_table(f"{output}/errors").to_pylist()}
    reasons = {key: r["reason"] for key, r in errors.items()}
    assert reasons.keys() == {
        (1, None), (3, "no-text"), (4, "null-text"), (5, "number-text"), (6, "blank-text"), (7, None), (8, None),
        (9, "lone-surrogate"), (10, "too-long"),
    }
    assert "malformed JSON" in reasons[(1, None)]
    assert "no 'text' field" in reasons[(3, "no-text")]
    assert "null" in reasons[(4, "null-text")]
    assert "int" in reasons[(5, "number-text")]
    assert reasons[(6, "blank-text")] == "empty text"
    assert "UTF-8" in reasons[(7, None)]
    assert "not an object" in reasons[(8, None)]
    assert "invalid character" in reasons[(9, "lone-surrogate")]
    assert "2500 characters" in reasons[(10, "too-long")]
    assert {r["source"] for r in errors.values()} == {str(tmp_path / "in" / "a.jsonl")}
    assert_same_as_predict(pq.read_table(f"{output}/mentions"), tiny_gliner_dir, good)
    assert (summary["documents"], summary["failed"]) == (len(good) + len(errors), len(errors))
    # where the time went, and the share of it in forward passes; one line per finished shard with the time left
    assert summary["words"] == sum(len(re.findall(r"\w+|\S", text)) for text in good.values())
    assert 0 < summary["model_busy"] < 1 and summary["stage_seconds"]["forward"] > 0
    assert set(summary["stage_seconds"]) >= {"read", "tokenize", "forward", "decode", "write"}
    shard_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("shard ")]
    assert len(shard_lines) == 2 and "shard 2/2 done" in shard_lines[-1]
    assert shard_lines[-1].endswith("100% of the input") and "words/s" in shard_lines[0]  # 2 shards: no estimate


# ---- Parquet and plain text from a local directory ----------------------------------------------------------
def test_parquet_shards_with_their_own_columns(ray_cluster, tmp_path, tiny_gliner_dir):
    texts = make_texts(10, seed=5, long_every=5)
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"key": [f"p{i}" for i in range(6)], "body": texts[:6]}), tmp_path / "in" / "0.parquet")
    pq.write_table(pa.table({"key": ["p6", "p7", "p8", "p9", "null"], "body": texts[6:] + [None]}), tmp_path / "in" / "1.parquet")
    (tmp_path / "in" / "_SUCCESS").write_text("{}")  # a marker file of whatever wrote the input: not a shard
    output = str(tmp_path / "out")

    summary = extract(str(tmp_path / "in"), output, settings(tiny_gliner_dir, id_field="key", text_field="body"), Scale(actors=(1, 1)))

    mentions = pq.read_table(f"{output}/mentions")
    assert_same_as_predict(mentions, tiny_gliner_dir, {f"p{i}": t for i, t in enumerate(texts)})
    assert len(pd.read_parquet(f"{output}/mentions")) == mentions.num_rows
    assert duckdb.sql(f"select count(*) from read_parquet('{output}/mentions/*.parquet')").fetchall() == [(mentions.num_rows,)]
    errors = pq.read_table(f"{output}/errors").to_pylist()
    assert errors == [{"source": str(tmp_path / "in" / "1.parquet"), "row": 4, "doc_id": "null", "reason": "'body' is null"}]
    assert (summary["documents"], summary["failed"], summary["shards"]) == (11, 1, 2)


def test_plain_text_files_are_one_document_each_named_by_path(ray_cluster, tmp_path, tiny_gliner_dir):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    documents = {}
    for i, text in enumerate(make_texts(4, seed=6, long_every=2)):
        path = tmp_path / "in" / ("sub" if i % 2 else "") / f"doc{i}.txt"
        path.write_text(text, encoding="utf-8")
        documents[str(path)] = text
    (tmp_path / "in" / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (tmp_path / "in" / "empty.txt").write_text("")
    output = str(tmp_path / "in" / "extracted")  # inside the input: never read back as input

    summary = extract(f"{tmp_path}/in", output, settings(tiny_gliner_dir), Scale(actors=(1, 2)))

    assert_same_as_predict(pq.read_table(f"{output}/mentions"), tiny_gliner_dir, documents)
    errors = {r["source"]: r["reason"] for r in pq.read_table(f"{output}/errors").to_pylist()}
    assert errors.keys() == {str(tmp_path / "in" / "latin1.txt"), str(tmp_path / "in" / "empty.txt")}
    assert "UTF-8" in errors[str(tmp_path / "in" / "latin1.txt")]
    assert errors[str(tmp_path / "in" / "empty.txt")] == "empty text"
    assert summary["shards"] == 6
    assert extract(f"{tmp_path}/in", output, settings(tiny_gliner_dir))["shards"] == 6


# ---- crashes ---------------------------------------------------------------------------------------------------
def test_killed_job_then_rerun_is_complete_without_duplicates(ray_cluster, tmp_path, tiny_gliner_dir):
    documents = write_corpus(tmp_path / "in", shards=8, docs_per_shard=8, seed=10)
    output = tmp_path / "out"
    job = start_job(tmp_path / "in", output, tiny_gliner_dir, "--actors", "1", "--chunk-size", "4")
    wait_for(lambda: any((output / "_progress").glob("shard-*.json")), job)
    job.send_signal(signal.SIGKILL)
    job.wait()
    finished = len(list((output / "_progress").glob("shard-*.json")))
    assert not (output / "_SUCCESS").exists() and finished < 8  # it really was cut short

    rerun = extract(str(tmp_path / "in"), str(output), settings(tiny_gliner_dir), Scale(actors=(1, 1), chunk_size=4))

    assert rerun["shards_processed"] == 8 - finished
    assert_same_as_predict(pq.read_table(output / "mentions"), tiny_gliner_dir, documents)
    assert not (output / "_tmp").exists()


def test_killed_model_actor_is_restarted_and_the_output_is_complete_without_duplicates(ray_cluster, tmp_path, tiny_gliner_dir):
    import ray

    documents = write_corpus(tmp_path / "in", shards=8, docs_per_shard=8, seed=30)
    output = tmp_path / "out"
    result: dict = {}

    def run() -> None:  # the driver, in a thread of this process: the test kills only the model actor
        try:
            result["summary"] = extract(str(tmp_path / "in"), str(output), settings(tiny_gliner_dir), Scale(actors=(1, 1), chunk_size=4))
        except BaseException as error:  # re-raised below, in the test's thread
            result["error"] = error

    def model_actors() -> dict:
        # The GCS's actor table (the public state API needs the dashboard, which the test cluster runs without).
        return {k: a for k, a in ray._private.state.actors().items() if "ScoreChunks" in a["ActorClassName"]}

    known = set(model_actors())
    driver = threading.Thread(target=run)
    driver.start()
    deadline = time.time() + 600  # generous: on a busy machine the actor starts late, and the wait ends when it does
    while not (any((output / "_tmp").glob("*/*.parquet")) and any(a["State"] == "ALIVE" for k, a in model_actors().items() if k not in known)):
        assert driver.is_alive() and time.time() < deadline, f"the run ended or stalled before the actor could be killed: {result}"
        time.sleep(0.05)
    killed = next(a for k, a in model_actors().items() if k not in known and a["State"] == "ALIVE")
    os.kill(killed["Pid"], signal.SIGKILL)
    driver.join(timeout=180)

    assert "error" not in result and not driver.is_alive(), result
    assert model_actors()[killed["ActorID"]]["NumRestarts"] >= 1
    assert result["summary"]["shards_processed"] == 8 and len(list((output / "_progress").glob("shard-*.json"))) == 8
    assert_same_as_predict(pq.read_table(output / "mentions"), tiny_gliner_dir, documents)


# ---- bad arguments fail before any work ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--input", "{tmp}/nothing-here"], "no input files matched"),
        (["--input", "{tmp}/in/*.csv"], "no input files matched"),
        (["--input", "{tmp}/out", "--output", "{tmp}/out"], "--input and --output are the same folder ({tmp}/out)"),
        (["--input", "{tmp}/out/old", "--output", "{tmp}/out"], "every file of --input {tmp}/out/old lies inside --output {tmp}/out"),
        (["--input", "{tmp}/in/notes.xml"], "cannot tell the format"),
        (["--input", "{tmp}/mixed"], "mixes input formats"),
        (["--input", "{tmp}/in", "--format", "xml"], "invalid choice"),
        (["--input", "s3://no-such-bucket/corpus"], "no input files matched s3://no-such-bucket/corpus"),
        (["--output", "s3://no-such-bucket/out"], "bucket 'no-such-bucket'"),
        (["--labels", " , "], "no entity types given"),
        (["--model", "{tmp}/in"], "is not a GLiNER checkpoint"),
        (["--threshold", "1.5"], "--threshold must lie strictly between 0 and 1"),
    ],
)
def test_bad_arguments_fail_fast_with_a_message(s3_endpoint, tmp_path, tiny_gliner_dir, capsys, flags, message):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "in" / "notes.xml").write_text("<x/>")
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "mixed" / "b.txt").write_text("x")
    if "{tmp}/out" in flags:  # an input folder that is, or lies in, the output folder
        (tmp_path / "out" / "old").mkdir(parents=True)
        (tmp_path / "out" / "old" / "a.jsonl").write_text('{"text": "x"}\n')
    given = dict(zip(["--input", "--output", "--model", "--labels"], [f"{tmp_path}/in/a.jsonl", f"{tmp_path}/out", tiny_gliner_dir, "person"]))
    given.update(zip(flags[::2], (f.format(tmp=tmp_path) for f in flags[1::2])))

    with pytest.raises(SystemExit) if message == "invalid choice" else contextlib.nullcontext():
        code = main(["extract", *[x for pair in given.items() for x in pair]])
        assert code == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or sorted(os.listdir(tmp_path / "out")) == ["old"]


# ---- the model actor's two concurrent calls (as beside a GPU) ------------------------------------------------
def test_two_chunks_scored_at_once_in_one_actor_give_the_mentions_of_predict(tmp_path, tiny_gliner_dir):
    from concurrent.futures import ThreadPoolExecutor

    from gliner_ray.corpus import Record
    from gliner_ray.extract.chunks import plan_chunk
    from gliner_ray.extract.scoring import ScoreChunks

    documents = dict(zip([f"d{i}" for i in range(12)], make_texts(12, seed=7, long_every=5)))
    records = [Record(i, doc_id, text) for i, (doc_id, text) in enumerate(documents.items())]
    chunks = [plan_chunk("k", "src", i, i == 2, records[4 * i : 4 * i + 4], settings(tiny_gliner_dir)) for i in range(3)]
    actor = ScoreChunks(settings(tiny_gliner_dir), str(tmp_path / "out"), batch_size=2, threads=1)
    with ThreadPoolExecutor(2) as pool:  # what max_concurrent_calls_per_actor=2 does in a Ray actor
        summaries = list(pool.map(actor, chunks))
    assert [s["chunk"][0].as_py() for s in summaries] == [0, 1, 2]
    assert_same_as_predict(pq.read_table(tmp_path / "out" / "_tmp" / "k"), tiny_gliner_dir, documents)
    busy = summaries[-1]["actor_forward"][0].as_py() / summaries[-1]["actor_elapsed"][0].as_py()
    assert 0 < busy <= 1


# ---- a long document, planned and scored slice by slice in the model actor --------------------------------
@pytest.mark.parametrize("flat_ner", [True, False])
def test_a_long_document_scored_in_slices_gives_the_mentions_of_scoring_it_whole(tmp_path, tiny_gliner_dir, flat_ner):
    from gliner_ray.corpus import Record
    from gliner_ray.extract.chunks import plan_chunk
    from gliner_ray.extract.scoring import ScoreChunks
    from gliner_ray.text import split_in_pieces, split_words

    long_text = "\n\n ".join(make_texts(24, seed=11, long_every=3))  # about 4,000 words, 11 windows
    records = [Record(0, "short", make_texts(1, seed=12)[0]), Record(1, "long", long_text), Record(2, "empty", "")]
    run = settings(tiny_gliner_dir, flat_ner=flat_ner)
    # One window per forward pass: scores then do not depend on which windows share a padded batch, so they match
    # exactly (in batches they differ by float rounding, below 1e-6, as between GLiNER.predict and extraction).
    actor = ScoreChunks(run, str(tmp_path / "out"), batch_size=1, threads=1, slice_words=400)

    # The slices' windows are exactly the windows of the whole document.
    tokenizer, config = actor.model.prompt_tokenizer, actor.model.config
    pieces = list(split_in_pieces(split_words, long_text, 400))
    assert len(pieces) > 50 and [w for p in pieces for w in p.words] == split_words(long_text).words
    whole_text, whole = tokenizer.plan(split_words(long_text).words, LABELS, config.max_len, config.max_width)
    for context_free in (False, True):  # False: the path of tokenizers that mark a text's first word
        tokenizer.context_free = context_free
        slices = list(plan_slices(tokenizer, pieces, tokenizer.window_budget(LABELS), config.max_len, config.max_width, 400))
        assert len(slices) > 5 and [w for s in slices for w in s.windows] == whole
        for s in slices:
            first, stop = whole_text.offsets[s.first_word], whole_text.offsets[s.first_word + len(s.word_starts)]
            assert s.text.tokens.tolist() == whole_text.tokens[first:stop].tolist()

    def mentions(long_chars: int) -> tuple[list[dict], int]:
        chunk = plan_chunk("k", "src", 0, True, records, run, long_chars=long_chars)
        assert chunk["documents"][0].values.field("sliced").to_pylist() == [False, long_chars < len(long_text), False]
        table, _, words = actor.mentions(chunk["documents"].combine_chunks().flatten(), {})
        return table.to_pylist(), words

    whole_mentions, whole_words = mentions(long_chars=1 << 30)
    sliced_mentions, sliced_words = mentions(long_chars=1000)
    assert sum(m["doc_id"] == "long" for m in whole_mentions) > 100  # the comparison has something to compare
    assert sliced_words == whole_words
    assert sliced_mentions == whole_mentions
