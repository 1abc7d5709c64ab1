"""Training: the recipe's pieces checked by hand or against the reference library, then real Ray Train runs
(two gloo workers, a tiny BERT) that learn, resume from their checkpoint, and survive a killed worker and S3 faults."""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import signal
import sys
import threading
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import torch

from gliner_ray import storage
from gliner_ray.data import Example
from gliner_ray.training import (
    BatchBuilder, Prefetcher, TrainSettings, choose_types, clean_examples, default_cpus_per_worker, parameter_groups,
    span_labels, span_loss, token_budget_groups, train, train_step, warmup_cosine,
)
from tests.helpers.training import metrics_of, registered_checkpoint_step, synthetic_task, tiny_settings


# ---- the recipe's pieces ---------------------------------------------------------------------------------
def test_span_labels_mark_each_span_at_start_width_and_prompt_type():
    spans = [[(0, 1, "person"), (3, 3, "city"), (2, 2, "dropped")], [(1, 1, "city")]]
    types = [["city", "person"], ["city"]]
    labels = span_labels(spans, types, num_words=5, max_width=3)
    assert labels.shape == (2, 5, 3, 2)
    expected = torch.zeros(2, 5, 3, 2)
    expected[0, 0, 1, 1] = 1  # words 0..1, width 1, "person" is the prompt's second type
    expected[0, 3, 0, 0] = 1  # word 3, "city" first; the span typed "dropped" is not in the prompt: no target
    expected[1, 1, 0, 0] = 1
    assert torch.equal(labels, expected)
    with pytest.raises(ValueError, match="does not fit"):
        span_labels([[(4, 6, "city")]], [["city"]], num_words=5, max_width=3)


def test_negative_types_come_from_the_batch_make_about_half_the_prompt_and_vary():
    rng = random.Random(0)
    own, others = ["person", "city"], ["drug", "gene", "river", "person", "song", "law", "planet"]
    negative_share, orders, lengths = [], set(), set()
    for _ in range(2000):
        types = choose_types(own, others, max_types=25, rng=rng)
        assert len(types) == len(set(types)) and set(types) <= set(own) | set(others)
        assert len(types) >= 2  # of the 4 drawn (2 own + 2 negatives), at most half are dropped
        negative_share.append(sum(t not in own for t in types) / len(types))
        orders.add(tuple(types))
        lengths.add(len(types))
    assert 0.4 < sum(negative_share) / len(negative_share) < 0.6
    assert lengths == {2, 3, 4} and len(orders) > 50
    many = [f"type {i}" for i in range(40)]
    assert all(len(choose_types(many, many, max_types=25, rng=rng)) <= 25 for _ in range(50))
    assert choose_types([], [], max_types=25, rng=rng) == []


def test_batch_builder_aligns_targets_with_prompts_and_masks_padding(tiny_gliner_dir):
    from gliner_ray import GLiNER

    model = GLiNER.from_pretrained(tiny_gliner_dir, device="cpu")
    examples = [Example(["Ada", "Lovelace", "wrote", "notes"], [(0, 1, "person")]),
                Example(["Paris", "."], [(0, 0, "city")])]
    batch = BatchBuilder(model.prompt_tokenizer, model.config.max_width, max_types=25, seed=1)(examples)
    assert batch.labels.shape == batch.valid.shape == (2, 4, 12, batch.inputs.type_index.shape[1])
    assert batch.inputs.word_counts.tolist() == [4, 2]
    # every positive sits on a valid pair, and only the annotated spans are positive
    assert not (batch.labels.bool() & ~batch.valid).any()
    positives = {(b, w, k) for b, w, k, _ in batch.labels.nonzero().tolist()}
    assert positives <= {(0, 0, 1), (1, 0, 0)}
    # padding: the second text has 2 words, so its spans starting at word 2 or ending past word 1 are invalid
    types_of_second = int(batch.inputs.type_counts[1])
    assert not batch.valid[1, 2:].any() and not batch.valid[1, 1, 1:].any() and not batch.valid[1, 0, 2:].any()
    assert batch.valid[1, 0, :2, :types_of_second].all() and batch.valid[1, 1, 0, :types_of_second].all()
    for row in range(2):
        assert not batch.valid[row, ..., int(batch.inputs.type_counts[row]):].any()
    logits = model.model(**batch.inputs.model_inputs())
    assert logits.shape == batch.labels.shape


