"""Evaluation: exact-match scores on hand-built cases, and a whole run of a tiny real model writing its reports."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import pytest

from gliner_ray.cli import main
from gliner_ray.decode import Span
from gliner_ray.data import read_dataset
from gliner_ray.evaluate import Scores, dataset_names, evaluate_dataset, score_spans, write_report
from tests.helpers import REPO

GOLD = [
    [(0, 1, "person"), (3, 3, "location")],
    [(2, 4, "organization")],
    [],
]
PREDICTED = [
    # right; the same span again (counts once); the right span with the wrong type
    [Span(0, 1, "person", 0.9), (0, 1, "person"), (3, 3, "organization")],
    # partial overlap with the gold span (a miss); a span that is gold only in another sentence
    [(2, 3, "organization"), (3, 3, "location")],
    [(0, 0, "person")],
]


def test_exact_match_micro_and_per_type_scores():
    total, per_type = score_spans(GOLD, PREDICTED)
    # 3 gold; 5 distinct predictions (the duplicate counts once); only sentence 0's person span is right
    assert (total.gold, total.predicted, total.correct) == (3, 5, 1)
    assert total.precision == pytest.approx(1 / 5)
    assert total.recall == pytest.approx(1 / 3)
    assert total.f1 == pytest.approx(0.25)  # 2 * (1/5) * (1/3) / (1/5 + 1/3)
    assert per_type == {
        "location": Scores(gold=1, predicted=1, correct=0),
        "organization": Scores(gold=1, predicted=2, correct=0),
        "person": Scores(gold=1, predicted=2, correct=1),
    }
    assert per_type["person"].f1 == pytest.approx(2 / 3)


def test_scores_agree_with_the_reference_evaluator():
    from gliner.evaluation.evaluator import BaseNEREvaluator

    predicted = [[tuple(span[:3]) for span in sentence] for sentence in PREDICTED]
    _, reference_f1 = BaseNEREvaluator(GOLD, predicted).evaluate()
    assert score_spans(GOLD, PREDICTED)[0].f1 == pytest.approx(reference_f1)


def test_empty_cases_score_zero_and_mismatched_lengths_fail():
    nothing = score_spans([[], []], [[], []])[0]
    assert (nothing.precision, nothing.recall, nothing.f1) == (0.0, 0.0, 0.0)
    only_gold, _ = score_spans([[(0, 0, "a"), (0, 0, "a")]], [[]])
    assert (only_gold.gold, only_gold.recall, only_gold.f1) == (1, 0.0, 0.0)
    with pytest.raises(ValueError, match="gold spans for 2 sentences but predictions for 1"):
        score_spans([[], []], [[]])


def test_dataset_names_are_short_and_unique():
    paths = ["/d/crossner/ai/dev.txt", "/d/crossner/music/dev.txt", "s3://b/uniner/mit-restaurant.json", "/a/x/test.txt", "/b/x/test.txt"]
    assert dataset_names(paths) == ["ai/dev", "music/dev", "mit-restaurant", "a/x/test", "b/x/test"]
    with pytest.raises(ValueError, match="the same dataset is given twice"):
        dataset_names(["/d/ai/dev.txt", "/d/ai/dev.txt"])


CONLL = """-DOCSTART- -X- O O

Ada NNP B-NP B-PER
Lovelace NNP I-NP I-PER
visited VBD B-VP O
London NNP B-NP B-LOC
. . O O

