"""Per-document label sets (``extract --labels-field``): each document gets exactly what ``GLiNER.predict`` gives
it with its own entity types; bad label values become error rows; a wrong field stops the run early; a resumed run
with another field is refused. Through ``extract`` on the moto S3 endpoint and the shared local Ray cluster."""

from __future__ import annotations

import json

import boto3
import pyarrow.parquet as pq
import pytest

from gliner_ray import GLiNER
from gliner_ray.corpus import Record
from gliner_ray.extract import Limits, Scale, Settings, extract
from gliner_ray.extract.chunks import plan_chunk
from gliner_ray.extract.scoring import ScoreChunks
from tests.helpers.extraction import THRESHOLD, assert_same_as_predict, jsonl, make_texts, success

FIELD = "types"
# Each document's own types, and what they are cleaned into (spellings merged as --labels merges them).
LABEL_SETS = [
    (["person", "location"], ["person", "location"]),
    (["Organization", "organization ", " person", "PERSON"], ["Organization", "person"]),
    (["location", "person", "organization"], ["location", "person", "organization"]),
]
BAD = {  # id -> (its label value, the start of its error reason)
    "string": ("person", f"{FIELD!r} is a str, not a list"),
    "empty": ([], f"{FIELD!r} is an empty list"),
    "blank": (["person", " "], f"{FIELD!r} holds ' ', not a non-empty string"),
    "number": (["person", 3], f"{FIELD!r} holds 3"),
    "null": (None, f"{FIELD!r} is null"),
    "missing": (..., f"no {FIELD!r} field; pass --labels-field"),
}
MANY_LABELS = [f"entity type number {i} with a{' long' * (i % 3)} descriptive name" for i in range(60)]


def field_settings(model_dir: str, field: str = FIELD) -> Settings:
    return Settings(model=model_dir, labels=(), labels_field=field, threshold=THRESHOLD)


def test_each_document_gets_the_mentions_of_predict_with_its_own_labels(ray_cluster, s3_bucket, tiny_gliner_dir):
    s3 = boto3.client("s3")
    documents, labels, records = {}, [], []
    for i, text in enumerate(make_texts(14, seed=5, long_every=5)):
        given, cleaned = LABEL_SETS[i % len(LABEL_SETS)]
        records.append({"id": f"d{i}", "text": text, FIELD: given})
        documents[f"d{i}"] = text
        labels.append(cleaned)
    for doc_id, (value, _) in BAD.items():
        records.insert(len(records) // 2, {"id": doc_id, "text": "Ada Lovelace met Alan Turing."}
                       | ({} if value is ... else {FIELD: value}))
    s3.put_object(Bucket=s3_bucket, Key="corpus/part-0.jsonl", Body=jsonl(records[:10]))
    s3.put_object(Bucket=s3_bucket, Key="corpus/part-1.jsonl", Body=jsonl(records[10:]))
    output = f"s3://{s3_bucket}/out"

    result = extract(f"s3://{s3_bucket}/corpus", output, field_settings(tiny_gliner_dir), Scale(chunk_size=4))

    mentions = pq.read_table(f"{output}/mentions")
    assert_same_as_predict(mentions, tiny_gliner_dir, documents, labels)
    errors = {r["doc_id"]: r["reason"] for r in pq.read_table(f"{output}/errors").to_pylist()}
    assert sorted(errors) == sorted(BAD)
    for doc_id, (_, reason) in BAD.items():
        assert errors[doc_id].startswith(reason), errors[doc_id]
    assert json.loads(mentions.schema.metadata[b"gliner_ray"])["labels_field"] == FIELD
    assert result == success(output)
    assert (result["labels_field"], result["label_sets"], result["labels"]) == (FIELD, len(LABEL_SETS), [])
    assert (result["documents"], result["failed"]) == (len(records), len(BAD))

    # A resumed run reading another field is refused, not mixed in (no early stop: no record has that field).
    with pytest.raises(ValueError, match="other settings.*labels_field"):
        extract(f"s3://{s3_bucket}/corpus", output, field_settings(tiny_gliner_dir, "labels"), Scale(chunk_size=4),
                limits=Limits(early_stop_records=0))


def test_label_sets_that_need_several_passes_beside_others_give_the_mentions_of_predict(tmp_path, tiny_gliner_dir):
    """The model actor (without Ray): a label set too long for one prompt is scored in passes, beside documents
    with short sets in the same chunk and forward passes."""
    texts = make_texts(6, seed=6, long_every=3)
    own = [MANY_LABELS if i % 2 else ["person", "location"] for i in range(len(texts))]
    settings = field_settings(tiny_gliner_dir).cleaned()
    records = [Record(i, f"d{i}", text, None, tuple(labels)) for i, (text, labels) in enumerate(zip(texts, own))]
    actor = ScoreChunks(settings, str(tmp_path / "out"), batch_size=4, threads=1)
    summary = actor(plan_chunk("k", "src", 0, True, records, settings)).to_pylist()[0]

    assert len(actor._passes(tuple(MANY_LABELS))) > 1 == len(actor._passes(("person", "location")))
    table = pq.read_table(tmp_path / "out" / "_tmp" / "k").to_pylist()
    expected = GLiNER.from_pretrained(tiny_gliner_dir, device="cpu").predict(texts, own, threshold=THRESHOLD, batch_size=4)
    assert summary["mentions"] == len(table) == sum(map(len, expected)) > 10
    got = [(r["doc_id"], r["start"], r["end"], r["label"], pytest.approx(r["score"], abs=1e-5)) for r in table]
    want = [(f"d{i}", e["start"], e["end"], e["label"], e["score"]) for i, doc in enumerate(expected) for e in doc]
    assert sorted(got, key=str) == sorted(want, key=str)


def test_a_field_no_record_has_stops_the_run_early_naming_the_flag(tmp_path, tiny_gliner_dir):
    corpus = tmp_path / "in.jsonl"
    corpus.write_bytes(jsonl([{"id": i, "text": t, "labels": ["person"]} for i, t in enumerate(make_texts(5, seed=7))]))
    with pytest.raises(ValueError, match=f"first 5 records.*no {FIELD!r} field; pass --labels-field"):
        extract(str(corpus), str(tmp_path / "out"), field_settings(tiny_gliner_dir))
    assert not (tmp_path / "out" / "_progress").exists()


def test_labels_and_labels_field_are_alternatives_and_relations_are_refused_with_it(tiny_gliner_dir, tmp_path):
    both = Settings(model=tiny_gliner_dir, labels=("person",), labels_field=FIELD)
    with pytest.raises(ValueError, match="alternatives"):
        extract(str(tmp_path), str(tmp_path / "out"), both)
    with pytest.raises(ValueError, match="--labels-field cannot go with --relations"):
        extract(str(tmp_path), str(tmp_path / "out"), Settings(model=tiny_gliner_dir, labels=(), labels_field=FIELD,
                                                               relations=("works for",)))