def test_batch_builder_cuts_texts_that_overflow_the_encoder_and_counts_them(tiny_gliner_dir):
    from gliner_ray import GLiNER

    model = GLiNER.from_pretrained(tiny_gliner_dir, device="cpu")
    words = ["antidisestablishmentarianism"] * 200  # many sub-tokens each: far past 512 tokens
    batch = BatchBuilder(model.prompt_tokenizer, max_width=12, max_types=25, seed=0)(
        [Example(words, [(0, 0, "idea"), (199, 199, "idea")])])
    assert batch.cut_examples == 1 and batch.cut_spans == 1
    assert batch.inputs.input_ids.shape[1] <= model.prompt_tokenizer.max_tokens
    assert batch.labels.sum() <= 1


def test_clean_examples_skips_and_counts_bad_data_with_one_warning(caplog):
    examples = [
        Example(["a", "b", "c"], [(0, 0, "x"), (1, 2, "y")]),
        Example(["a", "b", "c"], [(0, 0, "x"), (2, 1, "inverted")]),
        Example(["a", "b", "c"], [(1, 5, "past the end")]),
        Example(["a", "b", "c"], [(-1, 0, "negative")]),
        Example(["a", "b", "c"], [(1, 1, " ")]),
        Example([], []),
        Example(["w"] * 10, [(0, 1, "x"), (7, 8, "after the cut"), (0, 4, "too wide")]),
    ]
    with caplog.at_level(logging.WARNING, logger="gliner_ray.training.batches"):
        kept, problems = clean_examples(examples, max_len=6, max_width=3)
    assert kept == [Example(["a", "b", "c"], [(0, 0, "x"), (1, 2, "y")]), Example(["w"] * 6, [(0, 1, "x")])]
    assert problems == {
        "example with a span out of range or inverted (skipped)": 3, "example with an empty label (skipped)": 1,
        "example without words (skipped)": 1, "text longer than max_len=6 words (cut)": 1,
        "span past the max_len cut (dropped)": 1, "span wider than max_width=3 words (dropped)": 1,
    }
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "3 x example with a span out of range" in warnings[0].getMessage()


def test_loss_matches_the_reference_focal_loss_and_masks_invalid_pairs():
    from gliner.modeling.loss_functions import focal_loss_with_logits

    torch.manual_seed(0)
    logits = torch.randn(2, 5, 3, 4) * 3
    labels = (torch.rand(2, 5, 3, 4) < 0.1).float()
    valid = torch.rand(2, 5, 3, 4) < 0.7
    for alpha, gamma in ((-1.0, 0.0), (0.75, 2.0)):
        reference = (focal_loss_with_logits(logits, labels, alpha=alpha, gamma=gamma) * valid).sum()
        ours = span_loss(logits, labels, valid, "sum", alpha, gamma)
        assert torch.allclose(ours, reference, rtol=1e-4)
    # invalid pairs do not count, whatever their logits
    noisy = logits.masked_fill(~valid, 100.0)
    assert torch.allclose(span_loss(noisy, labels, valid), span_loss(logits, labels, valid))
    mean = span_loss(logits, labels, valid, "mean")
    assert torch.allclose(mean, span_loss(logits, labels, valid) / valid.any(-1).sum())


