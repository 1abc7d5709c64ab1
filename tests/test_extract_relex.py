"""Relation extraction at corpus scale: ``extract`` with relation types over shards on the moto S3 endpoint writes
``relations/`` beside ``mentions/`` (exactly what in-process ``predict_relations`` finds, once), a re-run adds
nothing, and ``kg`` turns the relations into typed edges."""

import boto3
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from gliner_ray import GLiNER
from gliner_ray.cli import main
from gliner_ray.extract import RELATION_SCHEMA, Scale, Settings, extract
from tests.helpers.extraction import jsonl, make_texts, s3_listing, success
from tests.helpers.reference import build_relex

LABELS = ("person", "organization", "location")
RELATIONS = ("works for", "located in")


@pytest.fixture(scope="module")
def relex_dir(tmp_path_factory, minilm_dir):
    return str(build_relex(tmp_path_factory.mktemp("relex-extract"), "dot", 20.0, minilm_dir))


def relation_rows(table: pa.Table) -> list[tuple]:
    return sorted(tuple(r[name] for name in RELATION_SCHEMA.names[:-1]) for r in table.to_pylist())


def test_relations_on_s3_are_those_of_predict_relations_written_once_and_typed_by_kg(ray_cluster, s3_bucket,
                                                                                      relex_dir):
    s3 = boto3.client("s3")
    documents = {}
    for shard, texts in enumerate([make_texts(6, seed=11), make_texts(5, seed=12)]):
        records = [{"id": f"r{shard}-{i}", "text": text} for i, text in enumerate(texts)]
        documents.update({r["id"]: r["text"] for r in records})
        s3.put_object(Bucket=s3_bucket, Key=f"corpus/part-{shard}.jsonl", Body=jsonl(records))
    output = f"s3://{s3_bucket}/out"
    # A random relex head spreads its relation scores around 0.5: a lower relation threshold keeps some.
    settings = Settings(model=relex_dir, labels=LABELS, relations=RELATIONS, relation_threshold=0.1)

    first = extract(f"s3://{s3_bucket}/corpus", output, settings, Scale(chunk_size=3))

    relations = pq.read_table(f"{output}/relations")
    assert relations.schema.remove_metadata() == RELATION_SCHEMA
    model = GLiNER.from_pretrained(relex_dir, device="cpu")
    entities, found = model.predict_relations(list(documents.values()), list(LABELS), list(RELATIONS),
                                              relation_threshold=0.1)
    expected = sorted(
        (doc_id, r["head"]["start"], r["head"]["end"], r["head"]["text"], r["head"]["label"], r["tail"]["start"],
         r["tail"]["end"], r["tail"]["text"], r["tail"]["label"], r["relation"])
        for doc_id, text_relations in zip(documents, found) for r in text_relations
    )
    assert len(expected) >= 5, "the comparison must involve real relations"
    assert relation_rows(relations) == expected  # each once
    mentions = pq.read_table(f"{output}/mentions")
    assert mentions.num_rows == sum(map(len, entities))
    assert (first["relations"], first["mentions"], first["relation_types"]) == (len(expected), mentions.num_rows,
                                                                                 list(RELATIONS))
    assert first["dropped_pairs"] >= 0  # pairs over --max-pairs per window are counted, never silent
    assert not s3_listing(s3_bucket, "out/_tmp/")

    files = s3_listing(s3_bucket, "out/relations/")
    again = extract(f"s3://{s3_bucket}/corpus", output, settings, Scale(chunk_size=3))
    assert again == first == success(output)  # a finished run is left as it was, _SUCCESS included
    assert s3_listing(s3_bucket, "out/relations/") == files

    assert main(["kg", "--mentions", output, "--output", f"s3://{s3_bucket}/graph"]) == 0
    fs, _ = pafs.FileSystem.from_uri(f"s3://{s3_bucket}")
    typed = pq.read_table(f"{s3_bucket}/graph/typed_relations", filesystem=fs)
    assert set(typed["relation"].to_pylist()) <= set(RELATIONS) and typed.num_rows > 0
    assert sum(typed["weight"].to_pylist()) == len(expected)


def test_relations_with_an_entity_only_model_are_refused_before_any_work(tmp_path, tiny_gliner_dir):
    (tmp_path / "in.jsonl").write_bytes(jsonl([{"id": "a", "text": "Ada met Alan."}]))
    with pytest.raises(ValueError, match="--relations needs a relation extraction"):
        extract(str(tmp_path / "in.jsonl"), str(tmp_path / "out"),
                Settings(model=tiny_gliner_dir, labels=LABELS, relations=RELATIONS))
    assert not (tmp_path / "out").exists()
