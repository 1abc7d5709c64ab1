"""The Ray tasks of the kg job, one per file group or partition: read (and link), reduce (entities, documents,
pairs, typed relations) and write. Each returns a small count first, then its tables split by hash for the next
shuffle, so only counts reach the driver."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import ray

from .aliases import resolve_documents
from .entities import link_mentions, link_relations
from .files import read_files, write_parts
from .neo4j import neo4j_type
from .resolve import Resolution, apply_mapping, corpus_mapping, local_relations, map_relations
from .schema import MENTION_COLUMNS, RELATION_COLUMNS, count_problems
from .tables import (cooccurrences, display_names, sql, sum_relations, summarize_aliases, summarize_entities,
                     summarize_typed_relations)


def hash_partitions(table: pa.Table, columns: list[str], partitions: int) -> np.ndarray:
    """The partition of each row, ``hash(columns) % partitions``: rows with equal keys land in the same one."""
    if partitions == 1:
        return np.zeros(table.num_rows, np.uint64)
    keys = table.select(columns)
    return sql(f"SELECT hash({', '.join(columns)}) % {partitions} AS p FROM keys", keys=keys)["p"].to_numpy()


def split(table: pa.Table, partition: np.ndarray, partitions: int) -> list[pa.Table]:
    """``table`` as ``partitions`` tables, row ``i`` going to ``partition[i]`` (compact copies, not slices)."""
    order = np.argsort(partition, kind="stable")
    bounds = np.searchsorted(partition[order], np.arange(partitions + 1))
    return [table.take(order[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]


def shuffle(table: pa.Table, columns: list[str], partitions: int) -> list[pa.Table]:
    """``table`` as ``partitions`` tables by the hash of ``columns``, for the tasks of the next step."""
    return split(table, hash_partitions(table, columns, partitions), partitions)


def score_floor(table: pa.Table, min_score: float) -> float:
    """``min_score`` in the scores' own precision, so that --min-score 0.9 keeps a float32 score of 0.9."""
    return pa.scalar(min_score, table.schema.field("score").type).as_py()


def read_checked(files: list[str], fs: pafs.FileSystem, uri: str, min_score: float, flag: str, columns: dict,
                 offsets: list[tuple[str, str]]) -> tuple[dict, pa.Table | None]:
    """The counts of a group of files (``count_problems``, or ``{"error": ...}``) and their rows at or above
    ``min_score``; no rows when the driver will refuse them anyway."""
    table = read_files(files, fs, uri, flag, columns)
    if isinstance(table, dict):
        return table, None
    floor = score_floor(table, min_score)
    counts = count_problems(table, floor, columns, offsets)
    if "relation" in columns:  # a relation names a relationship type: it needs a letter or a digit
        counts["untyped"] = pc.sum(pc.equal(neo4j_type(table["relation"]), "")).as_py() or 0
    if counts["end_before_start"] or counts.get("untyped") or any(counts[f"null_{name}"] for name in columns):
        return counts, None  # refused by the driver: no point in linking
    return counts, table.filter(pc.greater_equal(table["score"], floor))


@ray.remote
def read_and_link(files: list[str], fs: pafs.FileSystem, uri: str, min_score: float, partitions: int,
                  key: str = "entity_id") -> list:
    """Read a group of mention files; return their validation counts (or ``{"error": ...}``), then their mentions
    at or above ``min_score`` with entity ids, split by ``key`` (entity, or document to resolve) into
    ``partitions`` tables."""
    counts, mentions = read_checked(files, fs, uri, min_score, "--mentions", MENTION_COLUMNS, [("start", "end")])
    if mentions is None:
        return [counts, *[None] * partitions]
    return [counts, *shuffle(link_mentions(mentions), [key], partitions)]


@ray.remote
def read_relations(files: list[str], fs: pafs.FileSystem, uri: str, min_score: float, partitions: int,
                   key: str = "source_id") -> list:
    """Read a group of relation files; return their validation counts (or ``{"error": ...}``), then their
    relations at or above ``min_score`` as directed entity edges (``link_relations``), split by ``key`` (head
    entity, or document to resolve)."""
    offsets = [("head_start", "head_end"), ("tail_start", "tail_end")]
    counts, relations = read_checked(files, fs, uri, min_score, "--relations", RELATION_COLUMNS, offsets)
    if relations is None:
        return [counts, *[None] * partitions]
    return [counts, *shuffle(link_relations(relations), [key], partitions)]


@ray.remote
def resolve_partition(rules: frozenset, mention_parts: int, *parts: pa.Table) -> list:
    """The documents of one partition resolved within themselves (``aliases``): counts, the evidence for the
    corpus step (names, targets), the mentions with their local forms, and the relation edges likewise (or None)."""
    mentions = pa.concat_tables(parts[:mention_parts], promote_options="permissive")
    resolved, aliases, names, targets = resolve_documents(mentions, rules)
    relations = None
    if parts[mention_parts:]:
        relations = local_relations(pa.concat_tables(parts[mention_parts:], promote_options="permissive"), aliases)
    stats = {"within_document": resolved.num_rows - resolved["local_rule"].null_count}
    return [stats, names, targets, resolved, relations]


