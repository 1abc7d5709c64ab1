"""Every job given relative paths, from a working directory that is neither the repository's nor Ray's: the
paths are made absolute on the driver, so Ray workers (each in a directory of its own) find them too."""

from __future__ import annotations

import argparse
import json
import shutil

import pyarrow.parquet as pq

from gliner_ray.cli import main
from gliner_ray.cli.args import make_paths_absolute
from tests.helpers.extraction import LABELS, THRESHOLD, write_corpus
from tests.helpers.training import synthetic_task


def test_extract_kg_train_and_evaluate_take_relative_paths(ray_cluster, tmp_path, monkeypatch, tiny_gliner_dir,
                                                           tiny_bert_dir):
    monkeypatch.chdir(tmp_path)
    write_corpus(tmp_path / "in", shards=2, docs_per_shard=3, seed=3)
    shutil.copytree(tiny_gliner_dir, tmp_path / "model")
    examples = [{"tokenized_text": ex.words, "ner": [list(span) for span in ex.spans]} for ex in synthetic_task(1, 16)]
    (tmp_path / "train.json").write_text(json.dumps(examples))

    assert main(["extract", "--input", "in", "--output", "runs/mentions", "--model", "model", "--labels",
                 ",".join(LABELS), "--threshold", str(THRESHOLD)]) == 0
    assert main(["kg", "--mentions", "runs/mentions", "--output", "runs/graph"]) == 0
    assert main(["train", "--train", "train.json", "--eval", "train.json", "--backbone", str(tiny_bert_dir),
                 "--hidden-size", "32", "--workers", "1", "--steps", "2", "--batch-size", "4",
                 "--output", "runs/t1"]) == 0
    assert main(["evaluate", "--model", "runs/t1/final", "--data", "train.json", "--output", "runs/eval"]) == 0

    assert pq.read_table(tmp_path / "runs/mentions/mentions").num_rows > 0
    assert json.loads((tmp_path / "runs/mentions/_SUCCESS").read_text())["documents"] == 6
    assert (tmp_path / "runs/graph/_SUCCESS").exists()
    assert {"metrics.jsonl", "training.png", "final"} <= {p.name for p in (tmp_path / "runs/t1").iterdir()}
    assert (tmp_path / "runs/eval/report.json").exists()


def test_only_local_paths_and_existing_model_directories_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    args = argparse.Namespace(train="a.json,s3://b/c.json", eval=None, output="runs/t1", init="ckpt",
                              backbone="microsoft/deberta-v3-small")
    make_paths_absolute(args, "train")
    assert args.train == f"{tmp_path}/a.json,s3://b/c.json"
    assert (args.eval, args.output) == (None, f"{tmp_path}/runs/t1")
    assert (args.init, args.backbone) == (f"{tmp_path}/ckpt", "microsoft/deberta-v3-small")
