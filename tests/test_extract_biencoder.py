"""A bi-encoder in the extraction job: each model actor encodes the labels once, at its start, for the whole
corpus, and the mentions are those of ``GLiNER.predict`` in this process."""

import json

import pyarrow.parquet as pq

from gliner_ray.extract import Scale, extract
from tests.helpers.extraction import assert_same_as_predict, make_texts, settings, success
from tests.helpers.reference import build_reference


def test_bi_encoder_job_encodes_the_labels_once_per_actor(ray_cluster, tmp_path, tiny_bert_dir):
    model_dir = str(build_reference(tmp_path / "bi", model_name=tiny_bert_dir, labels_encoder=tiny_bert_dir,
                                    hidden_size=32, span_mode="markerV0"))
    (tmp_path / "in").mkdir()
    documents = {}
    for shard in range(2):
        records = [{"id": f"b{shard}-{i}", "text": t} for i, t in enumerate(make_texts(6, seed=20 + shard))]
        (tmp_path / "in" / f"{shard}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        documents.update((r["id"], r["text"]) for r in records)
    output = str(tmp_path / "out")

    summary = extract(str(tmp_path / "in"), output, settings(model_dir), Scale(actors=(1, 2), chunk_size=2))

    assert summary["documents"] == 12  # 6 chunks of 2 documents
    assert summary["model_actors"] >= 1
    assert summary["label_encoder_runs"] == summary["model_actors"]  # 3 labels: one label-encoder pass per actor
    assert success(output) == summary
    assert_same_as_predict(pq.read_table(f"{output}/mentions"), model_dir, documents)