def test_optimizer_groups_and_schedule(tiny_gliner_dir):
    from gliner_ray import GLiNER

    model = GLiNER.from_pretrained(tiny_gliner_dir, device="cpu").model
    groups = parameter_groups(model, lr_encoder=1e-5, lr_other=5e-5, weight_decay=0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    grouped = [names[id(p)] for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(names.values())  # each parameter exactly once
    for group in groups:
        for p in group["params"]:
            name = names[id(p)]
            assert group["lr"] == (1e-5 if name.startswith("encoder.") else 5e-5)
            assert group["weight_decay"] == (0.0 if "bias" in name or "LayerNorm" in name else 0.01)
    optimizer = torch.optim.AdamW(groups)
    schedule = warmup_cosine(optimizer, steps=100, warmup_ratio=0.1)
    lrs = []
    for _ in range(100):
        lrs.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    assert lrs[0] == 0 and lrs[5] == pytest.approx(0.5e-5) and lrs[10] == pytest.approx(1e-5)
    assert lrs[55] == pytest.approx(0.5e-5) and lrs[99] < 1e-8


def test_bad_settings_and_unusable_data_fail_before_any_worker_starts(tmp_path, tiny_bert_dir):
    settings = TrainSettings(output=str(tmp_path), backbone=tiny_bert_dir, batch_size=4, workers=2)
    with pytest.raises(ValueError, match="no usable training examples among 2"):
        train([Example([], []), Example([], [(0, 0, "x")])], [], settings)
    with pytest.raises(ValueError, match="cannot fill one batch of 4 on each of 2 workers"):
        train(synthetic_task(0, 7), [], settings)
    with pytest.raises(ValueError, match="exactly one of --backbone"):
        train(synthetic_task(0, 8), [], TrainSettings(output=str(tmp_path)))
    with pytest.raises(ValueError, match="--precision must be one of auto, bf16, fp32, got 'fp16'"):
        train(synthetic_task(0, 8), [], TrainSettings(output=str(tmp_path), backbone=tiny_bert_dir, precision="fp16"))
    assert not any(tmp_path.iterdir())


def test_precision_flags_choose_bf16_autocast():
    from gliner_ray.precision import uses_bf16

    cpu = torch.device("cpu")
    assert uses_bf16("bf16", cpu) and not uses_bf16("fp32", cpu)


def test_token_budget_groups_fill_batches_of_similar_length():
    rng = random.Random(0)
    lengths = [rng.randint(3, 60) for _ in range(500)] + [700]  # one text longer than the budget
    groups = token_budget_groups(lengths, max_tokens=256, rng=rng)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))  # every text exactly once
    for group in groups:
        longest = max(lengths[i] for i in group)
        assert len(group) * longest <= 256 or len(group) == 1
    assert [len(g) for g in groups if 700 in [lengths[i] for i in g]] == [1]
    # similar lengths: the budget is mostly text, not padding
    real = sum(lengths[:-1])
    padded = sum(len(g) * max(lengths[i] for i in g) for g in groups if len(g) > 1)
    assert real / padded > 0.9
    assert padded / (256 * (len(groups) - 1)) > 0.75  # and batches are full: no room for one more text of ≤ 60


def test_prefetcher_keeps_order_and_raises_the_producers_error():
    feed = Prefetcher(iter(range(20)), depth=3)
    got = [feed.get() for _ in range(20)]
    assert [item for item, _, _ in got] == list(range(20)) and all(w >= 0 and b >= 0 for _, w, b in got)
    with pytest.raises(StopIteration):
        feed.get()
    feed.close()

    def broken():
        yield 1
        raise ValueError("bad row 2")

    feed = Prefetcher(broken(), depth=2, prepare=lambda x: x * 10)
    assert feed.get()[0] == 10
    with pytest.raises(ValueError, match="bad row 2"):
        feed.get()
    feed.close()
    endless = Prefetcher(iter(lambda: 0, 1), depth=2)  # a producer blocked on a full queue stops on close
    endless.close()
    assert not endless._thread.is_alive()


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_accumulating_k_batches_takes_the_step_of_one_k_times_bigger_batch(tiny_gliner_dir, reduction):
    import contextlib
    import copy

    from gliner_ray import GLiNER

    gliner = GLiNER.from_pretrained(tiny_gliner_dir, device="cpu")
    gliner.model.eval()  # no dropout, so both ways see the same function
    build = BatchBuilder(gliner.prompt_tokenizer, gliner.config.max_width, max_types=25, seed=0)
    examples = synthetic_task(3, 12)
    types = [["person", "number"] if i % 2 else ["person"] for i in range(len(examples))]
    settings = TrainSettings(output="", backbone="x", loss_reduction=reduction, max_grad_norm=1e9)
    updates = []
    for chunks in ([examples], [examples[:4], examples[4:8], examples[8:]]):
        model = copy.deepcopy(gliner.model)
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        start = 0
        batches = []
        for chunk in chunks:
            batches.append(build.assemble(chunk, types[start:start + len(chunk)]))
            start += len(chunk)
        loss = train_step(model, batches, optimizer, scheduler, settings, contextlib.nullcontext())
        before = dict(gliner.model.named_parameters())
        updates.append((loss, {n: before[n].detach() - p.detach() for n, p in model.named_parameters()}))
    (loss_one, one), (loss_acc, acc) = updates
    assert loss_one > 0 and torch.allclose(loss_one, loss_acc, rtol=1e-5)
    assert max(one[n].abs().max() for n in one) > 0
    for name in one:
        assert torch.allclose(one[name], acc[name], rtol=1e-4, atol=1e-6), name


