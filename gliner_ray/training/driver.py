"""Data-parallel GLiNER training on Ray Train, with the paper's recipe (``recipe.py``).

The driver cleans the examples, hands them to a ``TorchTrainer`` as a Ray Data dataset and, when training
ends, copies the last checkpoint's model to ``OUTPUT/final/`` and plots ``OUTPUT/training.png``. Each worker
reads its own shard epoch after epoch until ``steps`` optimizer steps are done (a resumed run starts a fresh
pass over its shard). Rank 0 evaluates, writes checkpoints (a GLiNER checkpoint plus optimizer state) under
``OUTPUT/run/`` and rewrites ``OUTPUT/metrics.jsonl`` at every report. A worker that dies makes Ray Train
restart the group from the latest checkpoint; re-running the same command after the job died does the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import random
import sys
import tempfile
import time
from typing import Any, Sequence

import torch

from .. import storage
from ..data import Example, load_label_map, read_dataset
from ..evaluate import score_spans
from ..precision import uses_bf16
from .batches import BatchBuilder, clean_examples
from .feed import examples_to_table, prefetch_batches
from .recipe import group_lr, optimizer_and_schedule, train_step
from .run_files import (
    FINAL_DIR, METRICS_FILE, PLOT_FILE, MetricsLog, plot_metrics, publish_model, read_checkpoint_files, read_metrics,
    write_checkpoint_files,
)
from .settings import PRECISIONS, TrainSettings, record_settings

log = logging.getLogger(__name__)


# ---- evaluation -------------------------------------------------------------------------------------------
def evaluate(model, examples: Sequence[Example], threshold: float, batch_size: int = 16) -> dict[str, float]:
    """Exact-match P/R/F1 of ``model`` (a ``GLiNER``) on ``examples``, prompting with every type they use."""
    labels = sorted({label for ex in examples for _, _, label in ex.spans})
    if not labels:
        raise ValueError("the evaluation set holds no entity spans, so it has no types to prompt with")
    predicted = model.predict_words([ex.words for ex in examples], labels, threshold=threshold, batch_size=batch_size)
    scores, _ = score_spans([ex.spans for ex in examples], predicted)
    return {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1}


# ---- the per-worker loop ---------------------------------------------------------------------------------
def train_loop_per_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: build or restore the model, then take optimizer steps until ``settings.steps``.

    Batches are built in a background thread (``Prefetcher``), ahead of the steps, pinned when they go to a
    GPU; a step only moves its batches and runs forward, backward and the optimizer. Loss and counters stay
    on the device and are read back (one all-reduce) only at logging steps.
    """
    import ray.train
    import ray.train.torch

    settings = TrainSettings(**config["settings"])
    eval_examples: list[Example] = config["eval_examples"]
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    torch.manual_seed(settings.seed)  # the same fresh head on every worker (DDP also broadcasts rank 0's)

    gliner, state, history = restore_or_build(settings, ray.train.get_checkpoint())
    freeze_unused(gliner.model)
    step = state["step"]
    torch.manual_seed(settings.seed + 1000 * rank + step)  # dropout differs per worker and per resumed attempt

    model = ray.train.torch.prepare_model(gliner.model)
    optimizer, scheduler = optimizer_and_schedule(gliner.model, settings, state)
    build = BatchBuilder(gliner.prompt_tokenizer, gliner.config.max_width, settings.max_types,
                         seed=settings.seed + 1000 * rank + step)
    bf16 = uses_bf16(settings.precision, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    metrics = MetricsLog(settings.output, history) if rank == 0 else None
    if metrics is not None and eval_examples and step == 0:
        metrics.add({"step": 0, **timed_eval(gliner, eval_examples, settings.eval_threshold)})
        gliner.model.train()

    log.info("worker %d/%d on %s with %d torch threads, %s autocast, %s x %d per step, starting at step %d", rank,
             world, device, torch.get_num_threads(), "bf16" if bf16 else "no",
             f"batches of {settings.max_tokens} tokens" if settings.max_tokens else f"{settings.batch_size} sentences",
             settings.accumulate, step)
    feed = prefetch_batches(ray.train.get_dataset_shard("train"), settings, build, pin=device.type == "cuda")
    window = Window(device)
    cut_examples = epoch = 0
    model.train()
    try:
        while step < settings.steps:
            batches = []
            for _ in range(settings.accumulate):
                (epoch, batch), waited, built_in = feed.get()
                if batch.cut_examples and not cut_examples:
                    log.warning("worker %d: texts longer than the encoder's token limit beside their prompt are "
                                "cut (the count is in the metrics as cut_examples)", rank)
                cut_examples += batch.cut_examples
                window.sentences += batch.size
                window.wait += waited
                window.build += built_in
                batches.append(batch.to(device))
            window.add(train_step(model, batches, optimizer, scheduler, settings, autocast))
            step += 1

            is_last = step == settings.steps
            is_eval = bool(eval_examples) and (step % settings.eval_every == 0 or is_last)
            is_checkpoint = step % settings.checkpoint_every == 0 or is_last
            if not (step % settings.log_every == 0 or is_eval or is_checkpoint):
                continue
            record = {"step": step, "epoch": epoch, **window.read(world),
                      "lr_encoder": group_lr(optimizer, "encoder"), "lr_other": group_lr(optimizer, "other"),
                      "cut_examples": cut_examples}
            if metrics is not None and is_eval:
                record.update(timed_eval(gliner, eval_examples, settings.eval_threshold))
                model.train()
            report(record, metrics, gliner, optimizer, scheduler, step, save=is_checkpoint)
            window = Window(device)
    finally:
        feed.close()


class Window:
    """What the steps since the last log did: their losses summed on the device (no synchronization per step),
    sentences taken and seconds spent waiting for batches, read back once, summed over all workers."""

    def __init__(self, device: torch.device):
        self.device = device
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.steps = 0
        self.sentences = 0
        self.wait = 0.0
        self.build = 0.0
        self.start = time.perf_counter()

    def add(self, loss: torch.Tensor) -> None:
        self.loss += loss
        self.steps += 1

    def read(self, world: int) -> dict[str, float]:
        """Mean loss per step (the whole batch's, not one worker's share), sentences/s of all workers, the
        share of the window the workers spent waiting for data, and the input pipeline's own speed: sentences
        per second of its threads' busy time, over all workers (what it could feed if the steps took no time)."""
        counts = torch.tensor([self.sentences, self.wait, self.build], dtype=torch.float64, device=self.device)
        totals = torch.cat([self.loss.view(1), counts])
        if world > 1:
            torch.distributed.all_reduce(totals)
        loss, sentences, wait, build = totals.tolist()  # the one synchronization of the window
        elapsed = time.perf_counter() - self.start
        return {"loss": loss / world / max(self.steps, 1), "sentences_per_s": sentences / elapsed,
                "data_wait": wait / world / elapsed, "feed_sentences_per_s": sentences * world / max(build, 1e-9)}


def restore_or_build(settings: TrainSettings, checkpoint) -> tuple[Any, dict[str, Any], list[dict]]:
    """The GLiNER to train, the trainer state (step, optimizer, schedule) and the metrics so far: from the
    latest checkpoint when Ray Train has one (a restart or a re-run), else fresh from --init or --backbone."""
    from ..gliner import GLiNER

    if checkpoint is not None:
        # A private copy per worker: Ray's shared per-node download (as_directory) can be read by one worker
        # while another is still writing it (seen as a truncated model.safetensors after a restart).
        with tempfile.TemporaryDirectory() as private:
            gliner, state, history = read_checkpoint_files(checkpoint.to_directory(private))
        return gliner, state, [*history, {"step": state["step"], "resumed": True}]
    if settings.init is not None:
        gliner = GLiNER.from_pretrained(settings.init, device="cpu")
    else:
        gliner = GLiNER.from_backbone(settings.backbone, hidden_size=settings.hidden_size, max_width=settings.max_width,
                                      dropout=settings.dropout, max_len=settings.max_len, device="cpu")
    gliner.config.max_types = settings.max_types
    return gliner, {"step": 0}, []


def freeze_unused(model: torch.nn.Module) -> None:
    """Stop training the encoder's pooler: GLiNER never reads it, and DDP refuses parameters without gradients.
    (The reference trainer leaves it unchanged too: it never gets a gradient there either.)"""
    pooler = getattr(model.encoder, "pooler", None)
    if isinstance(pooler, torch.nn.Module):
        pooler.requires_grad_(False)


def timed_eval(gliner, examples: Sequence[Example], threshold: float) -> dict[str, float]:
    start = time.perf_counter()
    scores = evaluate(gliner, examples, threshold)
    return {**scores, "eval_seconds": time.perf_counter() - start}


def report(record: dict, metrics: "MetricsLog | None", gliner, optimizer, scheduler, step: int, save: bool) -> None:
    """``ray.train.report`` on every worker (it is a barrier); rank 0 adds the metrics and, when ``save``, the
    checkpoint: ``model/`` (a GLiNER checkpoint), the optimizer state and the metrics so far."""
    import ray.train

    if metrics is None:
        ray.train.report(record)
        return
    metrics.history.append(record)
    log.info("step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "step"))
    if not save:
        ray.train.report(record)
        metrics.write()
        return
    with tempfile.TemporaryDirectory() as path:
        state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
        write_checkpoint_files(path, gliner, state, metrics.history)
        ray.train.report(record, checkpoint=ray.train.Checkpoint.from_directory(path),
                         checkpoint_dir_name=f"checkpoint_{step:08d}")
    metrics.write()  # after the checkpoint is stored, so the metrics never run ahead of what a resume restores


# ---- the driver ------------------------------------------------------------------------------------------
def model_limits(settings: TrainSettings) -> tuple[int, int]:
    """(max_len, max_width) of the model being trained: the checkpoint's for --init, else the flags'."""
    if settings.init is None:
        return settings.max_len, settings.max_width
    from ..checkpoint import read_config, resolve_checkpoint_dir

    config = read_config(resolve_checkpoint_dir(settings.init))
    return config.max_len, config.max_width


def default_cpus_per_worker(workers: int, gpu: bool) -> int:
    """CPUs per worker when --cpus-per-worker is not given: all of a node's, shared by the workers it holds.
    GPU workers take their node's CPUs per GPU; CPU workers spread evenly over the nodes with CPUs, each node's
    share the smallest node's CPUs divided by its workers. (Starts Ray if it is not running yet.)"""
    import ray

    if not ray.is_initialized():
        ray.init()
    nodes = [n["Resources"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) >= 1]
    gpu_nodes = [r for r in nodes if r.get("GPU", 0) >= 1]
    if gpu and gpu_nodes:
        cpus, how = min(int(r["CPU"] // r["GPU"]) for r in gpu_nodes), "the CPUs per GPU of its node"
    elif nodes and not gpu:
        per_node = math.ceil(workers / len(nodes))
        cpus = min(int(r["CPU"]) for r in nodes) // per_node
        how = f"{min(int(r['CPU']) for r in nodes)} node CPUs / {per_node} worker(s) per node"
    else:
        cpus, how = 1, "no node with GPUs is up yet (an autoscaling cluster): give --cpus-per-worker to use more"
    cpus = max(1, cpus)
    log.info("each worker takes %d CPU(s) (%s; --cpus-per-worker overrides)", cpus, how)
    return cpus


def train(train_examples: Sequence[Example], eval_examples: Sequence[Example], settings: TrainSettings) -> str:
    """Train on Ray Train and return the URI of the final GLiNER checkpoint (``OUTPUT/final``).

    Re-running with the same ``settings.output`` resumes from its latest checkpoint; it may change the number of
    steps and how the run is spread and logged, not the recipe (``record_settings``).
    """
    import ray
    import ray.data
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    settings.check()
    max_len, max_width = model_limits(settings)
    examples, _ = clean_examples(train_examples, max_len, max_width, what="training data")
    if not examples:
        raise ValueError(f"no usable training examples among {len(train_examples)} (see the warning above)")
    per_batch = 1 if settings.max_tokens else settings.batch_size
    if len(examples) < settings.workers * per_batch:
        raise ValueError(
            f"{len(examples)} training examples cannot fill one batch of {per_batch} on each of "
            f"{settings.workers} workers: lower --batch-size or --workers, or add data"
        )
    evaluation, _ = clean_examples(eval_examples, sys.maxsize, sys.maxsize, what="evaluation data")
    random.Random(settings.seed).shuffle(examples)
    if settings.max_tokens:
        log.info("training on %d examples (%d workers x %d batches of up to %d tokens per step, %d steps)",
                 len(examples), settings.workers, settings.accumulate, settings.max_tokens, settings.steps)
    else:
        log.info("training on %d examples (%d workers x %d batches of %d per step, %d steps = %.1f epochs)",
                 len(examples), settings.workers, settings.accumulate, settings.batch_size, settings.steps,
                 settings.steps * settings.workers * settings.accumulate * settings.batch_size / len(examples))
    if settings.cpus_per_worker is None:
        settings = dataclasses.replace(settings, cpus_per_worker=default_cpus_per_worker(settings.workers, settings.gpu))

    record_settings(settings)
    storage_fs, storage_path = storage.resolve(settings.output)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"settings": dataclasses.asdict(settings), "eval_examples": evaluation},
        scaling_config=ScalingConfig(num_workers=settings.workers, use_gpu=settings.gpu,
                                     resources_per_worker={"CPU": settings.cpus_per_worker}),
        run_config=RunConfig(
            name="run", storage_path=storage_path, storage_filesystem=storage_fs,
            checkpoint_config=CheckpointConfig(num_to_keep=settings.keep_checkpoints),
            failure_config=FailureConfig(max_failures=settings.max_failures),
            worker_runtime_env={"env_vars": storage.worker_environment()},  # the S3 endpoint, on every node
        ),
        datasets={"train": ray.data.from_arrow(examples_to_table(examples))},
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"training under {settings.run_dir} ended without a checkpoint")
    final = storage.join(settings.output, FINAL_DIR)
    publish_model(result.checkpoint, final)
    plot_metrics(read_metrics(settings.output), storage.join(settings.output, PLOT_FILE))
    log.info("final model: %s; metrics: %s", final, storage.join(settings.output, METRICS_FILE))
    return final


# ---- command line ----------------------------------------------------------------------------------------
def read_examples(uris: str, format: str | None, label_map: str | None) -> list[Example]:
    """Examples from comma-separated URIs, through the dataset readers (which skip and count unusable ones)."""
    mapping = load_label_map(label_map) if label_map else None
    examples: list[Example] = []
    for uri in (u.strip() for u in uris.split(",") if u.strip()):
        examples += read_dataset(uri, format, mapping).examples
    return examples


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainSettings(output="")
    data = parser.add_argument_group("data")
    data.add_argument("--train", required=True, help="training data: URI[,URI...] (local or s3://)")
    data.add_argument("--eval", help="evaluation data (exact-match P/R/F1 every --eval-every steps)")
    data.add_argument("--format", choices=["gliner", "pile-ner", "conll"], help="input format (default: inferred)")
    data.add_argument("--label-map", help="conll: JSON file mapping tag names to natural-language types")
    model = parser.add_argument_group("model")
    start = model.add_mutually_exclusive_group(required=True)
    start.add_argument("--backbone", help="pretrained encoder (hub id or directory): train a fresh GLiNER on it")
    start.add_argument("--init", help="GLiNER checkpoint (hub id or directory): fine-tune it")
    model.add_argument("--hidden-size", type=int, help="fresh models: width of the GLiNER layers (default: encoder's)")
    model.add_argument("--max-width", type=int, default=defaults.max_width, help="fresh models: longest span, in words")
    model.add_argument("--max-len", type=int, default=defaults.max_len, help="fresh models: words per training text")
    model.add_argument("--dropout", type=float, default=defaults.dropout, help="fresh models")
    model.add_argument("--max-types", type=int, default=defaults.max_types, help="entity types per prompt, at most")
    run = parser.add_argument_group("run")
    run.add_argument("--output", required=True, help="local directory or s3://bucket/prefix; re-run to resume")
    run.add_argument("--workers", type=int, default=defaults.workers)
    run.add_argument("--gpu", action="store_true", help="one GPU per worker (NCCL)")
    run.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                     help="bf16 autocast: auto (where bf16 is native: recent GPUs, CPUs with AVX512-BF16/AMX), "
                          "bf16 or fp32")
    run.add_argument("--cpus-per-worker", type=int, default=defaults.cpus_per_worker,
                     help="default: the node's CPUs divided by the workers on it (GPU workers: CPUs per GPU)")
    run.add_argument("--steps", type=int, default=defaults.steps, help="optimizer steps in all")
    run.add_argument("--batch-size", type=int, default=defaults.batch_size, help="sentences per worker per batch")
    run.add_argument("--max-tokens", type=int, default=defaults.max_tokens,
                     help="instead of --batch-size: batches of similar length holding up to this many text sub-tokens "
                          "(texts x the longest), so a GPU gets full batches with little padding")
    run.add_argument("--accumulate", type=int, default=defaults.accumulate,
                     help="batches per optimizer step (gradient accumulation: the step of a batch this many times bigger)")
    run.add_argument("--eval-every", type=int, default=defaults.eval_every)
    run.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    run.add_argument("--log-every", type=int, default=defaults.log_every)
    run.add_argument("--keep-checkpoints", type=int, default=defaults.keep_checkpoints)
    run.add_argument("--max-failures", type=int, default=defaults.max_failures, help="worker failures to recover from")
    run.add_argument("--eval-threshold", type=float, default=defaults.eval_threshold)
    run.add_argument("--seed", type=int, default=defaults.seed)
    recipe = parser.add_argument_group("recipe (the paper's defaults; for runs of a few thousand steps use "
                                       "--lr-encoder 5e-5 --lr-other 2e-4)")
    recipe.add_argument("--lr-encoder", type=float, default=defaults.lr_encoder)
    recipe.add_argument("--lr-other", type=float, default=defaults.lr_other, help="learning rate of the non-encoder layers")
    recipe.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    recipe.add_argument("--warmup-ratio", type=float, default=defaults.warmup_ratio)
    recipe.add_argument("--max-grad-norm", type=float, default=defaults.max_grad_norm)
    recipe.add_argument("--loss-reduction", choices=["sum", "mean"], default=defaults.loss_reduction)
    recipe.add_argument("--focal-alpha", type=float, default=defaults.focal_alpha, help="< 0: off")
    recipe.add_argument("--focal-gamma", type=float, default=defaults.focal_gamma, help="0: plain BCE")


def run_train(args: argparse.Namespace) -> None:
    names = {f.name for f in dataclasses.fields(TrainSettings)}
    settings = TrainSettings(**{k: v for k, v in vars(args).items() if k in names})
    settings.check()
    train_examples = read_examples(args.train, args.format, args.label_map)
    eval_examples = read_examples(args.eval, args.format, args.label_map) if args.eval else []
    print(train(train_examples, eval_examples, settings))
