"""The driver of the kg job: extracted mentions (and relations) to a knowledge graph, Ray distributing and DuckDB
computing. Read tasks link mentions to entities; hash shuffles (by entity, document and pair; typed relations by head,
then tail) feed the reduce tasks; only counts reach the driver, which checks them before it touches the output; then
write tasks put one part per partition and table, and ``_SUCCESS`` comes last. ``schema`` says what the tables hold."""

from __future__ import annotations

import json
import logging
import math
import time

import pyarrow.fs as pafs
import ray

from .. import storage
from ..cluster import connect
from ..checks import check_at_least
from .files import (Input, check_first_file, check_output, clear_output, find_mention_files, find_relation_files,
                    group_files)
from .neo4j import write_neo4j_headers
from .resolve import Resolution
from .schema import RELATION_COLUMNS, add_counts, validate_counts
from .tasks import (apply_partition, keep_heads, map_corpus, read_and_link, read_relations, reduce_documents,
                    reduce_entities, reduce_pairs, reduce_typed_relations, resolve_partition, write_partition)

logger = logging.getLogger(__name__)

BYTES_PER_PARTITION = 8 * 1024**2  # of input Parquet (about 500k mentions): one read task and one partition each
MAX_PARTITIONS = 200


def build_graph(
    mentions: str,
    output: str,
    *,
    min_score: float = 0.0,
    min_count: int = 1,
    window: int | None = None,
    neo4j: bool = False,
    overwrite: bool = False,
    allow_incomplete: bool = False,
    partitions: int | None = None,
    relations: str | None = None,
    address: str | None = None,
    resolution: Resolution | str = "corpus",
) -> dict:
    """Build the entity, relation and mention-entity tables from the mentions at ``mentions`` into ``output``, and
    the typed relation table from the relation files ``relations`` (default: those beside the mentions, if any),
    on the Ray cluster at ``address`` (``cluster.choose_address``); returns the counts also written to
    ``output/_SUCCESS``. ``resolution``: a ``Resolution``, or its mode."""
    check_at_least(min_count, "--min-count")
    if window is not None and window < 0:
        raise ValueError(f"--window must be 'doc' or a number of characters >= 0, got {window}")
    check_at_least(partitions, "--partitions")
    resolution = Resolution(resolution) if isinstance(resolution, str) else resolution
    mention_input, relation_input, output_fs, output_root = check_files(mentions, relations, output, overwrite,
                                                                        allow_incomplete)
    started = time.perf_counter()
    connect(address)
    partitions = partitions or plan_partitions([info.size or 0 for info in mention_input.files],
                                               int(ray.cluster_resources().get("CPU", 1)))
    key = "doc_id" if resolution.mode != "none" else None
    read, read_typed, read_counts = read_phase(mention_input, relation_input, min_score, partitions, started, key)
    resolved = {}
    if key:
        read, read_typed, resolved = resolve_phase(read, read_typed, resolution, partitions, started)
    tables, counts = reduce_phase(read, read_typed, min_count, window, partitions, started)
    summary = {
        "mentions": mentions, "files": len(mention_input.files), "min_score": min_score, "min_count": min_count,
        "window": "doc" if window is None else window, "resolve": resolution.mode,
        **count_summary(read_counts, counts, relation_input), **resolved,
    }
    write_phase(output_fs, output_root, tables, neo4j, relation_input is not None, summary)
    logger.info("wrote %s in %.1f s: %s", output, time.perf_counter() - started, summary)
    return summary


def check_files(mentions: str, relations: str | None, output: str, overwrite: bool,
                allow_incomplete: bool) -> tuple[Input, Input | None, pafs.FileSystem, str]:
    """The mention and relation inputs (None: no relation input) and the output's filesystem and root, after
    refusing an output that overlaps either input and inputs without the columns of the extraction output."""
    mention_input = find_mention_files(mentions, allow_incomplete)
    output_fs, output_root = check_output(output, overwrite, mention_input.fs, mention_input.root)
    check_first_file(mention_input)
    relation_input = find_relation_files(mentions, relations)
    if relation_input:
        check_output(output, overwrite, relation_input.fs, relation_input.root)
        check_first_file(relation_input, "--relations", RELATION_COLUMNS)
    return mention_input, relation_input, output_fs, output_root


