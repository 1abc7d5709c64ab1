"""One Ray Train worker: build or restore the model, then take optimizer steps until ``settings.steps``.

Batches are built in a background thread (``feed.py``), ahead of the steps, pinned when they go to a GPU; a step
only moves its batches and runs forward, backward and the optimizer. Loss and counters stay on the device and are
read back (one all-reduce) only at logging steps. Rank 0 evaluates, keeps the metrics and saves the checkpoints.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Sequence

import ray.train
import ray.train.torch
import torch

from ..data import Example
from ..evaluate import score_spans
from ..predict import GLiNER
from ..precision import uses_bf16
from .batches import BatchBuilder, TrainingBatch
from .feed import Prefetcher, prefetch_batches
from .recipe import group_lr, optimizer_and_schedule, train_step
from .run_files import MetricsLog, read_checkpoint_files, write_checkpoint_files
from .settings import TrainSettings

logger = logging.getLogger(__name__)


@dataclass
class Worker:
    """What stays fixed on one worker: the run's settings, its place in the group and how it computes."""

    settings: TrainSettings
    eval_examples: list[Example]
    rank: int
    world: int
    device: torch.device
    autocast: torch.autocast  # bf16 where the settings and the hardware call for it, else off
    metrics: MetricsLog | None  # rank 0's; rank 0 also evaluates and saves the checkpoints


@dataclass
class Trainee:
    """What a worker trains, and how far it got."""

    gliner: GLiNER
    model: torch.nn.Module  # gliner.model as Ray Train prepared it (DistributedDataParallel over several workers)
    optimizer: torch.optim.Optimizer
    scheduler: Any
    step: int
    epoch: int = 0
    cut_examples: int = 0  # texts cut so far to fit the encoder beside their prompt


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """The ``TorchTrainer``'s loop: set up, evaluate the untrained model (rank 0, first attempt), take the steps."""
    settings = TrainSettings(**config["settings"])
    context = ray.train.get_context()
    rank, device = context.get_world_rank(), ray.train.torch.get_device()
    trainee, history = set_up_trainee(settings, rank)
    bf16 = uses_bf16(settings.precision, device)
    worker = Worker(settings, config["eval_examples"], rank, context.get_world_size(), device,
                    torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16),
                    MetricsLog(settings.output, history) if rank == 0 else None)
    build = BatchBuilder(trainee.gliner.prompt_tokenizer, trainee.gliner.config.max_width, settings.max_types,
                         seed=settings.seed + 1000 * rank + trainee.step)
    if worker.metrics is not None and worker.eval_examples and trainee.step == 0:
        worker.metrics.add({"step": 0, **timed_eval(trainee.gliner, worker.eval_examples, settings.eval_threshold)})
        trainee.gliner.model.train()
    batches = f"batches of {settings.max_tokens} tokens" if settings.max_tokens else f"{settings.batch_size} sentences"
    logger.info("worker %d/%d on %s with %d torch threads, %s autocast, %s x %d per step, starting at step %d", rank,
                worker.world, device, torch.get_num_threads(), "bf16" if bf16 else "no", batches, settings.accumulate,
                trainee.step)
    feed = prefetch_batches(ray.train.get_dataset_shard("train"), settings, build, pin=device.type == "cuda")
    try:
        take_steps(worker, trainee, feed)
    finally:
        feed.close()


# ---- setting up -------------------------------------------------------------------------------------------
def set_up_trainee(settings: TrainSettings, rank: int) -> tuple[Trainee, list[dict]]:
    """The model prepared for Ray Train, its optimizer and schedule at the step to start from, and the metrics
    so far (all restored from the latest checkpoint when there is one)."""
    torch.manual_seed(settings.seed)  # the same fresh head on every worker (DDP also broadcasts rank 0's)
    gliner, state, history = restore_or_build(settings, ray.train.get_checkpoint())
    freeze_unused(gliner.model)
    step = state["step"]
    torch.manual_seed(settings.seed + 1000 * rank + step)  # dropout differs per worker and per resumed attempt
    model = ray.train.torch.prepare_model(gliner.model)
    optimizer, scheduler = optimizer_and_schedule(gliner.model, settings, state)
    return Trainee(gliner, model, optimizer, scheduler, step), history


def restore_or_build(settings: TrainSettings, checkpoint) -> tuple[GLiNER, dict[str, Any], list[dict]]:
    """The GLiNER to train, the trainer state (step, optimizer, schedule) and the metrics so far: from the
    latest checkpoint when Ray Train has one (a restart or a re-run), else fresh from --init or --backbone."""
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


