"""What the kg job reads and writes: the input columns (as extraction writes them) and their checks, and the output
tables' schemas with what their columns mean (the README documents the same tables)."""

from __future__ import annotations

import functools

import pyarrow as pa
import pyarrow.compute as pc

# --- input: column -> the kind of Arrow type it must have ----------------------------------------------------

# Mentions, ``OUTPUT/mentions/*.parquet`` of extraction: ``text[start:end] == span``, end exclusive.
MENTION_COLUMNS = {"doc_id": "string", "start": "integer", "end": "integer", "span": "string", "label": "string",
                   "score": "floating"}
# Relations, ``OUTPUT/relations/*.parquet`` beside ``mentions/``: the edge head -> tail of one document.
RELATION_COLUMNS = {"doc_id": "string", "head_start": "integer", "head_end": "integer", "head_span": "string",
                    "head_label": "string", "tail_start": "integer", "tail_end": "integer", "tail_span": "string",
                    "tail_label": "string", "relation": "string", "score": "floating"}
TYPE_CHECKS = {
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "integer": pa.types.is_integer,
    "floating": pa.types.is_floating,
}

# --- output, under --output; one part-NNNNN.parquet per partition and table ----------------------------------

# entities/: one row per entity, a normalized surface form with a type (``entities.entity_id``) and, when
# resolving, the forms resolved into it (``resolve``); ``name`` is the most frequent display form of the entity's
# own (long) form, ``aliases`` the number of display forms naming it; ``mean_score`` does not depend on row order.
ENTITY_SCHEMA = pa.schema([
    ("entity_id", pa.string()), ("name", pa.string()), ("label", pa.string()), ("mentions", pa.int64()),
    ("documents", pa.int64()), ("aliases", pa.int64()), ("mean_score", pa.float64()), ("max_score", pa.float32()),
])
# aliases/ (when resolving): why each display form names its entity: ``rule`` is normalized, within-document,
# acronym, corpus or similarity; ``evidence`` the mentions where the form links so; ``score`` 1, or the share of
# resolving documents that agree (corpus), or the name similarity (similarity).
ALIAS_SCHEMA = pa.schema([
    ("surface", pa.string()), ("label", pa.string()), ("entity_id", pa.string()), ("rule", pa.string()),
    ("evidence", pa.int64()), ("score", pa.float64()),
])
# relations/: undirected co-occurrence edges, source_id < target_id, no self-loops: ``documents`` where the two
# co-occur, ``weight`` the co-occurring mention pairs (one of each in the same scope: the document, or --window N).
RELATION_SCHEMA = pa.schema([
    ("source_id", pa.string()), ("target_id", pa.string()), ("documents", pa.int64()), ("weight", pa.int64()),
])
# typed_relations/ (only with relation input): directed edges head -> tail, one row per (source, target, relation):
# ``documents`` with such a row, ``weight`` the relation rows, and their mean (float64, summed in ascending order,
# so the same in every run) and maximum score.
TYPED_RELATION_SCHEMA = pa.schema([
    ("source_id", pa.string()), ("target_id", pa.string()), ("relation", pa.string()), ("documents", pa.int64()),
    ("weight", pa.int64()), ("mean_score", pa.float64()), ("max_score", pa.float32()),
])
# Also mention_entities/ (every kept mention row with its entity_id, and the rule that linked it when resolving),
# neo4j/ (with --neo4j: CSV for neo4j-admin,
# see ``neo4j``) and _SUCCESS (JSON counts that add up, written last: without it a run is unfinished). This is all
# the command writes under --output; anything else there is not ours to delete.
OUTPUT_NAMES = ("_SUCCESS", "entities", "relations", "typed_relations", "mention_entities", "aliases", "neo4j")


# --- input checks --------------------------------------------------------------------------------------------


def check_columns(schema: pa.Schema, uri: str, flag: str = "--mentions", columns: dict = MENTION_COLUMNS) -> None:
    """Refuse mention (or relation) files without the columns of the extraction output, or with other types."""
    for name, kind in columns.items():
        if name not in schema.names:
            raise ValueError(f"{flag} {uri}: column {name!r} is missing (columns: {', '.join(schema.names)}); "
                             f"{flag[2:-1]} files need {', '.join(columns)}")
        if not TYPE_CHECKS[kind](schema.field(name).type):
            raise ValueError(f"{flag} {uri}: column {name!r} has type {schema.field(name).type}, expected {kind}")


def count_problems(table: pa.Table, min_score: float, columns: dict, offsets: list[tuple[str, str]]) -> dict:
    """What a read task reports of its rows (mentions or relations): ``rows``, ``at_min_score`` (rows at or above
    ``min_score``), ``end_before_start`` (rows with an ``(start, end)`` pair of ``offsets`` reversed), and
    ``null_NAME`` per column of ``columns``."""
    reversed_offsets = [pc.fill_null(pc.less(table[end], table[start]), False) for start, end in offsets]
    return {
        "rows": table.num_rows,
        "at_min_score": pc.sum(pc.greater_equal(table["score"], min_score)).as_py() or 0,
        "end_before_start": pc.sum(functools.reduce(pc.or_, reversed_offsets)).as_py() or 0,
        **{f"null_{name}": table[name].null_count for name in columns},
    }


def add_counts(stats: list[dict], uri: str, flag: str = "--mentions", columns: dict = MENTION_COLUMNS) -> dict:
    """The read tasks' ``count_problems`` added up, after refusing what they found wrong: unreadable files, nulls,
    reversed offsets, relations without a type."""
    for found in stats:
        if "error" in found:
            raise ValueError(found["error"])
    counts = {name: sum(found[name] for found in stats) for name in stats[0]}
    nulls = [name for name in columns if counts[f"null_{name}"]]
    if nulls:
        raise ValueError(f"{flag} {uri}: null values in {', '.join(nulls)} "
                         f"({', '.join(str(counts[f'null_{n}']) for n in nulls)} rows); "
                         f"every {flag[2:-1]} needs all columns")
    if counts["end_before_start"]:
        raise ValueError(f"{flag} {uri}: {counts['end_before_start']} rows have end < start (offsets are "
                         "[start, end), end exclusive)")
    if counts.get("untyped"):
        raise ValueError(f"{flag} {uri}: {counts['untyped']} rows have a relation without letters or digits, "
                         "which cannot name a relationship type")
    return counts


def validate_counts(stats: list[dict], uri: str, min_score: float) -> dict:
    """The mention read tasks' counts added up (``add_counts``), refusing also no rows, or none to keep."""
    counts = add_counts(stats, uri)
    if not counts["rows"]:
        raise ValueError(f"--mentions {uri}: the mention files hold no rows")
    if not counts["at_min_score"]:
        raise ValueError(f"--mentions {uri}: none of the {counts['rows']} mentions has score >= {min_score:g}; "
                         "lower --min-score")
    return counts