@ray.remote
def map_corpus(resolution: Resolution, name_parts: int, *parts: pa.Table) -> list:
    """The corpus-wide mapping of normalized forms to entities (``resolve.corpus_mapping``), its counts first."""
    names = pa.concat_tables(parts[:name_parts], promote_options="permissive")
    mapping, counts = corpus_mapping(names, pa.concat_tables(parts[name_parts:]), resolution)
    return [counts, mapping]


@ray.remote
def apply_partition(partitions: int, mapping: pa.Table, mentions: pa.Table, relations: pa.Table | None) -> list:
    """One document partition's mentions with their entities, split by entity, then its relation edges split by
    head entity (none without relations); the mentions' count first."""
    linked = apply_mapping(mentions, mapping)
    relation_parts = [] if relations is None else shuffle(map_relations(relations, mapping), ["source_id"],
                                                          partitions)
    return [linked.num_rows, *shuffle(linked, ["entity_id"], partitions), *relation_parts]


@ray.remote
def reduce_entities(min_count: int, partitions: int, *parts: pa.Table) -> list:
    """All mentions of the entities of one partition: their counts, the entity rows with at least ``min_count``
    mentions, those entities' mentions, their ``aliases`` rows (None without resolution), and those mentions'
    ``(doc_id, entity_id, start, end)`` split by document."""
    mentions = pa.concat_tables(parts, promote_options="permissive")
    names = display_names(mentions)
    all_entities = summarize_entities(mentions, names)
    entities, kept = all_entities, mentions
    aliases = summarize_aliases(mentions, names) if "rule" in mentions.column_names else None
    if min_count > 1:
        entities = all_entities.filter(pc.greater_equal(all_entities["mentions"], min_count))
        kept = mentions.filter(pc.is_in(mentions["entity_id"], value_set=entities["entity_id"]))
        if aliases is not None:
            aliases = aliases.filter(pc.is_in(aliases["entity_id"], value_set=entities["entity_id"]))
    stats = {"entities": all_entities.num_rows, "kept_entities": entities.num_rows, "kept_mentions": kept.num_rows,
             "most_mentions": pc.max(all_entities["mentions"]).as_py() or 0}
    links = kept.select(["doc_id", "entity_id", "start", "end"])
    if aliases is not None:  # resolved: the mention rows without the working columns
        kept = kept.drop_columns(["canonical", "rule_score"]).set_column(
            kept.schema.get_field_index("rule"), "rule", pc.cast(kept["rule"], pa.string()))
    return [stats, entities, kept, aliases, *shuffle(links, ["doc_id"], partitions)]


@ray.remote
def reduce_documents(window: int | None, partitions: int, *parts: pa.Table) -> list:
    """The co-occurrences in the documents of one partition, summed, split by pair into ``partitions`` tables."""
    pairs = cooccurrences(pa.concat_tables(parts, promote_options="permissive"), window)
    return [pairs.num_rows, *shuffle(pairs, ["source_id", "target_id"], partitions)]


@ray.remote
def reduce_pairs(*parts: pa.Table) -> list:
    """The relation rows of the pairs of one partition, and their number."""
    relations = sum_relations(pa.concat_tables(parts))
    return [relations.num_rows, relations]


@ray.remote
def keep_heads(partitions: int, entities: pa.Table, *parts: pa.Table) -> list:
    """The relations of one head-entity partition whose head is a kept entity (one of ``entities``, the entity rows
    of the same partition), split by tail entity; their number first."""
    relations = pa.concat_tables(parts, promote_options="permissive")
    kept = relations.filter(pc.is_in(relations["source_id"], value_set=entities["entity_id"]))
    return [kept.num_rows, *shuffle(kept, ["target_id"], partitions)]


@ray.remote
def reduce_typed_relations(entities: pa.Table, *parts: pa.Table) -> list:
    """The typed relation rows of one tail-entity partition: every row of a (source, target, relation) triple is
    here, so this is the final ``GROUP BY``, over the relations whose tail is also kept; their counts first."""
    relations = pa.concat_tables(parts, promote_options="permissive")
    kept = relations.filter(pc.is_in(relations["target_id"], value_set=entities["entity_id"]))
    typed = summarize_typed_relations(kept)
    return [{"relations_kept": kept.num_rows, "typed_relations": typed.num_rows}, typed]


@ray.remote
def write_partition(fs: pafs.FileSystem, root: str, index: int, entities: pa.Table, mentions: pa.Table,
                    aliases: pa.Table | None, relations: pa.Table, typed_relations: pa.Table | None,
                    neo4j: bool) -> None:
    """Write partition ``index`` of each table (``files.write_parts``). ``aliases`` is None without resolution,
    ``typed_relations`` without relation input: then there is no such table."""
    tables = {"entities": entities, "relations": relations, "mention_entities": mentions}
    if aliases is not None:
        tables["aliases"] = aliases
    if typed_relations is not None:
        tables["typed_relations"] = typed_relations
    write_parts(fs, root, index, tables, neo4j)