The DT B-NP O
Royal NNP I-NP B-ORG
Society NNP I-NP I-ORG
met VBD B-VP O
in IN B-PP O
Paris NNP B-NP B-LOC
and CC O O
Rome NNP B-NP B-LOC
on IN B-PP O
a DT B-NP O
rainy JJ I-NP O
day NN I-NP O
. . O O
"""


def uniner_entries() -> list[dict]:
    entries = []
    for i, (passage, answers) in enumerate(
        [("cheap thai food near the station", {"Cuisine": ["thai"], "Price": ["cheap"], "Location": ["near the station"]}),
         ("a sushi bar open late", {"Cuisine": ["sushi"], "Price": [], "Location": []})]
    ):
        for label, spans in answers.items():
            entries.append({"id": f"r_{i}_{label}", "conversations": [
                {"from": "human", "value": f"Text: {passage}"}, {"from": "gpt", "value": "I've read this text."},
                {"from": "human", "value": f"What describes {label} in the text?"}, {"from": "gpt", "value": json.dumps(spans)},
            ]})
    return entries


def markdown_rows(markdown: str) -> dict[str, list[str]]:
    """The summary table's rows, by first cell."""
    table = markdown.split("\n## ")[0]
    rows = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    return {cells[0].strip().strip("*"): [c.strip().strip("*") for c in cells[1:]] for cells in rows[1:]}


