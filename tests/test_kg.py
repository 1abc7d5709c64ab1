"""The knowledge-graph job on hand-built mentions: exact entity, relation and mention tables written by hand, ids
stable across runs, input orders and shardings, Neo4j CSVs parsed back, S3 in and out, and clear errors."""

from __future__ import annotations

import collections
import csv
import hashlib
import json
import math
import random

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from gliner_ray.cli import main
from gliner_ray.kg import build_graph, cooccurrences, entity_id, normalize_surface

FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})
MENTION_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("span", pa.string()),
    ("label", pa.string()), ("score", pa.float32()),
])
# Scores are exact in float32, so means and maxima below are exact too.
MENTIONS = [
    ("d1", 0, 3, "IBM", "organization", 0.75),
    ("d1", 10, 18, "Tim Cook", "person", 0.875),
    ("d1", 24, 29, "Apple", "organization", 0.5),
    ("d2", 0, 4, "IBM ", "organization", 0.875),
    ("d2", 9, 14, "apple", "organization", 0.75),
    ("d2", 16, 25, "Tim  Cook", "person", 0.625),
    ("d2", 27, 33, "Google", "organization", 0.25),  # below --min-score 0.5
    ("d3", 0, 3, "ＩＢＭ", "organization", 0.5),
    ("d3", 10, 15, "Apple", "product", 0.875),
    ("d3", 16, 20, "ibm.", "organization", 0.625),
]
# blake2b-64 of normalized form + 0x1F + label (checked in test_entity_ids_follow_the_documented_hash).
IBM, APPLE, COOK, APPLE_PRODUCT = "0befcd57659f91d9", "5bd9fabe7e41fd65", "7c99e1a520f67f58", "41d3d4ac4bde83eb"
ENTITIES = [  # entity_id, name, label, mentions, documents, aliases, mean_score, max_score
    (IBM, "IBM", "organization", 4, 3, 3, 0.6875, 0.875),  # IBM, "IBM " (same display form), ＩＢＭ, ibm.
    (APPLE, "Apple", "organization", 2, 2, 2, 0.625, 0.75),  # "Apple" and "apple" tie: the smaller string wins
    (COOK, "Tim Cook", "person", 2, 2, 1, 0.75, 0.875),
    (APPLE_PRODUCT, "Apple", "product", 1, 1, 1, 0.875, 0.875),
]
# Whole-document scope: d1 and d2 pair IBM, Apple, Tim Cook once each; d3 has IBM twice with Apple (product).
RELATIONS = [  # source_id < target_id, documents, weight
    (IBM, APPLE_PRODUCT, 1, 2),
    (IBM, APPLE, 2, 2),
    (IBM, COOK, 2, 2),
    (APPLE, COOK, 2, 2),
]
RELATION_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("head_start", pa.int64()), ("head_end", pa.int64()), ("head_span", pa.string()),
    ("head_label", pa.string()), ("tail_start", pa.int64()), ("tail_end", pa.int64()), ("tail_span", pa.string()),
    ("tail_label", pa.string()), ("relation", pa.string()), ("score", pa.float32()),
])
# Relation rows over MENTIONS, as relation extraction writes them (head, tail, relation, score).
RELATION_ROWS = [
    ("d1", 10, 18, "Tim Cook", "person", 24, 29, "Apple", "organization", "works for", 0.875),
    ("d1", 0, 3, "IBM", "organization", 24, 29, "Apple", "organization", "competes with", 0.25),  # low score
    ("d2", 16, 25, "Tim  Cook", "person", 9, 14, "apple", "organization", "works for", 0.75),
    ("d2", 0, 4, "IBM ", "organization", 9, 14, "apple", "organization", "competes with", 0.5),
    ("d2", 27, 33, "Google", "organization", 0, 4, "IBM ", "organization", "competes with", 0.875),  # no Google
    ("d3", 10, 15, "Apple", "product", 0, 3, "ＩＢＭ", "organization", "made by", 0.625),
]
TYPED_RELATIONS = [  # source_id (head), target_id (tail), relation, documents, weight, mean_score, max_score
    (COOK, APPLE, "works for", 2, 2, 0.8125, 0.875),
    (IBM, APPLE, "competes with", 1, 1, 0.5, 0.5),
    (APPLE_PRODUCT, IBM, "made by", 1, 1, 0.625, 0.625),
]
MENTION_ENTITY = {("d1", 0): IBM, ("d1", 10): COOK, ("d1", 24): APPLE, ("d2", 0): IBM, ("d2", 9): APPLE,
                  ("d2", 16): COOK, ("d3", 0): IBM, ("d3", 10): APPLE_PRODUCT, ("d3", 16): IBM}


