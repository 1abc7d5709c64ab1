"""``gliner-ray kg`` against the SQL a user would write: the same graph computed by DuckDB on one machine, run here
side by side on the same corpus, and how both grow with the corpus (every kg stage is a map or a hash shuffle, so
ten times the mentions should take about ten times as long, not more).

    python benchmarks/bench_kg.py --mentions 100000 --scale 10

Each document holds ``--per-document`` mentions of entities drawn from a Zipf law over ``--vocabulary`` names;
each mention is one of five surface variants of its entity's name (case, spaces, punctuation, full-width letters),
which normalization must merge, so the job must find exactly as many entities as distinct names were drawn: the
benchmark checks that, and that the mention counts add up. The job runs twice: ``--resolve none`` (``kg s``) and
the default ``--resolve corpus`` (``resolve s``), which must find the same entities (nothing here is an alias).
``--quality`` measures the resolution rules instead, on ``tests/data/kg_aliases.tsv``; ``--similarity-engines``
times the string similarity candidates on the blocked pairs of that set.

The baseline is one DuckDB process with as many threads as the Ray cluster has CPUs, reading the same Parquet files
and writing the same three tables: entities grouped by a normalized span (``lower``, whitespace and punctuation
trimmed: DuckDB has no NFKC, so it merges fewer variants) and label, the mentions with their entity id, and the
per-document co-occurrence self-join. Times are end to end, reading to written files; Ray start and the workers'
first imports are excluded (a small warm-up graph runs first). Ray runs its workers at niceness 15 by default; here
they run at 0, so that other load on a shared machine does not decide the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from _common import argument_parser

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

LABELS = ["person", "organization", "location", "product"]
FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


def variants(name: str) -> list[str]:
    return [name, name.upper(), f"{name}.", f" {name}  ", name.translate(FULL_WIDTH)]


def write_corpus(directory: Path, mentions: int, per_document: int, vocabulary: int, files: int, seed: int) -> int:
    """Write ``mentions`` rows as ``files`` Parquet files; returns the number of distinct entities drawn."""
    rng = np.random.default_rng(seed)
    entity = (rng.zipf(1.3, size=mentions) - 1) % vocabulary
    variant = rng.integers(0, 5, size=mentions)
    surfaces = {k: variants(f"Name {k}") for k in np.unique(entity).tolist()}
    spans = [surfaces[k][v] for k, v in zip(entity.tolist(), variant.tolist())]
    position = np.arange(mentions) % per_document
    start = position * 20 + rng.integers(0, 5, size=mentions)
    table = pa.table({
        "doc_id": pa.array([f"doc-{i // per_document}" for i in range(mentions)]),
        "start": pa.array(start, pa.int64()),
        "end": pa.array(start + np.array([len(s) for s in spans]), pa.int64()),
        "span": pa.array(spans),
        "label": pa.array([LABELS[k % len(LABELS)] for k in entity.tolist()]),
        "score": pa.array(rng.uniform(0.5, 1.0, size=mentions), pa.float32()),
    })
    rows_per_file = -(-mentions // files)
    for i in range(files):
        pq.write_table(table.slice(i * rows_per_file, rows_per_file), directory / f"part-{i:03d}.parquet")
    return len(surfaces)


BASELINE_SQL = """
CREATE TEMP TABLE linked AS
    SELECT *, md5(lower(trim(regexp_replace(span, '\\s+', ' ', 'g'), ' .,;:!?"''()[]')) || chr(31) || label)[1:16]
              AS entity_id
    FROM read_parquet('{corpus}/*.parquet') WHERE score >= {min_score};
COPY (SELECT entity_id, mode(regexp_replace(trim(span), '\\s+', ' ', 'g')) AS name, any_value(label) AS label,
             count(*) AS mentions, count(DISTINCT doc_id) AS documents, avg(score::DOUBLE) AS mean_score,
             max(score) AS max_score
      FROM linked GROUP BY entity_id) TO '{output}/entities.parquet';
COPY linked TO '{output}/mention_entities.parquet';
COPY (WITH counts AS (SELECT doc_id, entity_id, count(*) AS n FROM linked GROUP BY doc_id, entity_id)
      SELECT a.entity_id AS source_id, b.entity_id AS target_id, count(*) AS documents, sum(a.n * b.n) AS weight
      FROM counts a JOIN counts b ON a.doc_id = b.doc_id AND a.entity_id < b.entity_id
      GROUP BY ALL) TO '{output}/relations.parquet';
