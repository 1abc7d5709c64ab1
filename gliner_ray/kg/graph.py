"""From extracted mentions to a knowledge graph: Ray distributes, a columnar engine (Arrow and DuckDB) computes.

Input: mention rows ``(doc_id, start, end, span, label, score)`` as the extraction job writes them
(``OUTPUT/mentions/*.parquet``, with ``OUTPUT/_SUCCESS`` written last). Output, under ``--output``:

- ``entities/``: one row per entity: ``entity_id, name, label, mentions, documents, mean_score, max_score``.
- ``relations/``: undirected co-occurrence edges ``source_id < target_id`` (no self-loops): ``documents`` is the
  number of documents where the two entities co-occur, ``weight`` the number of co-occurring mention pairs (one
  mention of each, in the same scope: ``--window doc`` or within N characters), so repeated co-mentions weigh more.
- ``mention_entities/``: every kept mention row with its ``entity_id``, linking the graph back to the text.
- ``typed_relations/`` (only with relation input, see below): directed typed edges, one row per
  ``(source_id, target_id, relation)``: ``documents`` is the number of documents with such a relation row,
  ``weight`` the number of relation rows, ``mean_score`` (float64, summed in ascending order so it is the same in
  every run) and ``max_score`` their scores.
- ``neo4j/`` (with ``--neo4j``): headerless CSV parts plus one header file per table, for ``neo4j-admin``; typed
  relations are one file set whose ``:TYPE`` column is the relation in upper snake case ("works for" ->
  ``WORKS_FOR``: each run of characters other than letters and digits becomes one ``_``, none at the ends).
- ``_SUCCESS``: JSON counts, written last: a directory without it is an unfinished run.

An entity is a normalized surface form with a type: ``entity_id = blake2b(normalize(span) + "\\x1f" + label)``,
64 bits as 16 hex characters, so ids agree across runs, input orders and corpora (two distinct entities share an
id with probability about n²/2⁶⁵: ~3e-4 for 10⁸ entities). ``normalize`` folds Unicode compatibility forms (NFKC)
and case (casefold), strips surrounding whitespace and punctuation (Unicode category P*) and collapses inner
whitespace: "IBM", "IBM ", "ＩＢＭ" and "ibm." are one entity. A span that is all punctuation keeps it ("..."),
so every mention has exactly one entity. The type is hashed as written ("ORG" and "org" are different types).

Relation input: rows ``(doc_id, head_start, head_end, head_span, head_label, tail_start, tail_end, tail_span,
tail_label, relation, score)`` as relation extraction writes them (``OUTPUT/relations/*.parquet`` beside
``mentions/``, read when present, or the files ``--relations`` names). A relation row is the edge head -> tail:
``source_id = entity_id(head_span, head_label)``, ``target_id = entity_id(tail_span, tail_label)``, the very ids of
the mentions. Of the ``relations_read`` rows, ``relations_below_min_score`` have ``score < min_score``,
``relations_of_dropped_entities`` have a head or tail that is not a kept entity (not in ``entities/``: too rare, or
never mentioned at or above ``min_score``), and the rest, ``relations_kept``, sum to ``typed_relations.weight``.
Without relation input there is no ``typed_relations/`` and the output is as it always was.

Counts add up: of the ``mentions_read`` rows, ``mentions_below_min_score`` have ``score < min_score`` (or NaN;
compared in the score column's precision), ``mentions_of_rare_entities`` belong to entities with fewer than
``min_count`` mentions (dropped with their edges), and the rest, ``mentions_kept``, are exactly the rows of
``mention_entities/`` and the sum of ``entities.mentions``.

How it runs: three hash shuffles between Ray tasks, each task a few columnar operations on Arrow tables, and
nothing but counts on the driver.

1. ``read_and_link`` (one task per group of files): read, validate, drop low scores, and give every mention its
   entity id (normalization and hashing run once per distinct surface form and label, in Python; everything per
   mention is vectorized), then split the mentions by ``hash(entity_id)`` into P partitions.
2. ``reduce_entities`` (one per entity partition): the entity rows (DuckDB ``GROUP BY``), the rare entities
   dropped, the kept mentions for ``mention_entities/``, and their ``(doc_id, entity_id, start, end)`` split by
   ``hash(doc_id)``.
3. ``reduce_documents`` (one per document partition): every document is whole here, so its co-occurring pairs are
   one DuckDB self-join; pairs are summed within the partition and split by ``hash(source_id, target_id)``.
4. ``reduce_pairs`` (one per pair partition): the relation rows.

Typed relations take two more shuffles: ``read_relations`` links head and tail like step 1 and splits by
``hash(source_id)``; ``keep_heads`` (one per entity partition, beside the entity rows of step 2) keeps the rows
whose head is a kept entity and splits them by ``hash(target_id)``; ``reduce_typed_relations`` keeps those whose
tail is kept too and, as every row of a triple shares its tail, groups them into the final rows.

The driver checks the counts of step 1 (and the ``--min-count`` outcome of step 2) before it touches the output,
then write tasks put one ``part-NNNNN`` file per partition and table, and ``_SUCCESS`` comes last.
"""