def test_cpus_per_worker_default_shares_the_nodes_cpus(ray_cluster):
    import ray

    cpus = int(ray.cluster_resources()["CPU"])
    assert default_cpus_per_worker(1, gpu=False) == cpus
    assert default_cpus_per_worker(2, gpu=False) == max(1, cpus // 2)
    assert default_cpus_per_worker(1, gpu=True) == 1  # no GPU node is up


def test_cli_refuses_an_unknown_format(capsys):
    from gliner_ray.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--train", "x.jsonl", "--format", "csv", "--backbone", "b", "--output", "o"])
    assert exit_info.value.code == 2 and "invalid choice: 'csv'" in capsys.readouterr().err


# ---- real runs on Ray Train ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(ray_cluster, s3_endpoint, tiny_bert_dir):
    """One run on S3 stopped at step 40, made through a fault-injecting proxy (every 4th request 503 / dropped /
    cut / slow), then the same command asked for 120 steps, straight to S3, during which the test kills a worker
    right after the step-60 checkpoint is stored. Yields the output URI, the final model's URI, the metrics and
    what the proxy saw."""
    import boto3
    import ray._private.state

    from tests.helpers.s3_faults import FaultyProxy

    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="train-runs")
    output = "s3://train-runs/synthetic"
    train_set, eval_set = synthetic_task(1, 400), synthetic_task(2, 60)
    with FaultyProxy(s3_endpoint, every=4, delay=0.5) as proxy:
        os.environ["AWS_ENDPOINT_URL"] = proxy.url  # the driver's endpoint; the workers were started without it
        try:
            filesystem, _ = storage.resolve(output)
            pickles_to_itself = pickle.loads(pickle.dumps(filesystem)) is filesystem
            train(train_set, eval_set, tiny_settings(output, tiny_bert_dir, steps=40))
            first_run = metrics_of(output)
        finally:
            os.environ["AWS_ENDPOINT_URL"] = s3_endpoint
    faults = {"faults": dict(proxy.faults), "pickles_to_itself": pickles_to_itself,
              "metrics_writes": sum(n for path, n in proxy.writes.items() if path.endswith("/synthetic/metrics.jsonl"))}
    killed: list[dict] = []

    def kill_a_worker_after_the_step_60_checkpoint() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and registered_checkpoint_step(output) < 60:
            time.sleep(0.05)
        workers = [a["Pid"] for a in ray._private.state.actors().values()
                   if a["ActorClassName"] == "RayTrainWorker" and a["State"] == "ALIVE"]
        registered = registered_checkpoint_step(output)
        os.kill(workers[-1], signal.SIGKILL)
        killed.append({"pid": workers[-1], "after_checkpoint": registered})

    killer = threading.Thread(target=kill_a_worker_after_the_step_60_checkpoint, daemon=True)
    killer.start()
    final = train(train_set, eval_set, tiny_settings(output, tiny_bert_dir, steps=120))
    killer.join()
    assert killed, "the test did not kill a worker"
    yield {"output": output, "final": final, "first_run": first_run, "records": metrics_of(output), "killed": killed[0],
           **faults}
@pytest.mark.timeout(1200)  # Ray Train (its fixture's runs included) on a busy machine: minutes; fail, never hang


