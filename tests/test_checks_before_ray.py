"""What the driver refuses before Ray starts any work: a --backbone the workers could not load fails in seconds
with one line naming it (not after Ray Train's attempts); a stopped run names its last checkpoint."""

from __future__ import annotations

import json
import time

from gliner_ray.cli import main
from gliner_ray.training import TrainSettings
from gliner_ray.training.settings import last_checkpoint_step
from tests.helpers.training import synthetic_task


def test_a_backbone_offline_and_not_in_the_cache_fails_in_seconds_with_one_line(tmp_path, capsys):
    examples = [{"tokenized_text": ex.words, "ner": [list(span) for span in ex.spans]} for ex in synthetic_task(2, 8)]
    (tmp_path / "train.json").write_text(json.dumps(examples))
    started = time.time()

    code = main(["train", "--train", str(tmp_path / "train.json"), "--backbone", "no-such-org/no-such-encoder",
                 "--output", str(tmp_path / "run")])

    error = capsys.readouterr().err
    assert code == 2 and time.time() - started < 30
    assert error.count("\n") == 1 and error.startswith("gliner-ray train: error: --backbone no-such-org/no-such-encoder")
    assert "hf download no-such-org/no-such-encoder" in error
    assert not (tmp_path / "run" / "run").exists()  # Ray Train never started


def test_the_last_checkpoint_step_is_read_from_the_run_folder(tmp_path):
    settings = TrainSettings(output=str(tmp_path), backbone="b")
    assert last_checkpoint_step(settings) is None
    for step in (20, 40):
        (tmp_path / "run" / f"checkpoint_{step:08d}").mkdir(parents=True)
    assert last_checkpoint_step(settings) == 40