def plan_partitions(sizes: list[int], cpus: int) -> int:
    """Shuffle partitions: one per ``BYTES_PER_PARTITION`` of input, at least one per CPU once each gets a
    megabyte, at most ``MAX_PARTITIONS``."""
    total = sum(sizes)
    return max(1, min(MAX_PARTITIONS, max(math.ceil(total / BYTES_PER_PARTITION), min(cpus, total // 1024**2))))


def outputs(tasks: list, index: int) -> list:
    """Output ``index`` of each of ``tasks``: their counts (0), or their shares of one partition."""
    return [task[index] for task in tasks]


# --- read: one task per group of files, linking mentions to entities and splitting them by entity -------------


def read_phase(mention_input: Input, relation_input: Input | None, min_score: float, partitions: int,
               started: float, key: str | None = None) -> tuple[list, list, dict]:
    """Start the read tasks of the mentions (and of the relations beside them), and refuse what their counts show
    wrong: the mention read tasks, the relation read tasks (none without relation input), and the counts. ``key``:
    split by that column (``doc_id``, to resolve) instead of by entity (mentions) and head entity (relations)."""
    read = start_reads(read_and_link, mention_input, min_score, partitions, key or "entity_id")
    read_typed = (start_reads(read_relations, relation_input, min_score, partitions, key or "source_id")
                  if relation_input else [])
    counts = {"mentions": validate_counts(ray.get(outputs(read, 0)), mention_input.uri, min_score)}
    if relation_input:
        counts["relations"] = add_counts(ray.get(outputs(read_typed, 0)), relation_input.uri, "--relations",
                                         RELATION_COLUMNS)
        logger.info("%d relation rows in %d files, %d with score >= %s", counts["relations"]["rows"],
                    len(relation_input.files), counts["relations"]["at_min_score"], min_score)
    logger.info("%d mention rows in %d files (%d read tasks), %d with score >= %s; %d partitions; %.1f s",
                counts["mentions"]["rows"], len(mention_input.files), len(read), counts["mentions"]["at_min_score"],
                min_score, partitions, time.perf_counter() - started)
    return read, read_typed, counts


def start_reads(task: ray.remote_function.RemoteFunction, found: Input, min_score: float, partitions: int,
                key: str) -> list:
    """One ``task`` per group of ``found``'s files, each returning its counts, then its rows split by ``key``."""
    return [task.options(num_returns=1 + partitions).remote(group, found.fs, found.uri, min_score, partitions, key)
            for group in group_files(found.files, partitions)]


# --- resolve: documents by document, one corpus mapping, then mentions by entity and relations by head ---------


def resolve_phase(read: list, read_typed: list, resolution: Resolution, partitions: int,
                  started: float) -> tuple[list, list, dict]:
    """Resolve the document-split rows of ``read`` (and ``read_typed``): within each document partition, then one
    mapping over the corpus, applied per partition; returns the rows split as ``reduce_phase`` expects them (by
    entity and head entity) and the resolution's counts. Empties ``read`` and ``read_typed``."""
    by_document = [resolve_partition.options(num_returns=5).remote(
        resolution.rules, len(read), *outputs(read, 1 + i), *outputs(read_typed, 1 + i)) for i in range(partitions)]
    mapping = map_corpus.options(num_returns=2).remote(
        resolution, partitions, *outputs(by_document, 1), *outputs(by_document, 2))
    typed = bool(read_typed)
    applied = [apply_partition.options(num_returns=1 + partitions * (2 if typed else 1)).remote(
        partitions, mapping[1], task[3], task[4]) for task in by_document]
    read.clear()
    read_typed.clear()
    counts = {"resolved_within_documents": sum(found["within_document"] for found in ray.get(outputs(by_document, 0))),
              **{f"resolved_{rule}": n for rule, n in ray.get(mapping[0]).items() if rule != "names"}}
    logger.info("resolution (%s): %s; %.1f s", resolution.mode, counts, time.perf_counter() - started)
    return ([task[:1 + partitions] for task in applied],
            [[None, *task[1 + partitions:]] for task in applied] if typed else [], counts)


# --- reduce: entities by entity, then co-occurrences by document and by pair, typed relations by head and tail ---


def reduce_phase(read: list, read_typed: list, min_count: int, window: int | None, partitions: int,
                 started: float) -> tuple[list[tuple], dict]:
    """The tables of every partition, ``(entities, mention_entities, relations, typed_relations or None)``, and
    their counts. Empties ``read`` and ``read_typed`` once the reducers have them, freeing the read tasks' tables."""
    by_entity, counts = reduce_by_entity(read, min_count, partitions, started)
    typed = reduce_typed(read_typed, by_entity, partitions) if read_typed else None
    by_pair = reduce_cooccurrences(by_entity, window, partitions)
    entity_tables = [task[1:4] for task in by_entity]  # the document splits stay only with their tasks
    del by_entity
    counts["relations"] = sum(ray.get(outputs(by_pair, 0)))
    logger.info("%d relations (co-occurrence scope: %s); %.1f s", counts["relations"],
                "document" if window is None else f"{window} characters", time.perf_counter() - started)
    typed_tables = [None] * partitions
    if typed:
        typed_stats = ray.get(outputs(typed, 0))
        counts["relations_kept"] = sum(found["relations_kept"] for found in typed_stats)
        counts["typed_relations"] = sum(found["typed_relations"] for found in typed_stats)
        typed_tables = outputs(typed, 1)
        logger.info("%d typed relations from %d relation rows; %.1f s", counts["typed_relations"],
                    counts["relations_kept"], time.perf_counter() - started)
    return [(*entity_tables[i], by_pair[i][1], typed_tables[i]) for i in range(partitions)], counts


def reduce_by_entity(read: list, min_count: int, partitions: int, started: float) -> tuple[list, dict]:
    """The entity reducers (stats, entities, mentions, then mentions split by document), and their counts; refuses
    a ``min_count`` that keeps no entity. Empties ``read``: every reducer has its input."""
    by_entity = [reduce_entities.options(num_returns=4 + partitions).remote(
        min_count, partitions, *outputs(read, 1 + i)) for i in range(partitions)]
    entity_stats = ray.get(outputs(by_entity, 0))
    read.clear()  # every reducer has its input: free the read tasks' tables
    counts = {"entities": sum(found["kept_entities"] for found in entity_stats),
              "kept_mentions": sum(found["kept_mentions"] for found in entity_stats)}
    if counts["entities"] == 0:
        raise ValueError(f"no entity has --min-count {min_count} mentions (the most mentioned has "
                         f"{max(found['most_mentions'] for found in entity_stats)}): lower --min-count")
    logger.info("%d entities (%d kept with >= %d mentions); %.1f s", sum(found["entities"] for found in entity_stats),
                counts["entities"], min_count, time.perf_counter() - started)
    return by_entity, counts


def reduce_typed(read_typed: list, by_entity: list, partitions: int) -> list:
    """The typed relation reducers: heads by entity partition, kept if their entity is; then tails likewise, and
    summed. Empties ``read_typed``."""
    heads = [keep_heads.options(num_returns=1 + partitions).remote(
        partitions, by_entity[i][1], *outputs(read_typed, 1 + i)) for i in range(partitions)]
    read_typed.clear()
    return [reduce_typed_relations.options(num_returns=2).remote(by_entity[i][1], *outputs(heads, 1 + i))
            for i in range(partitions)]


def reduce_cooccurrences(by_entity: list, window: int | None, partitions: int) -> list:
    """The co-occurrence reducers: pairs within the documents of each document partition, then summed per pair."""
    by_document = [reduce_documents.options(num_returns=1 + partitions).remote(
        window, partitions, *outputs(by_entity, 4 + i)) for i in range(partitions)]
    return [reduce_pairs.options(num_returns=2).remote(*outputs(by_document, 1 + i)) for i in range(partitions)]


# --- write: the previous graph goes, then one task per partition, and _SUCCESS last ---------------------------


def count_summary(read_counts: dict, counts: dict, relation_input: Input | None) -> dict:
    """The counts of ``_SUCCESS``. They add up: of the mentions read, those below --min-score (or NaN), those of
    entities with fewer than --min-count mentions and those kept (the rows of mention_entities/, the sum of
    entities.mentions); of the relations read, those below --min-score, those whose head or tail is not a kept
    entity and those kept (the sum of typed_relations.weight)."""
    mentions = read_counts["mentions"]
    summary = {
        "mentions_read": mentions["rows"],
        "mentions_below_min_score": mentions["rows"] - mentions["at_min_score"],
        "mentions_of_rare_entities": mentions["at_min_score"] - counts["kept_mentions"],
        "mentions_kept": counts["kept_mentions"],
        "entities": counts["entities"], "relations": counts["relations"],
    }
    if relation_input:
        relations = read_counts["relations"]
        summary.update({
            "relations_input": relation_input.uri, "relations_read": relations["rows"],
            "relations_below_min_score": relations["rows"] - relations["at_min_score"],
            "relations_of_dropped_entities": relations["at_min_score"] - counts["relations_kept"],
            "relations_kept": counts["relations_kept"], "typed_relations": counts["typed_relations"],
        })
    return summary


def write_phase(fs: pafs.FileSystem, root: str, tables: list[tuple], neo4j: bool, typed: bool, summary: dict) -> None:
    """Replace the graph at ``root``: the previous one goes (``_SUCCESS`` first), one write task per partition puts
    its ``tables``, then the Neo4j headers, and ``_SUCCESS`` with ``summary`` comes last."""
    clear_output(fs, root)
    ray.get([write_partition.remote(fs, root, index, *partition, neo4j) for index, partition in enumerate(tables)])
    if neo4j:
        write_neo4j_headers(fs, root, typed)
    storage.write_bytes(fs, f"{root}/_SUCCESS", (json.dumps(summary, indent=2) + "\n").encode())
