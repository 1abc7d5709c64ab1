"""Data-parallel GLiNER training on Ray Train: ``train(train_examples, eval_examples, TrainSettings(...))``.

settings < batches < feed, recipe, run_files < worker < driver: each module imports only those before it.
"""

from .batches import BatchBuilder, choose_types, clean_examples, span_labels, token_budget_groups
from .driver import default_cpus_per_worker, train
from .feed import Prefetcher
from .recipe import parameter_groups, span_loss, train_step, warmup_cosine
from .run_files import MetricsLog, publish_model, read_metrics
from .settings import TrainSettings, record_settings
from .worker import evaluate

__all__ = [
    "BatchBuilder", "MetricsLog", "Prefetcher", "TrainSettings", "choose_types", "clean_examples",
    "default_cpus_per_worker", "evaluate", "parameter_groups", "publish_model", "read_metrics", "record_settings",
    "span_labels", "span_loss", "token_budget_groups", "train", "train_step", "warmup_cosine",
]
