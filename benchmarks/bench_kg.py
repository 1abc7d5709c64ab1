"""Throughput of ``gliner-ray kg`` on synthetic mentions, and how it grows with the corpus: every stage is a map or a
hash shuffle, so ten times the mentions should take about ten times as long, not more.

    python benchmarks/bench_kg.py --mentions 100000 --scale 10

Each document holds ``--per-document`` mentions of entities drawn from a Zipf law over ``--vocabulary`` names;
each mention is one of five surface variants of its entity's name (case, spaces, punctuation, full-width letters),
which normalization must merge, so the job must find exactly as many entities as distinct names were drawn: the
benchmark checks that, and that the mention counts add up. Times are end to end (Ray start excluded). Ray runs its
workers at niceness 15 by default; here they run at 0, so that other load on a shared machine does not decide the
ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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


def run(mentions: int, args: argparse.Namespace, work: Path) -> dict:
    from gliner_ray.kg import build_graph

    corpus = work / f"mentions-{mentions}"
    corpus.mkdir()
    expected_entities = write_corpus(corpus, mentions, args.per_document, args.vocabulary, args.files, args.seed)
    started = time.perf_counter()
    summary = build_graph(str(corpus), str(work / f"graph-{mentions}"), window=args.window)
    seconds = time.perf_counter() - started
    assert summary["entities"] == expected_entities, (summary["entities"], expected_entities)
    assert summary["mentions_kept"] == summary["mentions_read"] == mentions, summary
    return {"mentions": mentions, "entities": summary["entities"], "relations": summary["relations"],
            "seconds": round(seconds, 1), "mentions_per_second": round(mentions / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=100_000, help="mentions in the small corpus")
    parser.add_argument("--scale", type=int, default=10, help="the large corpus has this many times more")
    parser.add_argument("--per-document", type=int, default=20)
    parser.add_argument("--vocabulary", type=int, default=50_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--window", type=int, default=None, help="co-occurrence window (default: document)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import ray

    ray.init(include_dashboard=False, _system_config={"worker_niceness": 0})
    ray.data.DataContext.get_current().enable_progress_bars = False
    with tempfile.TemporaryDirectory(prefix="bench-kg-") as work:
        small = run(args.mentions, args, Path(work))
        large = run(args.mentions * args.scale, args, Path(work))
    print(json.dumps({"cpus": int(ray.cluster_resources()["CPU"]), "small": small, "large": large,
                      "time_ratio": round(large["seconds"] / small["seconds"], 2), "size_ratio": args.scale}))


if __name__ == "__main__":
    main()
