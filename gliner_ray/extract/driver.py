"""The driver of an extraction: checks, resume, one Ray Data stream, each shard published once all its chunks are
written, ``_SUCCESS`` last::

    shards ──read_chunks (CPU)──▶ chunks of planned documents (chunks.py)
           ──ScoreChunks (actor pool: the model, on its GPU when it has one)──▶ one summary row per chunk ──▶ driver

On GPU clusters the CPU stage runs as Ray tasks beside the GPU actors, so the GPUs never wait on tokenization. On
CPU-only clusters it asks for the same resources as the model actors and Ray fuses it into them: each actor is then
a complete worker (read, tokenize, score, write); work is spread shard by shard, so give at least as many shards
as actors.
"""

from __future__ import annotations

import errno
import json
import logging
import time
from collections import Counter, defaultdict
from dataclasses import asdict
from typing import Any

from .. import storage
from ..cluster import Interrupted, connect
from ..shards import Shard, list_shards
from .chunks import read_chunks
from .early_stop import Limits, check_error_rate, check_first_records
from .progress import Progress, duration
from .scoring import ScoreChunks
from .settings import Scale, Settings, check_arguments, claim, prompt_tokenizer
from .store import (COUNTS, OUTPUT_FOLDERS, Store, clear_partial_outputs, delete_results, finished_shards, publish,
                    shard_key, write_empty_tables)

logger = logging.getLogger(__name__)

# Ray Data gathers a stage's output rows into blocks of up to 128 MiB by default: a worker would then plan a
# whole shard before the model saw its first chunk. Blocks about one chunk large keep the stream streaming.
BLOCK_BYTES = 1 << 20
# glibc serves allocations from 128 KiB up by mmap by default and raises that threshold after such frees; later
# tensors then come from the heap, and in a long-lived Ray worker the heap fragmented: on 2 CPUs with a MiniLM
# GLiNER, actor memory grew from 605 to ~1000 MiB over 4 to 120 chunks. A fixed threshold stops the rise. At
# 128 KiB, though, every activation was a fresh mmap, zeroed page by page and returned at once: 6x the page faults,
# 6-11x the system time, and the one-CPU actors' forward ran 0.4x of in-process predict (MiniLM: 0.71x the CPU time;
# near-free model: 0.55x). At 32 MiB only the largest tensors (attention scores) are mapped, fewer page faults
# than glibc's default, and the threshold still never rises.
WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20)}
# With neither --batch-size nor --max-tokens: a GPU's forward pass takes up to this many padded sub-tokens (rows of
# like length batched together, so batches are full and memory is bounded whatever the prompt's length); on a CPU,
# 8 rows a batch.
GPU_MAX_TOKENS = 1 << 14
CPU_BATCH_SIZE = 8


def extract(
    input_uri: str,
    output_uri: str,
    settings: Settings,
    scale: Scale = Scale(),
    input_format: str | None = None,
    overwrite: bool = False,
    address: str | None = None,
    worker_env: dict[str, str] | None = None,
    limits: Limits = Limits(),
) -> dict[str, Any]:
    """Extract the mentions of every document under ``input_uri`` into ``output_uri``; returns ``_SUCCESS``'s
    content. Everything that can be checked without Ray is checked first, the first records of the input included
    (``limits``: a run whose records all fail for one reason stops before it writes anything)."""
    started = time.time()
    settings = settings.cleaned()
    check_arguments(settings, scale)
    limits.check()
    label_passes = None  # with --labels-field, each document's label set has its own passes
    if settings.labels:
        label_passes = len(prompt_tokenizer(settings.model)[0].label_passes(settings.labels, settings.relations))
    if label_passes and label_passes > 1:
        logger.info("%d entity types do not fit one prompt: each window is scored in %d label passes",
                    len(settings.labels), label_passes)
    store = Store(output_uri)
    shards = list_shards(input_uri, input_format, storage.display(store.fs, store.root), settings.split_bytes)
    store.check_reachable()
    check_first_records(shards, settings, limits)
    if overwrite:
        delete_results(store)
    claim(store, settings)
    done = finished_shards(store, shards)
    pending = [shard for shard in shards if shard_key(shard) not in done]
    logger.info("%d input shards: %d already done, %d to process", len(shards), len(done), len(pending))
    if not pending and store.exists("_SUCCESS") and store.read_json("_SUCCESS").get("shards") == len(shards):
        logger.info("nothing to do: %s is a finished run of these %d shards (its _SUCCESS is kept)", store.uri, len(shards))
        return store.read_json("_SUCCESS")
    statistics = {}
    if pending:
        store.delete("_SUCCESS")
        clear_partial_outputs(store, {shard_key(s) for s in pending})
        earlier = sum(m["documents"] for m in done.values()), sum(m["failed"] for m in done.values())
        try:
            published, statistics = _run(pending, store, settings, scale, address, worker_env, limits, earlier)
        except KeyboardInterrupt:
            kept = len(finished_shards(store, shards))
            raise Interrupted(f"interrupted: {kept} of {len(shards)} shards kept in {store.uri}; run the same "
                              "command again to continue") from None
        done.update(published)
    success = _success(settings, shards, pending, done, statistics, time.time() - started)
    check_error_rate(success["failed"], success["documents"], limits, store.uri)  # a resumed run's totals too
    if label_passes is not None:
        success["label_passes"] = label_passes
    folders = OUTPUT_FOLDERS if settings.relations else ("mentions", "errors")
    write_empty_tables(store, folders, settings.metadata())
    store.write_json("_SUCCESS", success)
    logger.debug("_SUCCESS: %s", json.dumps(success))
    logger.info("%s", _final_line(success, store.uri, folders))
    return success


