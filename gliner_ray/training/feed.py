"""A worker's input: the examples table the driver hands Ray Data, read back on each worker epoch after epoch,
and built into training batches ahead of the steps in a background thread."""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Generic, Iterator, Sequence, TypeVar

import pyarrow as pa

from ..data import Example
from .batches import BatchBuilder, TrainingBatch, token_budget_groups
from .settings import TrainSettings

POOL_ROWS = 2048  # --max-tokens: examples read, sorted by length and cut into batches at a time
PREFETCH_BATCHES = 8  # batches built ahead of the step that takes them
EXAMPLE_SCHEMA = pa.schema([
    ("words", pa.list_(pa.string())),
    ("spans", pa.list_(pa.struct([("start", pa.int64()), ("end", pa.int64()), ("label", pa.string())]))),
])


def rows_to_examples(rows: pa.Table) -> list[Example]:
    """The examples of a block of ``EXAMPLE_SCHEMA`` rows."""
    return [Example(r["words"], [(s["start"], s["end"], s["label"]) for s in r["spans"]]) for r in rows.to_pylist()]


def examples_to_table(examples: Sequence[Example]) -> pa.Table:
    """The examples as an ``EXAMPLE_SCHEMA`` table, which Ray Data splits over the workers."""
    return pa.Table.from_pylist(
        [{"words": ex.words, "spans": [{"start": s, "end": e, "label": t} for s, e, t in ex.spans]} for ex in examples],
        schema=EXAMPLE_SCHEMA,
    )


def training_batches(shard, settings: TrainSettings, build: BatchBuilder) -> Iterator[tuple[int, TrainingBatch]]:
    """(epoch, batch) pairs from the worker's shard, epoch after epoch, without end: ``batch_size`` sentences
    each, or with ``max_tokens`` batches of similar length cut from pools of ``POOL_ROWS`` examples."""
    epoch = 0
    while True:
        epoch += 1
        produced = 0
        rows_per_read = settings.batch_size if settings.max_tokens is None else POOL_ROWS
        for rows in shard.iter_batches(batch_size=rows_per_read, batch_format="pyarrow",
                                       drop_last=settings.max_tokens is None, local_shuffle_buffer_size=10_000,
                                       local_shuffle_seed=settings.seed + epoch):
            examples = rows_to_examples(rows)
            if settings.max_tokens is None:
                produced += 1
                yield epoch, build(examples)
                continue
            word_ids = build.tokenize(examples)
            lengths = [sum(map(len, words)) for words in word_ids]
            for group in token_budget_groups(lengths, settings.max_tokens, build.rng):
                produced += 1
                yield epoch, build([examples[i] for i in group], [word_ids[i] for i in group])
        if not produced:
            raise ValueError(f"this worker's share of the training data holds less than one batch of "
                             f"{settings.batch_size}: lower --batch-size or --workers, or add data")


def prefetch_batches(shard, settings: TrainSettings, build: BatchBuilder, pin: bool) -> "Prefetcher":
    """``training_batches`` of ``shard``, ``PREFETCH_BATCHES`` ahead in a background thread; with ``pin`` their
    tensors are page-locked there, so the copy to the GPU is asynchronous."""
    prepare = (lambda item: (item[0], item[1].pin_memory())) if pin else None
    return Prefetcher(training_batches(shard, settings, build), depth=PREFETCH_BATCHES, prepare=prepare)


Item = TypeVar("Item")


class Prefetcher(Generic[Item]):
    """Runs an iterator in a background thread, ``depth`` items ahead, so the consumer (a training step) waits
    on it only when the producer (batch building) is slower. ``prepare`` runs in the thread too (pinning memory).
    An error in the producer is raised by ``get``; ``close`` stops the thread."""

    _END = object()

    def __init__(self, items: Iterator[Item], depth: int = 4, prepare: Callable[[Item], Item] | None = None):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(items, prepare), daemon=True, name="batch-feed")
        self._thread.start()

    def _produce(self, items: Iterator[Item], prepare: Callable[[Item], Item] | None) -> None:
        try:
            while True:
                start = time.perf_counter()
                item = next(items, self._END)
                if item is self._END:
                    break
                if prepare is not None:
                    item = prepare(item)
                if not self._put((item, time.perf_counter() - start)):
                    return
            self._put(self._END)
        except BaseException as error:  # handed to the consumer, which raises it
            self._put(error)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> tuple[Item, float, float]:
        """The next item, the seconds spent waiting for it, and the seconds the thread took to produce it (its
        cost: how fast the producer could go alone). StopIteration when the iterator is exhausted."""
        start = time.perf_counter()
        entry = self._queue.get()
        waited = time.perf_counter() - start
        if entry is self._END:
            self._queue.put(entry)
            raise StopIteration
        if isinstance(entry, BaseException):
            raise entry
        item, produced_in = entry
        return item, waited, produced_in

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