def test_two_workers_learn_the_task(trained):
    f1 = {r["step"]: r["f1"] for r in trained["records"] if "f1" in r}
    assert sorted(f1) == [0, 40, 80, 120]
    assert f1[120] > 0.8 and f1[120] > f1[0] + 0.4, f1
    losses = [r["loss"] for r in trained["records"] if "loss" in r]
    assert sum(losses[-3:]) < sum(losses[:3]) / 3
    assert all(r["sentences_per_s"] > 0 and 0 <= r["lr_other"] <= 3e-3 for r in trained["records"] if "loss" in r)
@pytest.mark.timeout(1200)  # Ray Train (its fixture's runs included) on a busy machine: minutes; fail, never hang


def test_a_rerun_continues_from_the_last_checkpoint(trained):
    assert [r["step"] for r in trained["first_run"] if "loss" in r] == [10, 20, 30, 40]
    resumed = [r["step"] for r in trained["records"] if r.get("resumed")]
    assert resumed[0] == 40  # the second command started from the first one's last checkpoint, not step 0
    assert [r["step"] for r in trained["records"] if "f1" in r][:2] == [0, 40]  # no second step-0 evaluation
@pytest.mark.timeout(1200)  # Ray Train (its fixture's runs included) on a busy machine: minutes; fail, never hang


def test_a_run_through_s3_faults_finishes_and_its_checkpoints_resume_the_next_run(trained):
    """The first run met every fault kind and still logged each step once; the second run resumed from its step-40
    checkpoint (model, optimizer and schedule written through the faults). Rank 0's metrics went through the
    proxy too: the driver's S3 endpoint reached the Ray Train workers, and the storage filesystem Ray ships to them
    is rebuilt by ``storage.s3_filesystem``, retries and all (pyarrow's own pickling drops them)."""
    from tests.helpers.s3_faults import KINDS

    assert set(trained["faults"]) == set(KINDS), trained["faults"]
    assert trained["pickles_to_itself"]
    assert trained["metrics_writes"] >= 4, trained["metrics_writes"]  # steps 10, 20, 30, 40 at least
    assert [r["step"] for r in trained["first_run"] if "loss" in r] == [10, 20, 30, 40]
    assert [r["step"] for r in trained["records"] if r.get("resumed")][0] == 40
@pytest.mark.timeout(1200)  # Ray Train (its fixture's runs included) on a busy machine: minutes; fail, never hang


def test_a_rerun_that_would_change_the_recipe_is_refused_before_any_worker_starts(trained, tiny_bert_dir):
    settings = tiny_settings(trained["output"], tiny_bert_dir, steps=200, lr_encoder=5e-4, batch_size=4)
    with pytest.raises(ValueError, match=r"--batch-size 8 -> 4; --lr-encoder 0.001 -> 0.0005\); a re-run resumes"):
        train(synthetic_task(1, 400), [], settings)
    assert metrics_of(trained["output"]) == trained["records"]  # nothing ran
@pytest.mark.timeout(1200)  # Ray Train (its fixture's runs included) on a busy machine: minutes; fail, never hang


def test_a_run_that_died_before_its_first_checkpoint_may_be_rerun_with_other_flags(tmp_path, tiny_bert_dir):
    from gliner_ray.training import record_settings

    record_settings(tiny_settings(str(tmp_path), tiny_bert_dir, lr_encoder=1e-3))
    record_settings(tiny_settings(str(tmp_path), tiny_bert_dir, lr_encoder=5e-4))  # nothing to resume: allowed
    (tmp_path / "run" / "checkpoint_00000020").mkdir(parents=True)
    with pytest.raises(ValueError, match="--lr-encoder 0.0005 -> 0.001"):
        record_settings(tiny_settings(str(tmp_path), tiny_bert_dir, lr_encoder=1e-3))
@pytest.mark.timeout(1200)  # Ray Train (its fixture's runs included) on a busy machine: minutes; fail, never hang