from __future__ import annotations

import json
import logging
import math
import time

import pyarrow.parquet as pq
import ray

from .. import storage
from ..checks import check_at_least
from .files import check_output, clear_output, find_mention_files, find_relation_files, group_files
from .neo4j import write_neo4j_headers
from .schema import RELATION_COLUMNS, add_counts, check_columns, validate_counts
from .tasks import (keep_heads, read_and_link, read_relations, reduce_documents, reduce_entities, reduce_pairs,
                    reduce_typed_relations, write_partition)

logger = logging.getLogger(__name__)

BYTES_PER_PARTITION = 8 * 1024**2  # of input Parquet (about 500k mentions): one read task and one partition each
MAX_PARTITIONS = 200


# --- the job -------------------------------------------------------------------------------------------------


def plan_partitions(sizes: list[int], cpus: int) -> int:
    """Shuffle partitions: one per ``BYTES_PER_PARTITION`` of input, at least one per CPU once each gets a
    megabyte, at most ``MAX_PARTITIONS``."""
    total = sum(sizes)
    return max(1, min(MAX_PARTITIONS, max(math.ceil(total / BYTES_PER_PARTITION), min(cpus, total // 1024**2))))


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
) -> dict:
    """Build the entity, relation and mention-entity tables from the mentions at ``mentions`` into ``output``, and
    the typed relation table from the relation files ``relations`` (default: those beside the mentions, if any);
    returns the counts also written to ``output/_SUCCESS``. See the module docstring for the definitions."""
    check_at_least(min_count, "--min-count")
    if window is not None and window < 0:
        raise ValueError(f"--window must be 'doc' or a number of characters >= 0, got {window}")
    check_at_least(partitions, "--partitions")
    input_fs, input_root, files = find_mention_files(mentions, allow_incomplete)
    output_fs, output_root = check_output(output, overwrite, input_fs, input_root)
    # The first file's columns here, before any Ray work (its footer only); the read tasks check every file.
    check_columns(pq.read_schema(files[0].path, filesystem=input_fs), mentions)
    relation_input = find_relation_files(mentions, relations)
    if relation_input:
        relations, relation_fs, relation_root, relation_files = relation_input
        check_output(output, overwrite, relation_fs, relation_root)
        check_columns(pq.read_schema(relation_files[0].path, filesystem=relation_fs), relations, "--relations",
                      RELATION_COLUMNS)
    started = time.perf_counter()
    if not ray.is_initialized():
        ray.init()
    partitions = partitions or plan_partitions([info.size or 0 for info in files],
                                               int(ray.cluster_resources().get("CPU", 1)))
    groups = group_files(files, partitions)

    read = [read_and_link.options(num_returns=1 + partitions).remote(group, input_fs, mentions, min_score, partitions)
            for group in groups]
    if relation_input:  # read beside the mentions
        read_typed = [read_relations.options(num_returns=1 + partitions).remote(
            group, relation_fs, relations, min_score, partitions) for group in group_files(relation_files, partitions)]
    counts = validate_counts(ray.get([task[0] for task in read]), mentions, min_score)
    if relation_input:
        relation_counts = add_counts(ray.get([task[0] for task in read_typed]), relations, "--relations",
                                     RELATION_COLUMNS)
        logger.info("%d relation rows in %d files, %d with score >= %s", relation_counts["rows"],
                    len(relation_files), relation_counts["at_min_score"], min_score)
    logger.info("%d mention rows in %d files (%d read tasks), %d with score >= %s; %d partitions; %.1f s",
                counts["rows"], len(files), len(groups), counts["at_min_score"], min_score, partitions,
                time.perf_counter() - started)

    by_entity = [reduce_entities.options(num_returns=3 + partitions).remote(
        min_count, partitions, *[task[1 + i] for task in read]) for i in range(partitions)]
    entity_stats = ray.get([task[0] for task in by_entity])
    del read  # every reducer has its input: free the read tasks' tables
    entity_count = sum(found["kept_entities"] for found in entity_stats)
    kept_mentions = sum(found["kept_mentions"] for found in entity_stats)
    if entity_count == 0:
        raise ValueError(f"no entity has --min-count {min_count} mentions (the most mentioned has "
                         f"{max(found['most_mentions'] for found in entity_stats)}): lower --min-count")
    logger.info("%d entities (%d kept with >= %d mentions); %.1f s", sum(found["entities"] for found in entity_stats),
                entity_count, min_count, time.perf_counter() - started)

    typed = [None] * partitions
    if relation_input:  # heads by entity partition, kept if their entity is; then tails likewise, and summed
        heads = [keep_heads.options(num_returns=1 + partitions).remote(
            partitions, by_entity[i][1], *[task[1 + i] for task in read_typed]) for i in range(partitions)]
        typed = [reduce_typed_relations.options(num_returns=2).remote(
            by_entity[i][1], *[task[1 + i] for task in heads]) for i in range(partitions)]
        del read_typed, heads

    by_document = [reduce_documents.options(num_returns=1 + partitions).remote(
        window, partitions, *[task[3 + i] for task in by_entity]) for i in range(partitions)]
    by_pair = [reduce_pairs.options(num_returns=2).remote(*[task[1 + i] for task in by_document])
               for i in range(partitions)]
    entity_tables = [task[1:3] for task in by_entity]  # the document splits stay only with their tasks
    del by_entity, by_document
    relation_count = sum(ray.get([task[0] for task in by_pair]))
    logger.info("%d relations (co-occurrence scope: %s); %.1f s", relation_count,
                "document" if window is None else f"{window} characters", time.perf_counter() - started)

    if relation_input:
        typed_stats = ray.get([task[0] for task in typed])
        kept_relations = sum(found["relations_kept"] for found in typed_stats)
        typed_count = sum(found["typed_relations"] for found in typed_stats)
        typed_tables = [task[1] for task in typed]
        logger.info("%d typed relations from %d relation rows; %.1f s", typed_count, kept_relations,
                    time.perf_counter() - started)
    else:
        typed_tables = typed

    clear_output(output_fs, output_root)
    ray.get([write_partition.remote(output_fs, output_root, i, *entity_tables[i], by_pair[i][1], typed_tables[i],
                                    neo4j) for i in range(partitions)])
    if neo4j:
        write_neo4j_headers(output_fs, output_root, relation_input is not None)

    summary = {
        "mentions": mentions, "files": len(files), "min_score": min_score, "min_count": min_count,
        "window": "doc" if window is None else window,
        "mentions_read": counts["rows"],
        "mentions_below_min_score": counts["rows"] - counts["at_min_score"],
        "mentions_of_rare_entities": counts["at_min_score"] - kept_mentions,
        "mentions_kept": kept_mentions,
        "entities": entity_count, "relations": relation_count,
    }
    if relation_input:
        summary.update({
            "relations_input": relations, "relations_read": relation_counts["rows"],
            "relations_below_min_score": relation_counts["rows"] - relation_counts["at_min_score"],
            "relations_of_dropped_entities": relation_counts["at_min_score"] - kept_relations,
            "relations_kept": kept_relations, "typed_relations": typed_count,
        })
    storage.write_bytes(output_fs, f"{output_root}/_SUCCESS", (json.dumps(summary, indent=2) + "\n").encode())
    logger.info("wrote %s in %.1f s: %s", output, time.perf_counter() - started, summary)
    return summary
