"""Token-budget batches: the model's forward passes take rows of like length up to ``--max-tokens`` padded
sub-tokens; the mentions stay those of ``GLiNER.predict``, and ``_SUCCESS`` reports the padding."""

from __future__ import annotations

import pyarrow.parquet as pq

from gliner_ray.cli import main
from gliner_ray.predict.base import plan_batches
from tests.helpers.extraction import LABELS, THRESHOLD, assert_same_as_predict, success, write_corpus


def test_batches_hold_at_most_the_token_budget_longest_rows_first():
    lengths = [10, 50, 30, 50, 5, 400]
    batches = plan_batches(lengths, None, max_tokens=100)
    assert batches == [[5], [1, 3], [2, 0, 4]]  # a row over the budget goes alone; never an empty batch
    assert all(len(b) * max(lengths[i] for i in b) <= 100 for b in batches[1:])
    assert plan_batches(lengths, 2, max_tokens=1000) == [[5, 1], [3, 2], [0, 4]]  # both bounds hold
    assert sorted(i for b in plan_batches(lengths, 4) for i in b) == list(range(len(lengths)))


def test_extract_with_max_tokens_finds_the_mentions_of_predict_and_reports_padding(ray_cluster, tmp_path, tiny_gliner_dir):
    documents = write_corpus(tmp_path / "in", shards=2, docs_per_shard=12, seed=21)
    output = str(tmp_path / "out")

    code = main(["extract", "--input", str(tmp_path / "in"), "--output", output, "--model", tiny_gliner_dir,
                 "--labels", ",".join(LABELS), "--threshold", str(THRESHOLD), "--max-tokens", "300",
                 "--actors", "1", "--chunk-size", "5"])

    assert code == 0
    assert_same_as_predict(pq.read_table(f"{output}/mentions"), tiny_gliner_dir, documents)
    summary = success(output)
    assert 0 < summary["padded_token_share"] < 0.5