def test_a_killed_worker_resumes_from_the_last_checkpoint(trained):
    resumed = [r["step"] for r in trained["records"] if r.get("resumed")]
    assert len(resumed) == 2 and 60 <= trained["killed"]["after_checkpoint"] <= resumed[1] < 120, (resumed, trained)
    # every step logged exactly once: the dead attempt's records after its checkpoint were replaced
    assert [r["step"] for r in trained["records"] if "loss" in r] == list(range(10, 130, 10))
@pytest.mark.timeout(1200)  # Ray Train (its fixture's runs included) on a busy machine: minutes; fail, never hang


def test_outputs_are_published_and_load_in_both_libraries(trained, tmp_path):
    import gliner

    from gliner_ray import GLiNER

    fs, root = pafs.FileSystem.from_uri(trained["output"])
    names = {info.base_name for info in fs.get_file_info(pafs.FileSelector(root))}
    assert {"final", "metrics.jsonl", "training.png", "run"} <= names
    checkpoints = sorted(i.base_name for i in fs.get_file_info(pafs.FileSelector(root + "/run"))
                         if i.base_name.startswith("checkpoint_0"))
    assert checkpoints == ["checkpoint_00000100", "checkpoint_00000120"]  # keep_checkpoints=2
    local = tmp_path / "final"
    local.mkdir()
    pafs.copy_files(trained["final"].removeprefix("s3://"), str(local), source_filesystem=fs)
    with fs.open_input_stream(root + "/training.png") as f:
        assert f.read(4) == b"\x89PNG"

    ours = GLiNER.from_pretrained(local, device="cpu")
    reference = gliner.GLiNER.from_pretrained(str(local))
    text = "Yesterday Judy met 42 friends and Oscar at the station"
    assert {e["text"] for e in ours.predict([text], ["person"])[0]} == {"Judy", "Oscar"}
    assert {e["text"] for e in reference.predict_entities(text, ["person"])} == {"Judy", "Oscar"}
@pytest.mark.timeout(1200)  # Ray Train (its fixture's runs included) on a busy machine: minutes; fail, never hang


def test_token_budget_batches_with_gradient_accumulation_learn_the_task(ray_cluster, tmp_path, tiny_bert_dir):
    output = str(tmp_path / "budget")
    settings = tiny_settings(output, tiny_bert_dir, workers=1, max_tokens=96, accumulate=2, steps=60,
                             eval_every=60, checkpoint_every=60)
    train(synthetic_task(4, 300), synthetic_task(5, 40), settings)
    records = metrics_of(output)
    f1 = {r["step"]: r["f1"] for r in records if "f1" in r}
    assert f1[60] > 0.7 and f1[60] > f1[0] + 0.3, f1
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [10, 20, 30, 40, 50, 60]
    assert all(0 <= r["data_wait"] < 1 and r["feed_sentences_per_s"] > 0 and r["sentences_per_s"] > 0 for r in steps)
    settings_file = json.loads((tmp_path / "budget" / "settings.json").read_text())
    assert settings_file["max_tokens"] == 96 and settings_file["accumulate"] == 2
    assert settings_file["cpus_per_worker"] >= 1  # the default, resolved and recorded
@pytest.mark.timeout(1200)  # Ray Train (its fixture's runs included) on a busy machine: minutes; fail, never hang