def test_evaluation_run_writes_consistent_reports(tmp_path, tiny_gliner_dir):
    conll = tmp_path / "conll" / "test.txt"
    conll.parent.mkdir()
    conll.write_text(CONLL)
    restaurant = tmp_path / "restaurant.json"
    restaurant.write_text(json.dumps(uniner_entries()))
    output = tmp_path / "report"
    command = [
        sys.executable, "jobs/evaluate.py", "--model", tiny_gliner_dir, "--data", str(conll), str(restaurant),
        "--threshold", "0.5", "--batch-size", "2", "--output", str(output),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert "conll/test: 2/2 sentences" in done.stderr  # progress in the log

    report = json.loads((output / "report.json").read_text())
    markdown = (output / "report.md").read_text()
    assert (output / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(output)) == ["report.json", "report.md", "report.png"]

    conll_result, restaurant_result = report["datasets"]["conll/test"], report["datasets"]["restaurant"]
    # gold counts and type prompts as written in the files above (tag names mapped, question types lowercased)
    assert (conll_result["sentences"], conll_result["gold"]) == (2, 5)
    assert conll_result["types"] == ["location", "organization", "person"]
    assert (restaurant_result["sentences"], restaurant_result["gold"]) == (2, 4)
    assert restaurant_result["types"] == ["cuisine", "price", "location"]
    assert conll_result["per_type"]["location"]["gold"] == 3

    # the predictions counted are the model's own with the full type list as every sentence's prompt
    from gliner_ray import GLiNER

    model = GLiNER.from_pretrained(tiny_gliner_dir, device="cpu")
    words = [["Ada", "Lovelace", "visited", "London", "."], "The Royal Society met in Paris and Rome on a rainy day .".split()]
    spans = model.predict_words(words, conll_result["types"], threshold=0.5)
    assert conll_result["predicted"] == sum(len({(s.start, s.end, s.label) for s in sentence}) for sentence in spans) > 0
    assert conll_result["correct"] > 0  # (this seeded random model gets 2 right) so the checks below are not all 0 == 0

    table = markdown_rows(markdown)
    assert table == markdown_rows(done.stdout)  # the run prints the table
    for name, result in report["datasets"].items():
        p, r, f1 = result["precision"], result["recall"], result["f1"]
        assert result["correct"] <= min(result["gold"], result["predicted"])
        assert p == pytest.approx(result["correct"] / result["predicted"])
        assert r == pytest.approx(result["correct"] / result["gold"])
        assert f1 == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
        assert sum(t["gold"] for t in result["per_type"].values()) == result["gold"]
        assert sum(t["predicted"] for t in result["per_type"].values()) == result["predicted"]
        sentences, gold, predicted, correct, *percents = table[name]
        assert [int(sentences), int(gold), int(predicted), int(correct)] == [
            result["sentences"], result["gold"], result["predicted"], result["correct"]
        ]
        assert percents == [f"{100 * v:.1f}" for v in (p, r, f1)]
    average_f1 = (conll_result["f1"] + restaurant_result["f1"]) / 2
    assert report["average"]["f1"] == pytest.approx(average_f1)
    assert table["Average"][-1] == f"{100 * average_f1:.1f}"


def test_failed_run_leaves_no_finished_looking_report(tmp_path, capsys):
    data = tmp_path / "dev.txt"
    data.write_text("Ada B-PER\n")
    output = tmp_path / "out"
    output.mkdir()
    (output / "report.json").write_text("{}")  # from an earlier run
    args = ["evaluate", "--model", str(tmp_path / "no-model"), "--data", str(data), "--output", str(output)]
    assert main(args) == 2  # a finished report stays unless --overwrite
    assert f"{output} already holds a finished evaluation (report.json): pass --overwrite" in capsys.readouterr().err
    assert (output / "report.json").read_text() == "{}"
    assert main([*args, "--overwrite"]) == 2
    assert "no-model is not a directory holding a GLiNER checkpoint" in capsys.readouterr().err
    assert not (output / "report.json").exists()


def test_bad_data_fails_before_loading_the_model(tmp_path, capsys):
    untyped = tmp_path / "untyped.txt"
    untyped.write_text("no O\nentities O\n")
    args = ["evaluate", "--model", str(tmp_path / "no-model"), "--output", str(tmp_path / "out"), "--data"]
    assert main([*args, str(untyped)]) == 2
    assert "untyped: the dataset names no entity types" in capsys.readouterr().err
    assert main([*args, str(tmp_path / "missing.txt")]) == 2
    assert re.search(r"error: .*missing\.txt", capsys.readouterr().err)


@pytest.mark.parametrize("flags, message", [
    (["--threshold", "1.5"], "--threshold must lie strictly between 0 and 1, got 1.5"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
])
def test_flags_are_checked_before_data_and_model(tmp_path, capsys, flags, message):
    args = ["evaluate", "--model", str(tmp_path / "no-model"), "--data", str(tmp_path / "missing.txt")]
    assert main([*args, "--output", str(tmp_path / "out"), *flags]) == 2
    assert message in capsys.readouterr().err


def test_progress_is_logged_by_time(tmp_path, tiny_gliner_dir, caplog):
    from gliner_ray import GLiNER

    (tmp_path / "test.txt").write_text(CONLL)
    dataset = read_dataset(str(tmp_path / "test.txt"))
    model = GLiNER.from_pretrained(tiny_gliner_dir, device="cpu")
    with caplog.at_level(logging.INFO, logger="gliner_ray.evaluate"):
        evaluate_dataset(model, dataset, "test", batch_size=1, progress_seconds=0)  # a line after every batch
        evaluate_dataset(model, dataset, "again", batch_size=1, progress_seconds=3600)  # only the last line
    lines = [r.getMessage() for r in caplog.records if "sentences/s" in r.getMessage()]
    assert [line.split(",")[0] for line in lines] == ["test: 1/2 sentences", "test: 2/2 sentences", "again: 2/2 sentences"]


def test_reports_written_to_s3(s3_bucket):
    import boto3

    report = {
        "model": "m", "threshold": 0.5, "flat_ner": True, "batch_size": 8,
        "datasets": {"d": {"sentences": 1, "gold": 2, "predicted": 1, "correct": 1, **Scores(2, 1, 1).as_dict(),
                           "per_type": {"person": Scores(2, 1, 1).as_dict()}}},
        "average": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3},
    }
    write_report(report, f"s3://{s3_bucket}/eval/run1")
    listed = boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["eval/run1/report.json", "eval/run1/report.md", "eval/run1/report.png"]
    body = boto3.client("s3").get_object(Bucket=s3_bucket, Key="eval/run1/report.md")["Body"].read().decode()
    assert markdown_rows(body)["d"] == ["1", "2", "1", "1", "100.0", "50.0", "66.7"]
