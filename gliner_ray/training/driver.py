"""``train()``: clean the examples, hand them to a Ray Train ``TorchTrainer`` (``worker.py`` runs on each
worker), and when it ends publish the last checkpoint's model to ``OUTPUT/final/`` and plot ``OUTPUT/training.png``.
A worker that dies makes Ray Train restart the group from the latest checkpoint under ``OUTPUT/run/``; re-running
the same command after the job died does the same.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import sys
from typing import Sequence

import ray
import ray.data
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from .. import storage
from ..cluster import Interrupted, connect
from ..checkpoint import read_config, resolve_checkpoint_dir
from ..data import Example
from .batches import clean_examples
from .feed import examples_to_table
from .run_files import FINAL_DIR, METRICS_FILE, PLOT_FILE, plot_metrics, publish_model, read_metrics
from .settings import TrainSettings, last_checkpoint_step, record_settings
from .worker import train_loop_per_worker

logger = logging.getLogger(__name__)


def train(train_examples: Sequence[Example], eval_examples: Sequence[Example], settings: TrainSettings,
          address: str | None = None) -> str:
    """Train on Ray Train (the cluster at ``address``: ``cluster.choose_address``) and return the URI of the final
    GLiNER checkpoint (``OUTPUT/final``).

    Re-running with the same ``settings.output`` resumes from its latest checkpoint; it may change the number of
    steps and how the run is spread and logged, not the recipe (``record_settings``).
    """
    settings.check()
    settings = dataclasses.replace(settings, output=storage.absolute(settings.output))  # workers have their own cwd
    examples, evaluation = usable_examples(train_examples, eval_examples, settings)
    connect(address)
    if settings.cpus_per_worker is None:
        settings = dataclasses.replace(settings, cpus_per_worker=default_cpus_per_worker(settings.workers, settings.gpu))
    record_settings(settings)
    try:
        result = make_trainer(settings, examples, evaluation).fit()
    except KeyboardInterrupt:
        step = last_checkpoint_step(settings)
        kept = f"the last checkpoint is step {step}" if step is not None else "no checkpoint was saved yet"
        raise Interrupted(f"interrupted: {kept} (in {settings.run_dir}); run the same command again to continue") from None
    if result.checkpoint is None:
        raise RuntimeError(f"training under {settings.run_dir} ended without a checkpoint")
    final = storage.join(settings.output, FINAL_DIR)
    publish_model(result.checkpoint, final)
    plot_metrics(read_metrics(settings.output), storage.join(settings.output, PLOT_FILE))
    logger.info("final model: %s; metrics: %s", final, storage.join(settings.output, METRICS_FILE))
    return final


def usable_examples(train_examples: Sequence[Example], eval_examples: Sequence[Example],
                    settings: TrainSettings) -> tuple[list[Example], list[Example]]:
    """The training examples cleaned for the model and shuffled, and the evaluation examples cleaned; too few
    training examples to fill one batch on each worker is an error."""
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
        logger.info("training on %d examples (%d workers x %d batches of up to %d tokens per step, %d steps)",
                    len(examples), settings.workers, settings.accumulate, settings.max_tokens, settings.steps)
    else:
        logger.info("training on %d examples (%d workers x %d batches of %d per step, %d steps = %.1f epochs)",
                    len(examples), settings.workers, settings.accumulate, settings.batch_size, settings.steps,
                    settings.steps * settings.workers * settings.accumulate * settings.batch_size / len(examples))
    return examples, evaluation


def model_limits(settings: TrainSettings) -> tuple[int, int]:
    """(max_len, max_width) of the model being trained: the checkpoint's for --init, else the flags'."""
    if settings.init is None:
        check_backbone(settings.backbone)
        return settings.max_len, settings.max_width
    config = read_config(resolve_checkpoint_dir(settings.init))
    return config.max_len, config.max_width


def check_backbone(backbone: str) -> None:
    """Refuse, here and in seconds, a --backbone that the workers could not load (a hub id offline and not in the
    cache, a folder without an encoder), rather than after Ray Train's attempts."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(backbone)
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"--backbone {backbone} cannot be loaded ({reason}): pass a local encoder directory, or fetch "
                         f"it while online with `hf download {backbone}`") from None


def make_trainer(settings: TrainSettings, examples: Sequence[Example], evaluation: Sequence[Example]) -> TorchTrainer:
    """The ``TorchTrainer`` of the run: its workers, the examples as a Ray dataset, and checkpoints, failures and
    the S3 endpoint of every node set from ``settings``."""
    storage_fs, storage_path = storage.resolve(settings.output)
    return TorchTrainer(
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


def default_cpus_per_worker(workers: int, gpu: bool) -> int:
    """CPUs per worker when --cpus-per-worker is not given: all of a node's, shared by the workers it holds.
    GPU workers take their node's CPUs per GPU; CPU workers spread evenly over the nodes with CPUs, each node's
    share the smallest node's CPUs divided by its workers. (Starts Ray if it is not running yet.)"""
    if not ray.is_initialized():
        connect()
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
    logger.info("each worker takes %d CPU(s) (%s; --cpus-per-worker overrides)", cpus, how)
    return cpus
