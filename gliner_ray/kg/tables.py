"""The columnar work inside the tasks, DuckDB SQL over Arrow tables: entity rows from mentions, co-occurring pairs
from documents held whole, and typed relation rows from relation edges."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .entities import display_form
from .schema import ALIAS_SCHEMA, ENTITY_SCHEMA, RELATION_SCHEMA, TYPED_RELATION_SCHEMA


def sql(query: str, **tables: pa.Table) -> pa.Table:
    """DuckDB ``query`` over the Arrow ``tables`` it names, on one thread: Ray already runs one task per CPU."""
    with duckdb.connect() as connection:
        connection.execute("SET threads = 1")
        for name, table in tables.items():
            connection.register(name, table)
        return connection.sql(query).to_arrow_table()


ENTITY_SQL = """
WITH forms AS (SELECT entity_id, name, count(*) FILTER (WHERE canonical) AS n, count(*) AS all_n
               FROM mentions GROUP BY entity_id, name),
     names AS (SELECT entity_id, name, count(*) OVER (PARTITION BY entity_id) AS aliases FROM forms
               QUALIFY row_number() OVER (PARTITION BY entity_id ORDER BY n DESC, all_n DESC, name) = 1)
SELECT entity_id, any_value(names.name) AS name, any_value(label) AS label, count(*) AS mentions,
       count(DISTINCT doc_id) AS documents, any_value(aliases) AS aliases, sum(score::DOUBLE) AS total,
       sum(abs(score::DOUBLE)) AS magnitude,
       min(grain) AS grain, max(score) AS max_score
FROM mentions JOIN names USING (entity_id) GROUP BY entity_id ORDER BY entity_id
"""


def display_names(mentions: pa.Table) -> pa.Array:
    """The display form of each mention's span, computed once per distinct span."""
    spans = pc.dictionary_encode(mentions["span"].combine_chunks())
    return pa.array([display_form(s) for s in spans.dictionary.to_pylist()], pa.string()).take(spans.indices)


def summarize_entities(mentions: pa.Table, names: pa.Array | None = None) -> pa.Table:
    """One row per entity of ``mentions`` (``ENTITY_SCHEMA``). ``name`` is the most frequent display form of its
    canonical form (``canonical``: the long form, when resolving), ties broken by the smallest string;
    ``aliases`` counts its display forms. ``mean_score`` is the exactly rounded sum (``math.fsum``) over the count,
    so it does not depend on the row order: a float64 sum is exact when every partial sum is a multiple of the smallest
    score's spacing that float64 can hold, which ``magnitude <= grain * 2**52`` guarantees (always, for float32
    scores in [0.5, 1] and fewer than 2**28 mentions); other entities are summed by ``math.fsum``."""
    spans = pc.dictionary_encode(mentions["span"].combine_chunks())
    names = pa.array([display_form(s) for s in spans.dictionary.to_pylist()], pa.string()).take(spans.indices)
    scores = mentions["score"].to_numpy()
    grain = np.where((scores != 0) & np.isfinite(scores), np.spacing(np.abs(scores)), np.inf).astype(np.float64)
    canonical = (mentions["canonical"] if "canonical" in mentions.column_names
                 else pa.array(np.ones(mentions.num_rows, bool)))
    table = mentions.select(["entity_id", "doc_id", "label", "score"]).append_column("name", names)
    table = table.append_column("canonical", canonical)
    rows = sql(ENTITY_SQL, mentions=table.append_column("grain", pa.array(grain)))

    total = rows["total"].to_numpy(zero_copy_only=False)
    exact = np.isfinite(total) & (rows["magnitude"].to_numpy(zero_copy_only=False)
                                  <= rows["grain"].to_numpy(zero_copy_only=False) * 2.0**52)
    if not exact.all():
        inexact = rows["entity_id"].filter(pa.array(~exact))
        some = table.filter(pc.is_in(table["entity_id"], value_set=inexact)).select(["entity_id", "score"])
        scores_of: dict[str, list[float]] = {}
        for entity, score in zip(some["entity_id"].to_pylist(), some["score"].to_pylist()):
            scores_of.setdefault(entity, []).append(score)
        fsums = {entity: math.fsum(values) for entity, values in scores_of.items()}
        total = np.where(exact, total, [fsums.get(e, 0.0) for e in rows["entity_id"].to_pylist()])
    mentions_count = rows["mentions"].to_numpy(zero_copy_only=False)
    return pa.table([
        rows["entity_id"], rows["name"], rows["label"], rows["mentions"], rows["documents"], rows["aliases"],
        pa.array(total / np.maximum(mentions_count, 1), pa.float64()),
        pc.cast(rows["max_score"], pa.float32(), safe=False),
    ], schema=ENTITY_SCHEMA)


