"""The gliner-ray command as a user runs it: a subprocess, flags only, JSON out, a clear error and exit code 2.
One run of each outcome is a real subprocess; the other cases call the same ``main`` in this process, which
saves the seconds a new Python spends importing torch and transformers."""

import argparse
import io
import json
import logging
import re
import subprocess
import sys

import pytest

from gliner_ray.cli import main
from gliner_ray.cli.args import labels_from_args


def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "gliner_ray.cli", *args], capture_output=True, text=True,
                          input=stdin, timeout=300)


def test_predict_prints_one_json_line_per_text(tiny_gliner_dir, tmp_path, monkeypatch, capsys):
    result = run_cli("predict", "--model", tiny_gliner_dir, "--labels", "person, city", "--threshold", "0.2",
                     "Alice met Bob in Paris.", "Nothing.")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["text"] for line in lines] == ["Alice met Bob in Paris.", "Nothing."]
    for line in lines:
        for entity in line["entities"]:
            assert line["text"][entity["start"] : entity["end"]] == entity["text"]
            assert entity["label"] in {"person", "city"}

    (tmp_path / "labels.txt").write_text("person\n\ncity\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("Alice met Bob in Paris.\nNothing.\n"))
    assert main(["predict", "--model", tiny_gliner_dir, "--labels-file", str(tmp_path / "labels.txt"),
                 "--threshold", "0.2", "-"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == lines


def test_bad_arguments_fail_with_a_message(tiny_gliner_dir, tmp_path, capsys):
    result = run_cli("predict", "--model", tiny_gliner_dir, "--labels", " , ", "text")
    assert result.returncode == 2 and "no entity types given" in result.stderr
    assert "Traceback" not in result.stderr
    assert main(["predict", "--model", str(tmp_path), "--labels", "person", "text"]) == 2  # raises on a traceback
    assert "gliner_config.json is missing" in capsys.readouterr().err


@pytest.mark.parametrize("command, shown", [
    ("train", ["--steps STEPS optimizer steps in all (default: 1000)", "--seed", "--lr-encoder", "--workers"]),
    ("kg", ["--min-score", "--min-count"]),
    ("predict", ["--threshold"]),
    ("extract", ["--chunk-size", "--split-size", "--precision"]),
    ("evaluate", ["--threshold", "--batch-size"]),
])
def test_help_shows_every_default(command, shown, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    entries = [" ".join(entry.split()) for entry in re.split(r"\n  (?=-)", capsys.readouterr().out)]  # one per flag
    for flag in shown:
        entry = next(entry for entry in entries if entry.startswith(flag))
        assert "(default: " in entry, entry
    assert not any("(default: None)" in entry or "(default: False)" in entry for entry in entries)
    assert not any(entry.count("(default") > 1 for entry in entries)  # no flag says its default twice


def test_labels_file_skips_comments_and_merges_spellings(tmp_path, caplog):
    path = tmp_path / "labels.txt"
    path.write_text("# the types of the corpus\nPerson\n\n  person \nnew  york\nNew York\n  # indented comment\ncity\n")
    with caplog.at_level(logging.WARNING):
        labels = labels_from_args(argparse.Namespace(labels=None, labels_file=str(path)))
    assert labels == ["Person", "new  york", "city"]
    assert "'Person' and 'person' differ only in case or spacing" in caplog.text
    assert labels_from_args(argparse.Namespace(labels="person, Person,city", labels_file=None)) == ["person", "city"]

    path.write_text("# only a comment\n\n")
    with pytest.raises(ValueError, match="no entity types given"):
        labels_from_args(argparse.Namespace(labels=None, labels_file=str(path)))


def test_missing_labels_file_names_the_flag(tiny_gliner_dir, tmp_path, capsys):
    assert main(["predict", "--model", tiny_gliner_dir, "--labels-file", str(tmp_path / "nope.txt"), "text"]) == 2
    error = capsys.readouterr().err
    assert f"--labels-file {tmp_path / 'nope.txt'}: cannot read it (No such file or directory)" in error