def test_the_pretraining_recipe_runs_end_to_end_on_a_tiny_slice_on_s3(ray_cluster, s3_endpoint, tiny_bert_dir, tmp_path):
    """examples/pretrain-pile-ner.sh with its data on S3 (Pile-NER conversation JSON, CoNLL dev sets), a tiny
    encoder and one CPU worker on the suite's cluster (as on a cluster: no Ray of its own to start): trains,
    checkpoints, evaluates during training and on every dev set at the end."""
    import subprocess

    import boto3

    def pile_ner(examples: list[Example]) -> list[dict]:
        records = []
        for i, ex in enumerate(examples):
            names = sorted({" ".join(ex.words[s:e + 1]) for s, e, _ in ex.spans})
            records.append({"id": f"pile-ner-{i}", "conversations": [
                {"from": "human", "value": "Text: " + " ".join(ex.words)},
                {"from": "gpt", "value": "I've read this text."},
                {"from": "human", "value": "What describes person in the text?"},
                {"from": "gpt", "value": json.dumps(names)}]})
        return records

    def conll(examples: list[Example]) -> str:
        lines = []
        for ex in examples:
            tags = ["O"] * len(ex.words)
            for s, e, _ in ex.spans:
                tags[s:e + 1] = ["B-PER"] + ["I-PER"] * (e - s)
            lines += [f"{w} {t}" for w, t in zip(ex.words, tags)] + [""]
        return "\n".join(lines)

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="pretrain")
    s3.put_object(Bucket="pretrain", Key="data/pile-ner.json", Body=json.dumps(pile_ner(synthetic_task(6, 200))))
    s3.put_object(Bucket="pretrain", Key="data/mit-restaurant.json", Body=json.dumps(pile_ner(synthetic_task(7, 20))))
    for domain in ("ai", "literature", "music", "politics", "science"):
        s3.put_object(Bucket="pretrain", Key=f"data/crossner/{domain}/dev.txt", Body=conll(synthetic_task(8, 20)))
    env = {**os.environ, "BUCKET": "s3://pretrain", "BACKBONE": tiny_bert_dir, "HIDDEN_SIZE": "32", "WORKERS": "1",
           "GPU": "", "STEPS": "6", "CHECKPOINT_EVERY": "3", "EVAL_EVERY": "3",
           "RAY_ADDRESS": ray_cluster.get_runtime_context().gcs_address,
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
           # the script calls `gliner-ray`: the running interpreter's, also when its venv is not activated
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    script = Path(__file__).resolve().parent.parent / "examples" / "pretrain-pile-ner.sh"
    done = subprocess.run(["bash", str(script), "--lr-encoder", "1e-3", "--lr-other", "3e-3", "--cpus-per-worker", "1"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    records = metrics_of("s3://pretrain/runs/gliner-pile-ner")
    assert [r["step"] for r in records if "f1" in r] == [0, 3, 6]
    report = json.loads(s3.get_object(Bucket="pretrain", Key="runs/gliner-pile-ner/eval/report.json")["Body"].read())
    assert len(report["datasets"]) == 6, report.keys()
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="pretrain", Prefix="runs/gliner-pile-ner/")["Contents"]}
    assert "runs/gliner-pile-ner/final/gliner_config.json" in keys
    assert any(k.startswith("runs/gliner-pile-ner/run/checkpoint_00000003/") for k in keys)


def test_publish_model_and_whole_file_writes_on_local_disk(tmp_path, tiny_gliner_dir):
    import shutil

    from ray.train import Checkpoint

    from gliner_ray import GLiNER
    from gliner_ray.training import MetricsLog, publish_model

    shutil.copytree(tiny_gliner_dir, tmp_path / "ckpt" / "model")
    (tmp_path / "out" / "final").mkdir(parents=True)
    (tmp_path / "out" / "final" / "stale.bin").write_bytes(b"old")
    publish_model(Checkpoint.from_directory(str(tmp_path / "ckpt")), str(tmp_path / "out" / "final"))
    assert sorted(p.name for p in (tmp_path / "out" / "final").iterdir()) == sorted(
        p.name for p in Path(tiny_gliner_dir).iterdir())
    assert GLiNER.from_pretrained(tmp_path / "out" / "final", device="cpu")
    MetricsLog(str(tmp_path / "out"), [{"step": 1}]).write()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["final", "metrics.jsonl"]


def test_the_training_plot_shows_f1_in_percent_as_evaluate_does(tmp_path):
    from gliner_ray.training.run_files import metrics_figure, plot_metrics

    records = [{"step": 10, "loss": 5.0}, {"step": 20, "loss": 2.0, "f1": 0.25}, {"step": 30, "loss": 1.0, "f1": 0.7}]
    loss_ax, f1_ax = metrics_figure(records).axes
    assert list(f1_ax.lines[0].get_ydata()) == [25.0, 70.0]
    assert f1_ax.get_ylim() == (0, 100) and "%" in f1_ax.get_title()
    plot_metrics(records, str(tmp_path / "training.png"))
    assert (tmp_path / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