ALIAS_SQL = """
SELECT name AS surface, any_value(label) AS label, entity_id, rule, count(*) AS evidence, max(rule_score) AS score
FROM mentions GROUP BY name, entity_id, rule
"""


def summarize_aliases(mentions: pa.Table, names: pa.Array | None = None) -> pa.Table:
    """``ALIAS_SCHEMA`` rows of resolved ``mentions``: per display form, entity and rule, the mentions where the
    form links to the entity by the rule, and the rule's score. ``names`` as for ``summarize_entities``."""
    names = display_names(mentions) if names is None else names
    names = pc.dictionary_encode(names)  # grouped by its integer index, named after
    table = mentions.select(["entity_id", "doc_id", "label", "rule", "rule_score"]).append_column("name", names.indices)
    rows = sql(ALIAS_SQL, mentions=table)
    rows = rows.set_column(0, "surface", names.dictionary.take(rows["surface"])).cast(ALIAS_SCHEMA)
    return rows.sort_by([("entity_id", "ascending"), ("rule", "ascending"), ("surface", "ascending")])


def cooccurrences(mentions: pa.Table, window: int | None) -> pa.Table:
    """The co-occurring entity pairs of documents held whole in ``mentions`` (``doc_id, entity_id, start, end``),
    summed over them: ``RELATION_SCHEMA`` rows ``(source_id < target_id, documents, weight)``.

    ``weight`` counts pairs of mentions, one of each entity, in the same scope. With ``window=None`` the scope is
    the document: an entity mentioned twice next to one mentioned three times gives weight 2 * 3 = 6. With
    ``window=N`` two mentions co-occur when the gap between them, ``max(starts) - min(ends)`` (end exclusive;
    negative when they overlap), is at most N characters. Mentions of the same entity never pair with each other.
    """
    if window is None:
        query = """
        WITH counts AS (SELECT doc_id, entity_id, count(*) AS n FROM mentions GROUP BY doc_id, entity_id)
        SELECT a.entity_id AS source_id, b.entity_id AS target_id, count(*) AS documents,
               sum(a.n * b.n)::BIGINT AS weight
        FROM counts a JOIN counts b ON a.doc_id = b.doc_id AND a.entity_id < b.entity_id
        GROUP BY a.entity_id, b.entity_id"""
    else:
        query = f"""
        WITH pairs AS (
            SELECT a.doc_id, a.entity_id AS source_id, b.entity_id AS target_id, count(*) AS weight
            FROM mentions a JOIN mentions b ON a.doc_id = b.doc_id AND a.entity_id < b.entity_id
             AND greatest(a.start, b.start) - least(a."end", b."end") <= {int(window)}
            GROUP BY a.doc_id, a.entity_id, b.entity_id)
        SELECT source_id, target_id, count(*) AS documents, sum(weight)::BIGINT AS weight
        FROM pairs GROUP BY source_id, target_id"""
    pairs = sql(query, mentions=mentions.select(["doc_id", "entity_id", "start", "end"]))
    return pairs.cast(RELATION_SCHEMA)


def sum_relations(pairs: pa.Table) -> pa.Table:
    """Per-partition pair counts added up: one ``RELATION_SCHEMA`` row per pair, sorted."""
    return sql("""SELECT source_id, target_id, sum(documents)::BIGINT AS documents, sum(weight)::BIGINT AS weight
                  FROM pairs GROUP BY source_id, target_id ORDER BY source_id, target_id""", pairs=pairs
               ).cast(RELATION_SCHEMA)


TYPED_RELATION_SQL = """
SELECT source_id, target_id, relation, count(DISTINCT doc_id) AS documents, count(*) AS weight,
       sum(score::DOUBLE ORDER BY score) / count(*) AS mean_score, max(score) AS max_score
FROM relations GROUP BY source_id, target_id, relation ORDER BY source_id, target_id, relation
"""


def summarize_typed_relations(relations: pa.Table) -> pa.Table:
    """One ``TYPED_RELATION_SCHEMA`` row per (source_id, target_id, relation) of ``relations`` (all rows of each
    triple): documents, relation rows (``weight``), and the mean (summed in ascending order, so the same in every
    run) and maximum score."""
    return sql(TYPED_RELATION_SQL, relations=relations).cast(TYPED_RELATION_SCHEMA, safe=False)
