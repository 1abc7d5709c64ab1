"""Which Ray cluster a job runs on (the flag, then RAY_ADDRESS, then a new local Ray: never whichever Ray is
running), the first log line that says so, and one line for a failure inside Ray with its traceback in a file."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gliner_ray.cli.main import report_failure
from gliner_ray.cluster import choose_address, failure_line
from gliner_ray.extract.store import MENTION_SCHEMA
from tests.helpers import REPO


@pytest.mark.parametrize("flag, environ, chosen", [
    ("10.0.0.1:6379", {"RAY_ADDRESS": "10.0.0.2:6379"}, "10.0.0.1:6379"),
    (None, {"RAY_ADDRESS": "10.0.0.2:6379"}, "10.0.0.2:6379"),
    ("auto", {}, "auto"),
    (None, {}, "local"),  # a new local Ray, even when another one runs on this machine
    (None, {"RAY_ADDRESS": ""}, "local"),
])
def test_the_flag_then_ray_address_then_a_new_local_ray(flag, environ, chosen):
    assert choose_address(flag, environ) == chosen


def run_kg(tmp_path, name: str, *flags: str) -> str:
    """``gliner-ray kg`` on a few mentions as its own driver process, without RAY_ADDRESS; returns its log."""
    mentions = tmp_path / "mentions"
    mentions.mkdir(exist_ok=True)
    rows = [{"doc_id": "d", "start": 0, "end": 3, "span": "Ada", "label": "person", "score": 0.9}]
    pq.write_table(pa.Table.from_pylist(rows, schema=MENTION_SCHEMA), mentions / "part.parquet")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-m", "gliner_ray.cli", "kg", "--mentions", str(mentions), "--output",
               str(tmp_path / name), "--allow-incomplete", *flags]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def test_a_job_joins_the_cluster_it_is_given_and_otherwise_starts_its_own(ray_cluster, tmp_path):
    running = ray_cluster.get_runtime_context().gcs_address

    joined = run_kg(tmp_path, "joined", "--address", running)
    own = run_kg(tmp_path, "own")

    first = lambda log: next(line for line in log.splitlines() if "gliner_ray" in line)  # noqa: E731
    assert re.search(rf"Ray cluster at {running} \(joined {running}\): 1 node, 2 CPUs, 0 GPUs", first(joined))
    assert "(a new local Ray)" in first(own) and running not in own
    assert "Token authentication is disabled" not in joined + own


def test_a_failure_inside_ray_is_one_line_and_its_traceback_a_file(ray_cluster, capsys):
    @ray_cluster.remote
    def fail():
        raise ValueError("--threshold 2 is out of range")

    with pytest.raises(Exception) as caught:
        ray_cluster.get(fail.remote())
    assert failure_line(caught.value) == "ValueError: --threshold 2 is out of range"

    assert report_failure("kg", caught.value) == 1
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and line.startswith("gliner-ray kg: error: ValueError: --threshold 2 is out of range")
    log = line.rstrip().rsplit(" ", 1)[1]
    assert "raise ValueError" in open(log).read()
