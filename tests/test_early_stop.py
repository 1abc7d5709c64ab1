"""A run whose input is clearly wrong stops early with one line naming the reason and the flag to fix: before it
writes anything when its first records all fail for one reason, or once more than ``--max-error-rate`` of the
records read fail. Through ``gliner-ray extract`` on the shared local Ray cluster, as users run it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gliner_ray.cli import main
from gliner_ray.extract.early_stop import NOT_JSON_LINES, fix_for, reason_kind
from tests.helpers.extraction import LABELS, jsonl, make_texts


def run(tmp_path: Path, model: str, *flags: str) -> int:
    return main(["extract", "--output", str(tmp_path / "out"), "--model", model, "--labels", ",".join(LABELS),
                 "--threshold", "0.3", "--actors", "1", *flags])


def one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines, "no error line on stderr"
    return lines[-1]


def write_texts(path: Path, field: str, count: int, seed: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jsonl([{"id": f"{path.stem}-{i}", field: t} for i, t in enumerate(make_texts(count, seed))]))


@pytest.mark.parametrize("case", ["text field", "format", "binary", "parquet column"])
def test_a_clearly_wrong_input_stops_before_writing_anything_and_the_fixed_flag_runs(ray_cluster, tmp_path, tiny_gliner_dir, capsys, case):
    source = tmp_path / "in"
    if case == "text field":
        write_texts(source / "a.jsonl", "body", 8)
        wrong, fixed, says = ["--text-field", "text"], ["--text-field", "body"], "no 'text' field; pass --text-field"
    elif case == "format":
        pq.write_table(pa.table({"id": ["a", "b"], "text": make_texts(2, seed=2)}), tmp_path / "a.parquet")
        (source / "a.txt").parent.mkdir()
        os.rename(tmp_path / "a.parquet", source / "a.txt")
        wrong, fixed, says = ["--format", "text"], ["--format", "parquet"], "file is not valid UTF-8"
    elif case == "binary":
        write_texts(source / "a.jsonl", "text", 3)
        (source / "b.jsonl").write_bytes(bytes(range(256)) * 40 + b"\n\x00\xff\n" * 20)
        wrong, fixed, says = ["--input", str(source / "b.jsonl")], ["--input", str(source / "a.jsonl")], NOT_JSON_LINES
    else:
        pq.write_table(pa.table({"id": ["a", "b"], "body": make_texts(2, seed=3)}), (source.mkdir() or source) / "a.parquet")
        wrong, fixed, says = [], ["--text-field", "body"], "no column 'text' (columns: id, body); pass --text-field"
    base = ["--input", str(source), "--early-stop-records", "5"]

    assert run(tmp_path, tiny_gliner_dir, *base, *wrong) == 2
    line = one_line(capsys)
    assert line.startswith("gliner-ray extract: error: stopped before writing anything: the first ") and says in line
    assert "--" in line.split("; ", 1)[1]  # names the flag to fix
    assert not (tmp_path / "out").exists()

    assert run(tmp_path, tiny_gliner_dir, *base, *fixed) == 0
    success = json.loads((tmp_path / "out" / "_SUCCESS").read_text())
    assert success["documents"] > 0 and success["failed"] == 0


def test_early_stop_off_sends_every_record_to_errors(ray_cluster, tmp_path, tiny_gliner_dir):
    write_texts(tmp_path / "in" / "a.jsonl", "body", 6)

    assert run(tmp_path, tiny_gliner_dir, "--input", str(tmp_path / "in"), "--early-stop-records", "0") == 0

    success = json.loads((tmp_path / "out" / "_SUCCESS").read_text())
    assert (success["documents"], success["failed"]) == (6, 6)


def test_a_run_whose_error_share_passes_max_error_rate_stops_without_success_and_resumes(ray_cluster, tmp_path, tiny_gliner_dir, capsys):
    write_texts(tmp_path / "in" / "a.jsonl", "text", 6)  # the first records are good: the run starts
    write_texts(tmp_path / "in" / "b.jsonl", "body", 6, seed=2)  # ...and half of all fail
    flags = ["--input", str(tmp_path / "in"), "--early-stop-records", "4", "--chunk-size", "2"]

    assert run(tmp_path, tiny_gliner_dir, *flags, "--max-error-rate", "0.3") == 2
    line = one_line(capsys)
    assert "more than --max-error-rate 0.3" in line and f"{tmp_path / 'out'}/errors/" in line
    assert not (tmp_path / "out" / "_SUCCESS").exists()

    assert run(tmp_path, tiny_gliner_dir, *flags, "--max-error-rate", "0.6") == 0
    success = json.loads((tmp_path / "out" / "_SUCCESS").read_text())
    assert (success["documents"], success["failed"]) == (12, 6)


def test_an_error_share_over_the_rate_in_the_first_records_stops_before_any_work(ray_cluster, tmp_path, tiny_gliner_dir, capsys):
    records = [{"id": str(i), "text": t} if i % 2 else {"id": str(i)} for i, t in enumerate(make_texts(10, seed=4))]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(jsonl(records))

    assert run(tmp_path, tiny_gliner_dir, "--input", str(tmp_path / "in"), "--early-stop-records", "10", "--max-error-rate", "0.2") == 2

    assert "stopped: 5 of the 10 records read failed (50%), more than --max-error-rate 0.2" in one_line(capsys)
    assert not (tmp_path / "out").exists()


def test_reasons_of_one_kind_differ_only_in_their_particulars():
    assert reason_kind("malformed JSON: Expecting value at column 3") == NOT_JSON_LINES
    assert reason_kind("line is not valid UTF-8 (invalid start byte at byte 0)") == NOT_JSON_LINES
    assert reason_kind("text has 12 characters, more than max_chars=5") == reason_kind("text has 999 characters, more than max_chars=5")
    assert "--text-field" in fix_for("'text' is a int, not a string")
    assert "--format" in fix_for("line holds a JSON list, not an object")
