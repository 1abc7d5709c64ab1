"""The gliner-ray command as a user runs it: a subprocess, flags only, JSON out, a clear error and exit code 2.
One run of each outcome is a real subprocess; the other cases call the same ``main`` in this process, which
saves the seconds a new Python spends importing torch and transformers."""

import io
import json
import subprocess
import sys

from gliner_ray.cli import main


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