def write_mentions(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(zip(*rows)) if rows else [[] for _ in MENTION_SCHEMA]
    pq.write_table(pa.table([pa.array(c, f.type) for c, f in zip(columns, MENTION_SCHEMA)], schema=MENTION_SCHEMA),
                   path)


def write_relations(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([dict(zip(RELATION_SCHEMA.names, r)) for r in rows], schema=RELATION_SCHEMA),
                   path)


def write_extraction_output(root, rows, finished: bool = True, relations=None) -> None:
    """The layout the extraction job leaves: mentions/*.parquet (and relations/*.parquet), then _SUCCESS."""
    write_mentions(root / "mentions" / "part-00000.parquet", rows)
    if relations is not None:
        write_relations(root / "relations" / "part-00000.parquet", relations)
    if finished:
        (root / "_SUCCESS").write_text(json.dumps({"mentions": len(rows)}))


def read_rows(path, filesystem=None) -> list[tuple]:
    """A written table as sorted tuples."""
    return sorted(tuple(row.values()) for row in pq.read_table(path, filesystem=filesystem).to_pylist())


def assert_graph(output, entities=ENTITIES, relations=RELATIONS, filesystem=None) -> None:
    assert read_rows(f"{output}/entities", filesystem) == sorted(entities)
    assert read_rows(f"{output}/relations", filesystem) == sorted(relations)


# --- pure functions -------------------------------------------------------------------------------------------


def test_normalize_surface_folds_case_compatibility_forms_and_edges():
    for variant in ["IBM", "IBM ", "ＩＢＭ", "ibm.", "(IBM)", '"IBM",', "\tIbm\u3000"]:
        assert normalize_surface(variant) == "ibm", variant
    assert normalize_surface(" Tim \n  Cook ") == "tim cook"
    assert normalize_surface("Straße") == "strasse"
    assert normalize_surface("C++") == "c++"  # symbols are not punctuation
    assert normalize_surface("U.S.") == "u.s"  # only surrounding punctuation goes
    assert normalize_surface("...") == "..."  # all punctuation: kept, so the mention still has an entity


def test_entity_ids_follow_the_documented_hash():
    def expected(form: str, label: str) -> str:
        return hashlib.blake2b(f"{form}\x1f{label}".encode(), digest_size=8).hexdigest()

    assert (IBM, APPLE, COOK, APPLE_PRODUCT) == (
        expected("ibm", "organization"), expected("apple", "organization"), expected("tim cook", "person"),
        expected("apple", "product"),
    )
    assert {entity_id(v, "organization") for v in ["IBM", "IBM ", "ＩＢＭ", "ibm."]} == {IBM}
    assert entity_id("Apple", "product") == APPLE_PRODUCT != entity_id("Apple", "organization")


def test_cooccurrences_count_mention_pairs_in_scope_document_by_document():
    # a:[0,5) b:[5,8) (adjacent: gap 0)  c:[2,4) (inside a)  a:[20,25)  b:[27,30) (gap 2 after the second a)
    doc = pa.table({"doc_id": ["d"] * 5, "entity_id": ["a", "b", "c", "a", "b"], "start": [0, 5, 2, 20, 27],
                    "end": [5, 8, 4, 25, 30]})

    def pairs(mentions, window):
        table = cooccurrences(mentions.take(np.random.default_rng(0).permutation(mentions.num_rows)), window)
        return sorted(zip(*table.select(["source_id", "target_id", "documents", "weight"]).to_pydict().values()))

    assert pairs(doc, 0) == [("a", "b", 1, 1), ("a", "c", 1, 1)]  # c-b: gap 5 - 4 = 1 > 0
    assert pairs(doc, 2) == [("a", "b", 1, 2), ("a", "c", 1, 1), ("b", "c", 1, 1)]
    assert pairs(doc, None) == [("a", "b", 1, 4), ("a", "c", 1, 2), ("b", "c", 1, 2)]  # 2*2, 2*1, 2*1 mention pairs
    assert pairs(doc, 1000) == pairs(doc, None)  # a window longer than the document is the document
    assert cooccurrences(doc.slice(0, 1), None).num_rows == 0
    # a second document with the same mentions: pairs never cross documents, they add up over them
    other = doc.set_column(0, "doc_id", pa.array(["e"] * 5))
    both = pa.concat_tables([doc, other])
    for window in (0, 2, None):
        assert pairs(both, window) == [(s, t, 2 * n, 2 * w) for s, t, n, w in pairs(doc, window)]


# --- the job on Ray -------------------------------------------------------------------------------------------


def test_graph_from_extraction_output(ray_cluster, tmp_path):
    write_extraction_output(tmp_path / "extraction", MENTIONS)
    output = tmp_path / "graph"
    summary = build_graph(str(tmp_path / "extraction"), str(output), min_score=0.5, neo4j=True)

    assert_graph(output)
    linked = pq.read_table(output / "mention_entities").to_pylist()
    assert {(row["doc_id"], row["start"]): row["entity_id"] for row in linked} == MENTION_ENTITY
    assert len(linked) == 9 == sum(entity[3] for entity in ENTITIES)
    assert {k: summary[k] for k in ("mentions_read", "mentions_below_min_score", "mentions_of_rare_entities",
                                    "mentions_kept", "entities", "relations")} == {
        "mentions_read": 10, "mentions_below_min_score": 1, "mentions_of_rare_entities": 0, "mentions_kept": 9,
        "entities": 4, "relations": 4}
    assert json.loads((output / "_SUCCESS").read_text()) == summary
    assert all(p.name.startswith("part-00") for p in (output / "entities").iterdir())  # same names every run

    # Neo4j import files: a header file, then headerless parts, read back as neo4j-admin would.
    def read_csv(name):
        header = (output / "neo4j" / f"{name}_header.csv").read_text().strip()
        rows = []
        for part in sorted((output / "neo4j" / name).glob("part-*.csv")):
            rows += list(csv.reader(part.read_text(encoding="utf-8").splitlines()))
        return header, sorted(rows)

    header, nodes = read_csv("entities")
    assert header == "entity_id:ID,name,label,:LABEL,mentions:long,documents:long,mean_score:double,max_score:double"
    assert nodes == sorted([
        [IBM, "IBM", "organization", "Entity;organization", "4", "3", "0.6875", "0.875"],
        [APPLE, "Apple", "organization", "Entity;organization", "2", "2", "0.625", "0.75"],
        [COOK, "Tim Cook", "person", "Entity;person", "2", "2", "0.75", "0.875"],
        [APPLE_PRODUCT, "Apple", "product", "Entity;product", "1", "1", "0.875", "0.875"],
    ])
    header, relationships = read_csv("relations")
    assert header == ":START_ID,:END_ID,:TYPE,documents:long,weight:long"
    assert relationships == sorted([[s, t, "CO_OCCURS_WITH", str(d), str(w)] for s, t, d, w in RELATIONS])


def test_window_scope_and_min_count(ray_cluster, tmp_path):
    write_mentions(tmp_path / "mentions" / "m.parquet", MENTIONS)
    summary = build_graph(str(tmp_path / "mentions"), str(tmp_path / "graph"), min_score=0.5, window=6, min_count=2)
    # --min-count 2 drops Apple (product), its one mention and its edges.
    assert read_rows(tmp_path / "graph" / "entities") == sorted(ENTITIES[:3])
    linked = pq.read_table(tmp_path / "graph" / "mention_entities")
    assert linked.num_rows == 8 == summary["mentions_kept"] == sum(entity[3] for entity in ENTITIES[:3])
    assert APPLE_PRODUCT not in linked["entity_id"].to_pylist()
    assert (summary["mentions_read"], summary["mentions_below_min_score"], summary["mentions_of_rare_entities"]) == (
        10, 1, 1)
    # --window 6: d1: Tim Cook-Apple gap 24 - 18 = 6 (in), IBM-Tim Cook gap 7 (out); d2: IBM-apple gap 5,
    # apple-Tim Cook gap 2 (in), IBM-Tim Cook gap 12 (out); d3: Apple (product)-ibm. gap 1 (in, but dropped).
    assert read_rows(tmp_path / "graph" / "relations") == sorted([(APPLE, COOK, 2, 2), (IBM, APPLE, 1, 1)])


def test_same_graph_from_reordered_shards_over_a_previous_graph(ray_cluster, tmp_path):
    # The rows in another order, in two shards that split document d2, read through a glob, with 3 partitions.
    shuffled = random.Random(7).sample(MENTIONS, len(MENTIONS))
    first_shard = [m for m in shuffled if m[0] == "d1" or m[1:3] == (0, 4)]
    write_mentions(tmp_path / "shards" / "part-0.parquet", first_shard)
    write_mentions(tmp_path / "shards" / "part-1.parquet", [m for m in shuffled if m not in first_shard])
    # A previous graph with a stale part file: --overwrite must leave nothing of it.
    output = tmp_path / "graph"
    (output / "entities").mkdir(parents=True)
    (output / "entities" / "part-99999.parquet").write_bytes(b"stale")
    (output / "_SUCCESS").write_text("{}")

    build_graph(str(tmp_path / "shards" / "part-*.parquet"), str(output), min_score=0.5, overwrite=True, partitions=3)
    assert_graph(output)  # the same ids, entities and edges as from the single ordered file
    assert not (output / "entities" / "part-99999.parquet").exists()
    assert json.loads((output / "_SUCCESS").read_text())["files"] == 2


def test_graph_on_s3(ray_cluster, s3_bucket, capsys):
    fs, _ = pafs.FileSystem.from_uri(f"s3://{s3_bucket}")  # the moto endpoint, from AWS_ENDPOINT_URL
    with fs.open_output_stream(f"{s3_bucket}/extraction/mentions/part-00000.parquet") as f:
        pq.write_table(pa.Table.from_pylist([dict(zip(MENTION_SCHEMA.names, m)) for m in MENTIONS],
                                            schema=MENTION_SCHEMA), f)
    # --window 0: no two mentions here touch, so the graph has no edges, and the edge tables must still exist.
    command = ["kg", "--mentions", f"s3://{s3_bucket}/extraction", "--output", f"s3://{s3_bucket}/graph",
               "--min-score", "0.5", "--window", "0", "--neo4j"]

    assert main(command) == 2  # the extraction has not written _SUCCESS
    assert "without _SUCCESS" in capsys.readouterr().err
    assert main([*command, "--allow-incomplete"]) == 0
    assert_graph(f"{s3_bucket}/graph", relations=[], filesystem=fs)
    assert pq.read_table(f"{s3_bucket}/graph/relations", filesystem=fs).column_names == [
        "source_id", "target_id", "documents", "weight"]
    with fs.open_input_stream(f"{s3_bucket}/graph/neo4j/relations/part-00000.csv") as f:
        assert f.read() == b""
    with fs.open_input_stream(f"{s3_bucket}/graph/_SUCCESS") as f:
        assert json.loads(f.read())["mentions_kept"] == 9
    assert main([*command, "--allow-incomplete"]) == 2  # a second run needs --overwrite
    assert "pass --overwrite" in capsys.readouterr().err


# --- bad input ------------------------------------------------------------------------------------------------


def run_cli(capsys, *args) -> str:
    """Run ``gliner-ray kg``; expect the one-line error exit, and return the message."""
    assert main(["kg", *map(str, args)]) == 2
    return capsys.readouterr().err


def test_bad_input_is_a_clear_error_before_any_output(tmp_path, capsys):
    output = tmp_path / "graph"
    assert "no such file or directory" in run_cli(capsys, "--mentions", tmp_path / "nowhere", "--output", output)
    (tmp_path / "empty").mkdir()
    assert "no mention Parquet files" in run_cli(capsys, "--mentions", tmp_path / "empty", "--output", output)
    write_extraction_output(tmp_path / "running", MENTIONS, finished=False)
    message = run_cli(capsys, "--mentions", tmp_path / "running", "--output", output)
    assert "without _SUCCESS" in message and "--allow-incomplete" in message
    pq.write_table(pa.table({"doc_id": ["d1"], "span": ["IBM"]}), tmp_path / "partial.parquet")
    assert "column 'start' is missing" in run_cli(
        capsys, "--mentions", tmp_path / "partial.parquet", "--output", output)
    pq.write_table(pa.table({"doc_id": [1], "start": [0], "end": [3], "span": ["IBM"], "label": ["org"],
                             "score": [0.5]}), tmp_path / "int_ids.parquet")
    assert "'doc_id' has type int64, expected string" in run_cli(
        capsys, "--mentions", tmp_path / "int_ids.parquet", "--output", output)
    write_mentions(tmp_path / "in" / "m.parquet", MENTIONS)
    assert "overlaps the input" in run_cli(capsys, "--mentions", tmp_path / "in", "--output", tmp_path / "in" / "g")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    message = run_cli(capsys, "--mentions", tmp_path / "in", "--output", tmp_path / "other", "--overwrite")
    assert "did not write (notes.txt)" in message
    (tmp_path / "old" / "entities").mkdir(parents=True)
    assert "pass --overwrite" in run_cli(capsys, "--mentions", tmp_path / "in", "--output", tmp_path / "old")
    with pytest.raises(SystemExit):
        main(["kg", "--mentions", str(tmp_path / "in"), "--output", str(output), "--window", "-3"])
    assert not output.exists()
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_bad_values_are_a_clear_error_before_any_output(ray_cluster, tmp_path, capsys):
    output = tmp_path / "graph"
    write_mentions(tmp_path / "no_rows" / "m.parquet", [])
    assert "hold no rows" in run_cli(capsys, "--mentions", tmp_path / "no_rows", "--output", output)
    write_mentions(tmp_path / "low" / "m.parquet", MENTIONS)
    assert "none of the 10 mentions has score >= 0.9;" in run_cli(
        capsys, "--mentions", tmp_path / "low", "--output", output, "--min-score", "0.9")
    # A float32 score of 0.9 passes --min-score 0.9 (compared in float32), then meets --min-count.
    write_mentions(tmp_path / "high" / "m.parquet", [("d1", 0, 3, "IBM", "organization", 0.9)] + MENTIONS)
    assert "no entity has --min-count 9 mentions (the most mentioned has 1)" in run_cli(
        capsys, "--mentions", tmp_path / "high", "--output", output, "--min-score", "0.9", "--min-count", "9")
    table = pa.Table.from_pylist([dict(zip(MENTION_SCHEMA.names, m)) for m in MENTIONS], schema=MENTION_SCHEMA)
    table = table.set_column(0, "doc_id", pa.array(["d1", None] + ["d2"] * 8, pa.string()))
    (tmp_path / "nulls").mkdir()
    pq.write_table(table, tmp_path / "nulls" / "m.parquet")
    assert "null values in doc_id (1 rows)" in run_cli(capsys, "--mentions", tmp_path / "nulls", "--output", output)
    assert not output.exists()


# --- the engine against the definitions, on a random corpus ------------------------------------------------


def reference_graph(rows: list[tuple], min_score: float, min_count: int, window: int | None):
    """Entity and relation rows by the module's definitions, in plain Python, one mention and one pair at a time."""
    by_entity = collections.defaultdict(list)
    for row in rows:
        if row[5] >= min_score:
            by_entity[entity_id(row[3], row[4])].append(row)
    by_entity = {e: ms for e, ms in by_entity.items() if len(ms) >= min_count}
    entities = []
    for entity, mentions in by_entity.items():
        forms = collections.Counter(" ".join(m[3].split()) for m in mentions)
        scores = [m[5] for m in mentions]
        entities.append((entity, min(forms, key=lambda f: (-forms[f], f)), mentions[0][4], len(mentions),
                         len({m[0] for m in mentions}), len(forms), math.fsum(scores) / len(scores), max(scores)))
    by_document = collections.defaultdict(list)
    for entity, mentions in by_entity.items():
        for m in mentions:
            by_document[m[0]].append((entity, m[1], m[2]))
    weights, documents = collections.Counter(), collections.defaultdict(set)
    for doc, mentions in by_document.items():
        for i, (a, a_start, a_end) in enumerate(mentions):
            for b, b_start, b_end in mentions[i + 1:]:
                if a != b and (window is None or max(a_start, b_start) - min(a_end, b_end) <= window):
                    weights[min(a, b), max(a, b)] += 1
                    documents[min(a, b), max(a, b)].add(doc)
    relations = [(s, t, len(documents[s, t]), w) for (s, t), w in weights.items()]
    return sorted(entities), sorted(relations)


def random_mentions(rng: random.Random, documents: int = 60) -> list[tuple]:
    """Mention rows with many surface variants of few names, sometimes overlapping, in a random order."""
    names = ["IBM", "Tim Cook", "Apple", "Straße", "U.S.", "C++", "São Paulo", "...", "Ümit", "new york"]
    surfaces = [v for n in names for v in (n, n.upper(), f" {n}.", n.replace(" ", "  "), n.translate(FULL_WIDTH))]
    rows = []
    for doc in range(documents):
        position = 0
        for _ in range(rng.randint(0, 12)):
            span = rng.choice(surfaces)
            position += rng.randint(0, 8)
            start, end = position, position + len(span)
            score = float(np.float32(rng.random()))  # exact in float32: the reference sees the stored value
            rows.append((f"doc-{doc}", start, end, span, rng.choice(["organization", "place"]), score))
            position = end - rng.randint(0, 3)  # sometimes overlapping the next one
    rng.shuffle(rows)
    return rows


@pytest.mark.parametrize("window, min_count, min_score", [(None, 1, 0.0), (15, 2, 0.3)])
def test_partitioned_graph_matches_the_definitions(ray_cluster, tmp_path, window, min_count, min_score):
    rows = random_mentions(random.Random(11))
    for part in range(3):
        write_mentions(tmp_path / "mentions" / f"part-{part}.parquet", rows[part::3])

    summary = build_graph(str(tmp_path / "mentions"), str(tmp_path / "graph"), min_score=min_score,
                          min_count=min_count, window=window, partitions=4, resolution="none")
    entities, relations = reference_graph(rows, min_score, min_count, window)
    assert read_rows(tmp_path / "graph" / "entities") == entities
    assert read_rows(tmp_path / "graph" / "relations") == relations
    assert len(relations) > 20 and len(entities) > 20  # a real graph, not a trivial one
    linked = pq.read_table(tmp_path / "graph" / "mention_entities")
    assert collections.Counter(linked["entity_id"].to_pylist()) == {e[0]: e[3] for e in entities}
    assert summary["mentions_kept"] == linked.num_rows == sum(e[3] for e in entities)
    assert len(list((tmp_path / "graph" / "entities").glob("part-*.parquet"))) > 1  # partitions written apart


def test_a_bad_file_after_the_first_is_a_clear_error_before_any_output(ray_cluster, tmp_path, capsys):
    # The driver checks the first file's columns; the read tasks check every other file, and say which one.
    write_mentions(tmp_path / "in" / "part-0.parquet", MENTIONS)
    (tmp_path / "in" / "part-1.parquet").write_bytes(b"not parquet")
    message = run_cli(capsys, "--mentions", tmp_path / "in", "--output", tmp_path / "graph")
    assert "cannot read" in message and "part-1.parquet" in message
    (tmp_path / "in" / "part-1.parquet").unlink()
    pq.write_table(pa.table({"doc_id": ["d9"], "start": [0], "end": [3], "span": ["IBM"]}), tmp_path / "in" / "part-2.parquet")
    assert "column 'label' is missing" in run_cli(capsys, "--mentions", tmp_path / "in", "--output", tmp_path / "graph")
    assert not (tmp_path / "graph").exists()


# --- typed relations --------------------------------------------------------------------------------------------


def test_typed_relations_from_extraction_output(ray_cluster, tmp_path):
    write_extraction_output(tmp_path / "typed", MENTIONS, relations=RELATION_ROWS)
    write_extraction_output(tmp_path / "plain", MENTIONS)
    summary = build_graph(str(tmp_path / "typed"), str(tmp_path / "graph"), min_score=0.5, neo4j=True)
    plain = build_graph(str(tmp_path / "plain"), str(tmp_path / "plain_graph"), min_score=0.5, neo4j=True)

    assert read_rows(tmp_path / "graph" / "typed_relations") == sorted(TYPED_RELATIONS)
    assert_graph(tmp_path / "graph")  # co-occurrence edges as without relations
    assert {k: summary[k] for k in ("relations_read", "relations_below_min_score", "relations_of_dropped_entities",
                                    "relations_kept", "typed_relations")} == {
        "relations_read": 6, "relations_below_min_score": 1, "relations_of_dropped_entities": 1,
        "relations_kept": 4, "typed_relations": 3}
    assert sum(row[4] for row in TYPED_RELATIONS) == 4

    # Without relations: no typed table, no typed counts, and every other file byte for byte the same.
    def files(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()
                and p.name != "_SUCCESS"}
    typed_files, plain_files = files(tmp_path / "graph"), files(tmp_path / "plain_graph")
    assert {name for name in typed_files if "typed_relations" not in name} == set(plain_files)
    assert all(typed_files[name] == content for name, content in plain_files.items())
    assert not any("typed" in key for key in plain)
    assert {k: v for k, v in summary.items() if not k.startswith(("relations_", "typed_"))} == {
        **plain, "mentions": str(tmp_path / "typed")}

    # Neo4j: one relationship file set with the relation as :TYPE in upper snake case.
    header = (tmp_path / "graph" / "neo4j" / "typed_relations_header.csv").read_text().strip()
    assert header == (":START_ID,:END_ID,:TYPE,relation,documents:long,weight:long,mean_score:double,"
                      "max_score:double")
    rows = []
    for part in sorted((tmp_path / "graph" / "neo4j" / "typed_relations").glob("part-*.csv")):
        rows += list(csv.reader(part.read_text(encoding="utf-8").splitlines()))
    assert sorted(rows) == sorted([
        [COOK, APPLE, "WORKS_FOR", "works for", "2", "2", "0.8125", "0.875"],
        [IBM, APPLE, "COMPETES_WITH", "competes with", "1", "1", "0.5", "0.5"],
        [APPLE_PRODUCT, IBM, "MADE_BY", "made by", "1", "1", "0.625", "0.625"],
    ])


def reference_typed_relations(mention_rows, relation_rows, min_score: float, min_count: int) -> list[tuple]:
    """Typed relation rows by the module's definitions, in plain Python, one relation row at a time."""
    entities, _ = reference_graph(mention_rows, min_score, min_count, None)
    kept = {entity[0] for entity in entities}
    rows_of = collections.defaultdict(list)
    for doc, _, _, head, head_label, _, _, tail, tail_label, relation, score in relation_rows:
        source, target = entity_id(head, head_label), entity_id(tail, tail_label)
        if score >= min_score and source in kept and target in kept:
            rows_of[source, target, relation].append((doc, score))
    return sorted((s, t, r, len({d for d, _ in rows}), len(rows), math.fsum(x for _, x in rows) / len(rows),
                   max(x for _, x in rows)) for (s, t, r), rows in rows_of.items())


def test_partitioned_typed_relations_match_the_definitions(ray_cluster, tmp_path):
    rng = random.Random(5)
    mentions = random_mentions(rng, documents=30)
    by_document = collections.defaultdict(list)
    for mention in mentions:
        by_document[mention[0]].append(mention)
    relation_rows = []
    for doc, found in by_document.items():
        for _ in range(len(found)):
            head, tail = rng.choice(found), rng.choice(found)
            relation_rows.append((doc, *head[1:5], *tail[1:5], rng.choice(["works for", "part of", "located in"]),
                                  float(np.float32(rng.random()))))
    for part in range(2):
        write_mentions(tmp_path / "mentions" / f"part-{part}.parquet", mentions[part::2])
        write_relations(tmp_path / "extracted" / f"relations-{part}.parquet", relation_rows[part::2])

    summary = build_graph(str(tmp_path / "mentions"), str(tmp_path / "graph"), min_score=0.3, min_count=2,
                          partitions=3, relations=str(tmp_path / "extracted" / "relations-*.parquet"),
                          resolution="none")
    expected = reference_typed_relations(mentions, relation_rows, 0.3, 2)
    written = read_rows(tmp_path / "graph" / "typed_relations")
    assert [row[:5] for row in written] == [row[:5] for row in expected]
    assert [row[5] for row in written] == pytest.approx([row[5] for row in expected], rel=1e-12)
    assert [row[6] for row in written] == [row[6] for row in expected]
    assert len(expected) > 20 and any(row[4] > 1 for row in expected)  # a real graph, with repeated triples
    assert summary["relations_kept"] == sum(row[4] for row in expected)
    assert summary["relations_read"] == len(relation_rows) == (
        summary["relations_below_min_score"] + summary["relations_of_dropped_entities"] + summary["relations_kept"])
    assert len(list((tmp_path / "graph" / "typed_relations").glob("part-*.parquet"))) > 1


def test_typed_relations_on_s3(ray_cluster, s3_bucket):
    fs, _ = pafs.FileSystem.from_uri(f"s3://{s3_bucket}")  # the moto endpoint, from AWS_ENDPOINT_URL
    for name, schema, rows in (("mentions", MENTION_SCHEMA, MENTIONS), ("relations", RELATION_SCHEMA, RELATION_ROWS)):
        with fs.open_output_stream(f"{s3_bucket}/typed/{name}/part-00000.parquet") as f:
            pq.write_table(pa.Table.from_pylist([dict(zip(schema.names, r)) for r in rows], schema=schema), f)
    with fs.open_output_stream(f"{s3_bucket}/typed/_SUCCESS") as f:
        f.write(b"{}")
    assert main(["kg", "--mentions", f"s3://{s3_bucket}/typed", "--output", f"s3://{s3_bucket}/typed_graph",
                 "--min-score", "0.5", "--neo4j"]) == 0
    assert read_rows(f"{s3_bucket}/typed_graph/typed_relations", fs) == sorted(TYPED_RELATIONS)
    with fs.open_input_stream(f"{s3_bucket}/typed_graph/neo4j/typed_relations_header.csv") as f:
        assert f.read().startswith(b":START_ID,:END_ID,:TYPE,relation,")
    with fs.open_input_stream(f"{s3_bucket}/typed_graph/_SUCCESS") as f:
        assert json.loads(f.read())["typed_relations"] == 3


def test_bad_relations_are_a_clear_error_before_any_output(ray_cluster, tmp_path, capsys):
    write_extraction_output(tmp_path / "in", MENTIONS)
    output = tmp_path / "graph"
    message = run_cli(capsys, "--mentions", tmp_path / "in", "--output", output, "--relations", tmp_path / "nowhere")
    assert message.count("--relations") == 1 and "nowhere: no such file or directory" in message
    pq.write_table(pa.table({"doc_id": ["d1"], "head_span": ["IBM"]}), tmp_path / "partial.parquet")
    assert "column 'head_start' is missing" in run_cli(capsys, "--mentions", tmp_path / "in", "--output", output,
                                                       "--relations", tmp_path / "partial.parquet")
    nulls = [RELATION_ROWS[0], (*RELATION_ROWS[2][:9], None, 0.75)]
    write_relations(tmp_path / "in" / "relations" / "part-00000.parquet", nulls)
    assert "--relations" in (message := run_cli(capsys, "--mentions", tmp_path / "in", "--output", output))
    assert "null values in relation (1 rows)" in message
    write_relations(tmp_path / "in" / "relations" / "part-00000.parquet", [(*RELATION_ROWS[0][:9], "--", 0.75)])
    assert "without letters or digits" in run_cli(capsys, "--mentions", tmp_path / "in", "--output", output)
    assert not output.exists()
