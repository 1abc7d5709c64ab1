"""Stopping and re-running an extraction as a person does: Ctrl-C (SIGINT) keeps the finished shards and says so,
exit code 130, no traceback; the same command then finishes the job; and a re-run of a finished job leaves its
``_SUCCESS`` (and the statistics in it) untouched."""

from __future__ import annotations

import re
import signal

import pyarrow.parquet as pq

from gliner_ray.extract import Scale, extract
from gliner_ray.extract.progress import Progress
from tests.helpers.extraction import assert_same_as_predict, settings, start_job, wait_for, write_corpus


def test_ctrl_c_keeps_the_finished_shards_and_the_same_command_continues(ray_cluster, tmp_path, tiny_gliner_dir):
    documents = write_corpus(tmp_path / "in", shards=6, docs_per_shard=6, seed=20)
    output = tmp_path / "out"
    flags = ("--actors", "1", "--chunk-size", "4")
    job = start_job(tmp_path / "in", output, tiny_gliner_dir, *flags)
    wait_for(lambda: any((output / "_progress").glob("shard-*.json")), job)
    job.send_signal(signal.SIGINT)
    log = job.communicate(timeout=900)[0]  # generous: stopping Ray on a busy machine takes minutes

    assert job.returncode == 130, log[-3000:]
    said = re.search(rf"gliner-ray extract: interrupted: (\d) of 6 shards kept in {output}; run the same command "
                     "again to continue", log)
    assert said and "Traceback" not in log, log[-3000:]
    kept = int(said[1])
    assert 1 <= kept < 6 and not (output / "_SUCCESS").exists()

    again = start_job(tmp_path / "in", output, tiny_gliner_dir, *flags)
    log = again.communicate(timeout=900)[0]
    assert again.returncode == 0, log[-3000:]
    assert f"{kept} already done, {6 - kept} to process" in log
    assert re.search(rf"wrote [\d,]+ mentions of 36 documents to {output} \(mentions/, errors/, _SUCCESS\) in \d+s", log)
    assert_same_as_predict(pq.read_table(output / "mentions"), tiny_gliner_dir, documents)


def test_a_rerun_of_a_finished_job_leaves_its_success_untouched(ray_cluster, tmp_path, tiny_gliner_dir):
    write_corpus(tmp_path / "in", shards=2, docs_per_shard=4, seed=21)
    output = tmp_path / "out"
    first = extract(str(tmp_path / "in"), str(output), settings(tiny_gliner_dir), Scale(actors=(1, 1)))
    success = (output / "_SUCCESS").read_bytes()
    modified = (output / "_SUCCESS").stat().st_mtime_ns

    again = extract(str(tmp_path / "in"), str(output), settings(tiny_gliner_dir), Scale(actors=(1, 1)))

    assert again == first and first["shards_processed"] == 2 and first["words"] > 0
    assert (output / "_SUCCESS").read_bytes() == success and (output / "_SUCCESS").stat().st_mtime_ns == modified


def test_the_time_left_is_said_only_from_the_pace_after_the_first_shard():
    progress = Progress(total_bytes=400)
    marker = {"source": "s", "documents": 1, "failed": 0, "mentions": 0}
    progress.started -= 100  # a slow start-up (loading the model) before the first shard
    lines = [progress.shard_done(marker, 100) for _ in range(3)]
    assert all("left" not in line for line in lines[:2])
    assert "left" in lines[2] and "1m" not in lines[2]  # not extrapolated from the start-up