"""


def run_duckdb(corpus: Path, output: Path, threads: int) -> float:
    """Seconds for the baseline: the graph in DuckDB SQL on this machine alone."""
    import duckdb

    output.mkdir()
    started = time.perf_counter()
    with duckdb.connect() as connection:
        connection.execute(f"SET threads = {threads}")
        connection.execute(BASELINE_SQL.format(corpus=corpus, output=output, min_score=0.0))
    return time.perf_counter() - started


def run(mentions: int, args: argparse.Namespace, work: Path, cpus: int) -> dict:
    from gliner_ray.kg import build_graph

    corpus = work / f"mentions-{mentions}"
    corpus.mkdir()
    expected_entities = write_corpus(corpus, mentions, args.per_document, args.vocabulary, args.files, args.seed)
    duckdb_seconds = run_duckdb(corpus, work / f"duckdb-{mentions}", cpus)
    seconds = {}
    for mode in ("none", "corpus"):  # without resolution (the normalized forms only), then with it (the default)
        started = time.perf_counter()
        summary = build_graph(str(corpus), str(work / f"graph-{mentions}-{mode}"), window=args.window,
                              resolution=mode)
        seconds[mode] = time.perf_counter() - started
        assert summary["entities"] == expected_entities, (mode, summary["entities"], expected_entities)
        assert summary["mentions_kept"] == summary["mentions_read"] == mentions, summary
    return {"mentions": mentions, "entities": summary["entities"], "relations": summary["relations"],
            "duckdb_seconds": round(duckdb_seconds, 2), "kg_seconds": round(seconds["none"], 2),
            "resolve_seconds": round(seconds["corpus"], 2),
            "kg_over_duckdb": round(seconds["none"] / duckdb_seconds, 2),
            "resolve_over_kg": round(seconds["corpus"] / seconds["none"], 2),
            "kg_mentions_per_second": round(mentions / seconds["none"])}


QUALITY_RUNS = [  # (row name, --resolve, rules): each rule alone (with the evidence it needs), then all
    ("normalized", "none", frozenset()),
    ("within-document", "documents", frozenset({"within-document"})),
    ("acronym", "documents", frozenset({"acronym"})),
    ("corpus", "corpus", frozenset({"within-document", "acronym", "corpus"})),
    ("similarity", "corpus", frozenset({"similarity"})),
    ("all", "corpus", None),
]


def pairs(groups: list) -> int:
    """Pairs of items inside the same group, over all groups (``groups``: the group of each item)."""
    import collections

    return sum(n * (n - 1) // 2 for n in collections.Counter(groups).values())


def quality(args: argparse.Namespace, work: Path) -> list[dict]:
    """Pairwise merge precision and recall of each rule on ``tests/data/kg_aliases.tsv``: items are the (document,
    name, type) rows, gold pairs those of one real-world identity, predicted pairs those linked to one entity."""
    from gliner_ray.kg import build_graph
    from gliner_ray.kg.resolve import Resolution

    rows = [line.rstrip("\n").split("\t") for line in open(args.quality_set, encoding="utf-8")][1:]
    spans = [span for _, span, _, _ in rows]
    start = np.arange(len(rows)) * 100  # far apart: no name stands "in parentheses" after another
    pq.write_table(pa.table({
        "doc_id": [doc for doc, *_ in rows], "start": pa.array(start, pa.int64()),
        "end": pa.array(start + np.array([len(s) for s in spans]), pa.int64()), "span": spans,
        "label": [label for _, _, label, _ in rows], "score": pa.array(np.ones(len(rows)), pa.float32()),
    }), work / "quality.parquet")
    gold = [(label, identity) for _, _, label, identity in rows]
    results = []
    for name, mode, rules in QUALITY_RUNS:
        resolution = Resolution(mode) if rules is None else Resolution(mode, rules=rules)
        build_graph(str(work / "quality.parquet"), str(work / f"quality-{name}"), resolution=resolution)
        linked = pq.read_table(work / f"quality-{name}" / "mention_entities").to_pylist()
        entity = {(m["doc_id"], m["span"], m["label"]): m["entity_id"] for m in linked}
        predicted = [entity[doc, span, label] for doc, span, label, _ in rows]
        both = pairs(list(zip(gold, predicted)))
        results.append({"rules": name, "predicted_pairs": pairs(predicted), "gold_pairs": pairs(gold),
                        "precision": round(both / max(pairs(predicted), 1), 3),
                        "recall": round(both / pairs(gold), 3), "entities": len(set(predicted))})
    return results


def similarity_engines(args: argparse.Namespace, pairs_wanted: int = 1_000_000) -> dict:
    """Seconds to score the same name pairs (random pairs of one type from the quality set, repeated to
    ``pairs_wanted``) with rapidfuzz (per pair in Python, as ``similarity.close_enough`` does, and ``cdist``-free
    batch ``rapidfuzz.process.cpdist``) and with DuckDB's ``levenshtein`` and ``jaro_winkler_similarity``."""
    import duckdb
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.fuzz import ratio

    rows = [line.rstrip("\n").split("\t") for line in open(args.quality_set, encoding="utf-8")][1:]
    names = sorted({span.lower() for _, span, _, _ in rows})
    rng = np.random.default_rng(0)
    a = [names[i] for i in rng.integers(0, len(names), pairs_wanted)]
    b = [names[i] for i in rng.integers(0, len(names), pairs_wanted)]
    timings = {}
    started = time.perf_counter()
    python_scores = [ratio(x, y) for x, y in zip(a, b)]
    timings["rapidfuzz ratio, per pair"] = time.perf_counter() - started
    started = time.perf_counter()
    [Levenshtein.distance(x, y) for x, y in zip(a, b)]
    timings["rapidfuzz levenshtein, per pair"] = time.perf_counter() - started
    started = time.perf_counter()
    batch = process.cpdist(a, b, scorer=ratio, workers=1)
    timings["rapidfuzz ratio, cpdist batch"] = time.perf_counter() - started
    assert np.allclose(batch, python_scores)
    table = pa.table({"a": a, "b": b})
    with duckdb.connect() as connection:
        connection.execute("SET threads = 1")
        connection.register("pairs", table)
        for name, expression in (("duckdb levenshtein", "levenshtein(a, b)"),
                                 ("duckdb jaro_winkler_similarity", "jaro_winkler_similarity(a, b)")):
            started = time.perf_counter()
            connection.sql(f"SELECT {expression} AS s FROM pairs").to_arrow_table()
            timings[name] = time.perf_counter() - started
    return {"pairs": pairs_wanted, **{k: round(v, 3) for k, v in timings.items()}}