def _final_line(success: dict[str, Any], uri: str, folders: tuple[str, ...]) -> str:
    """'wrote 7,597 mentions of 40 documents to OUT (mentions/, errors/, _SUCCESS) in 1m12s', and how many
    documents failed (a whole input in the wrong --format fails every one)."""
    written = f"{success['mentions']:,} mentions" + (f" and {success['relations']:,} relations" if "relations" in folders else "")
    line = (f"wrote {written} of {success['documents']:,} documents to {uri} ({', '.join(f + '/' for f in folders)}, "
            f"_SUCCESS) in {duration(success['elapsed_seconds'])}")
    if success["failed"]:
        line += (f"; {success['failed']:,} of the {success['documents']:,} documents failed (see errors/"
                 + (": all did; is --format right?)" if success["failed"] == success["documents"] else ")"))
    return line


def _success(settings: Settings, shards: list[Shard], pending: list[Shard], done: dict[str, dict],
             statistics: dict[str, Any], elapsed: float) -> dict[str, Any]:
    """The content of ``_SUCCESS``: the output's totals, what this run processed and how fast, and the settings."""
    totals = {key: sum(marker.get(key, 0) for marker in done.values()) for key in COUNTS}
    processed = sum(done[shard_key(s)]["documents"] for s in pending)
    success = {
        **totals, "shards": len(shards), "files": len({s.uri for s in shards}), "shards_processed": len(pending),
        "documents_processed": processed,
        "damaged_shards": sorted(marker["source"] for marker in done.values() if marker.get("damaged")),
        "model": settings.model, "labels": list(settings.labels), "threshold": settings.threshold,
        **({"labels_field": settings.labels_field} if settings.labels_field is not None else {}),
        "flat_ner": settings.flat_ner, "multi_label": settings.multi_label, "relation_types": list(settings.relations),
        "elapsed_seconds": round(elapsed, 3), "documents_per_second": round(processed / elapsed, 3),
        "precision": settings.precision, **statistics,
    }
    if statistics:
        success["words_per_second"] = round(statistics["words"] / elapsed, 1)
    return success


def _run(
    shards: list[Shard], store: Store, settings: Settings, scale: Scale, address: str | None,
    worker_env: dict[str, str] | None, limits: Limits, earlier: tuple[int, int],
) -> tuple[dict[str, dict], dict[str, Any]]:
    """Stream the shards through Ray Data, publishing each shard as soon as all its chunks are written; returns
    the markers of the shards published and the run's statistics (words, time per stage, model_busy). Stops when
    the records failed, ``earlier``'s (records, failed) of an earlier run's shards included, pass ``limits``."""
    import ray

    connect(address, {"env_vars": worker_env} if worker_env else None)
    dataset = _dataset(shards, store, settings, scale, ray.cluster_resources())
    shard_of = {shard_key(shard): shard for shard in shards}
    reports: dict[str, dict[int, dict]] = defaultdict(dict)  # shard -> chunk -> summary
    chunk_counts: dict[str, int] = {}  # known once a shard's last chunk has reported
    published: dict[str, dict] = {}
    pieces_of = Counter(shard.uri for shard in shards)  # a file read in pieces counts its size once
    input_bytes = {key: shard.size / pieces_of[shard.uri] for key, shard in shard_of.items()}
    progress = Progress(sum(input_bytes.values()))
    progress.records, progress.failed = earlier
    try:
        for summary in dataset.iter_rows():
            key = summary["shard"]
            if key in published:
                continue  # a retried task reporting a chunk again
            progress.add(summary)
            check_error_rate(progress.failed, progress.records, limits, store.uri)
            reports[key][summary["chunk"]] = summary
            if summary["last"]:
                chunk_counts[key] = summary["chunk"] + 1
            if len(reports[key]) == chunk_counts.get(key):
                marker = published[key] = publish(store, shard_of[key], key, list(reports.pop(key).values()))
                logger.info("shard %d/%d done: %s", len(published), len(shards), progress.shard_done(marker, input_bytes[key]))
    except Exception as error:
        if (full := storage.disk_full(error)) is None:
            raise
        raise OSError(
            errno.ENOSPC,
            f"the disk of {store.uri} is full ({full}): free space or choose another --output, then re-run the same "
            f"command to resume; the {len(published)} shards finished are kept, no shard is half-published",
        ) from None
    store.delete("_tmp")  # only leftovers of retried tasks can remain there
    missing = [shard.uri for key, shard in shard_of.items() if key not in published]
    if missing:
        raise RuntimeError(f"the pipeline ended without finishing {len(missing)} shards, e.g. {missing[0]}; re-run to resume")
    return published, progress.statistics()