# ---- the steps --------------------------------------------------------------------------------------------
def take_steps(worker: Worker, trainee: Trainee, feed: Prefetcher) -> None:
    """Optimizer steps until ``settings.steps``, reported at every logging, evaluation and checkpoint step."""
    settings = worker.settings
    window = Window(worker.device)
    trainee.model.train()
    while trainee.step < settings.steps:
        batches = next_batches(worker, trainee, feed, window)
        window.add(train_step(trainee.model, batches, trainee.optimizer, trainee.scheduler, settings, worker.autocast))
        trainee.step += 1
        is_last = trainee.step == settings.steps
        is_eval = bool(worker.eval_examples) and (trainee.step % settings.eval_every == 0 or is_last)
        is_checkpoint = trainee.step % settings.checkpoint_every == 0 or is_last
        if trainee.step % settings.log_every == 0 or is_eval or is_checkpoint:
            report(worker, trainee, window, evaluate_now=is_eval, save=is_checkpoint)
            window = Window(worker.device)


def next_batches(worker: Worker, trainee: Trainee, feed: Prefetcher, window: Window) -> list[TrainingBatch]:
    """The step's ``accumulate`` batches from the feed, on the device, counted in the window."""
    batches = []
    for _ in range(worker.settings.accumulate):
        (trainee.epoch, batch), waited, built_in = feed.get()
        if batch.cut_examples and not trainee.cut_examples:
            logger.warning("worker %d: texts longer than the encoder's token limit beside their prompt are cut (the "
                           "count is in the metrics as cut_examples)", worker.rank)
        trainee.cut_examples += batch.cut_examples
        window.take(batch.size, waited, built_in)
        batches.append(batch.to(worker.device))
    return batches


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

    def take(self, sentences: int, waited: float, built_in: float) -> None:
        """Count a batch of ``sentences``, waited for and built in so many seconds."""
        self.sentences += sentences
        self.wait += waited
        self.build += built_in

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


# ---- evaluating and reporting -----------------------------------------------------------------------------
def evaluate(model: GLiNER, examples: Sequence[Example], threshold: float, batch_size: int = 16) -> dict[str, float]:
    """Exact-match P/R/F1 of ``model`` on ``examples``, prompting with every type they use."""
    labels = sorted({label for ex in examples for _, _, label in ex.spans})
    if not labels:
        raise ValueError("the evaluation set holds no entity spans, so it has no types to prompt with")
    predicted = model.predict_words([ex.words for ex in examples], labels, threshold=threshold, batch_size=batch_size)
    scores, _ = score_spans([ex.spans for ex in examples], predicted)
    return {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1}


def timed_eval(gliner: GLiNER, examples: Sequence[Example], threshold: float) -> dict[str, float]:
    """``evaluate``'s scores and the seconds it took."""
    start = time.perf_counter()
    scores = evaluate(gliner, examples, threshold)
    return {**scores, "eval_seconds": time.perf_counter() - start}


def report(worker: Worker, trainee: Trainee, window: Window, evaluate_now: bool, save: bool) -> None:
    """``ray.train.report`` of the window's record on every worker (it is a barrier); rank 0 evaluates when
    ``evaluate_now``, adds the record to the metrics and, when ``save``, reports a checkpoint with it."""
    record = {"step": trainee.step, "epoch": trainee.epoch, **window.read(worker.world),
              "lr_encoder": group_lr(trainee.optimizer, "encoder"), "lr_other": group_lr(trainee.optimizer, "other"),
              "cut_examples": trainee.cut_examples}
    metrics = worker.metrics
    if metrics is None:
        ray.train.report(record)
        return
    if evaluate_now:
        record.update(timed_eval(trainee.gliner, worker.eval_examples, worker.settings.eval_threshold))
        trainee.model.train()
    metrics.history.append(record)
    logger.info("step %d: %s", trainee.step, ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "step"))
    if not save:
        ray.train.report(record)
        metrics.write()
        return
    with tempfile.TemporaryDirectory() as path:
        state = {"step": trainee.step, "optimizer": trainee.optimizer.state_dict(),
                 "scheduler": trainee.scheduler.state_dict()}
        write_checkpoint_files(path, trainee.gliner, state, metrics.history)
        ray.train.report(record, checkpoint=ray.train.Checkpoint.from_directory(path),
                         checkpoint_dir_name=f"checkpoint_{trainee.step:08d}")
    metrics.write()  # after the checkpoint is stored, so the metrics never run ahead of what a resume restores