def print_quality(results: list[dict]) -> None:
    print(json.dumps(results))
    print(f"{'rules':<16} {'entities':>8} {'pairs':>6} {'precision':>9} {'recall':>6}")
    for row in results:
        print(f"{row['rules']:<16} {row['entities']:>8} {row['predicted_pairs']:>6} {row['precision']:>9.3f} "
              f"{row['recall']:>6.3f}")


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--mentions", type=int, default=100_000, help="mentions in the small corpus")
    parser.add_argument("--scale", type=int, default=10, help="the large corpus has this many times more")
    parser.add_argument("--per-document", type=int, default=20)
    parser.add_argument("--vocabulary", type=int, default=50_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--window", type=int, default=None, help="co-occurrence window (default: document)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quality", action="store_true",
                        help="instead: pairwise merge precision and recall of each resolution rule on --quality-set")
    parser.add_argument("--quality-set", default=str(Path(__file__).resolve().parent.parent / "tests" / "data" /
                                                     "kg_aliases.tsv"))
    parser.add_argument("--similarity-engines", action="store_true",
                        help="instead: time rapidfuzz and DuckDB string similarity on 1M name pairs (one thread)")
    args = parser.parse_args()
    if args.similarity_engines:
        print(json.dumps(similarity_engines(args)))
        return

    import ray

    ray.init(address="local", include_dashboard=False, _system_config={"worker_niceness": 0})  # never a running one
    cpus = int(ray.cluster_resources()["CPU"])
    if args.quality:
        with tempfile.TemporaryDirectory(prefix="bench-kg-") as work:
            print_quality(quality(args, Path(work)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-kg-") as work:
        warm_up = argparse.Namespace(**{**vars(args), "files": 2})
        run(1000, warm_up, Path(work), cpus)  # workers start and import DuckDB and pyarrow once
        small = run(args.mentions, args, Path(work), cpus)
        large = run(args.mentions * args.scale, args, Path(work), cpus)
    print(json.dumps({"cpus": cpus, "small": small, "large": large}))
    print(f"{'mentions':>10} {'duckdb s':>9} {'kg s':>7} {'kg/duckdb':>9} {'resolve s':>9} {'resolve/kg':>10}")
    for row in (small, large):
        print(f"{row['mentions']:>10} {row['duckdb_seconds']:>9.2f} {row['kg_seconds']:>7.2f} "
              f"{row['kg_over_duckdb']:>8.2f}x {row['resolve_seconds']:>9.2f} {row['resolve_over_kg']:>9.2f}x")
    print(f"{args.scale}x the mentions: kg {large['kg_seconds'] / small['kg_seconds']:.2f}x the time, "
          f"with resolution {large['resolve_seconds'] / small['resolve_seconds']:.2f}x, "
          f"duckdb {large['duckdb_seconds'] / small['duckdb_seconds']:.2f}x (machine load: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