def _dataset(shards: list[Shard], store: Store, settings: Settings, scale: Scale, resources: dict[str, float]):
    """The Ray Data stream of summaries, its scale set from the flags or else from the cluster's resources."""
    import ray

    num_gpus, min_actors, max_actors, batch_size, max_tokens = _actor_pool(scale, resources)
    fused = num_gpus == 0  # the CPU stage asks for what the actors ask for, so Ray fuses it into them
    logger.info(
        "%d-%d model actors (%g GPU, %d CPU each), batches of %s rows and %s sub-tokens at most, reading and "
        "tokenizing %s", min_actors, max_actors, num_gpus, scale.cpus_per_actor, batch_size or "any", max_tokens or "any",
        "inside the actors" if fused else f"in {scale.cpu_workers or 'as many as fit'} CPU tasks",
    )
    items = [{**asdict(shard), "key": shard_key(shard)} for shard in shards]
    dataset = ray.data.from_items(items, override_num_blocks=len(items))
    dataset.context.target_max_block_size = BLOCK_BYTES  # this dataset's own copy of the context
    return dataset.map_batches(
        read_chunks,
        batch_size=1,
        batch_format="pyarrow",
        fn_kwargs={"settings": settings, "chunk_size": scale.chunk_size},
        num_cpus=scale.cpus_per_actor if fused else 1,
        compute=ray.data.TaskPoolStrategy(size=scale.cpu_workers) if scale.cpu_workers else None,
        runtime_env={"env_vars": WORKER_ENV},
    ).map_batches(
        ScoreChunks,
        batch_size=1,
        batch_format="pyarrow",
        fn_constructor_kwargs={
            "settings": settings, "output_uri": store.uri, "batch_size": batch_size, "threads": scale.cpus_per_actor,
            "max_tokens": max_tokens,
        },
        # A fused task is a whole shard: one at a time per actor, so no shard waits behind another on a busy actor.
        # Beside GPU actors, two calls per actor run at once (Ray's own default runs one UDF at a time): one decodes
        # and writes while the other holds the model (ScoreChunks.model_lock).
        compute=ray.data.ActorPoolStrategy(
            min_size=min_actors, max_size=max_actors, max_tasks_in_flight_per_actor=1 if fused else None,
            max_concurrent_calls_per_actor=1 if fused else 2, enable_true_multi_threading=not fused,
        ),
        num_gpus=num_gpus,
        num_cpus=scale.cpus_per_actor,
        runtime_env={"env_vars": WORKER_ENV},
    )


def _actor_pool(scale: Scale, resources: dict[str, float]) -> tuple[float, int, int, int | None, int | None]:
    """GPUs per model actor, the fewest and most actors, and rows and sub-tokens per batch: the flags', else
    from the cluster."""
    num_gpus = scale.num_gpus_per_actor
    if num_gpus is None:
        num_gpus = 1.0 if resources.get("GPU", 0) > 0 else 0.0
    if num_gpus == 0 and scale.cpu_workers is not None:
        raise ValueError("--cpu-workers sizes the CPU stage beside GPU actors; on CPU-only clusters that stage runs inside the model actors: leave it out")
    if scale.actors is not None:
        min_actors, max_actors = scale.actors
    else:
        per_actor = ("GPU", num_gpus) if num_gpus > 0 else ("CPU", scale.cpus_per_actor)
        min_actors = max_actors = max(1, int(resources.get(per_actor[0], 0) // per_actor[1]))
    batch_size, max_tokens = scale.batch_size, scale.max_tokens
    if batch_size is None and max_tokens is None:
        batch_size, max_tokens = (None, GPU_MAX_TOKENS) if num_gpus > 0 else (CPU_BATCH_SIZE, None)
    return num_gpus, min_actors, max_actors, batch_size, max_tokens
