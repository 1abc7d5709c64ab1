"""The Neo4j import files (``--neo4j``): headerless CSV parts per table plus one header file each, for
``neo4j-admin database import full``. Entities are nodes labelled ``Entity`` and their type, co-occurrences
``CO_OCCURS_WITH`` relationships; typed relations are one file set, ``:TYPE`` the relation in upper snake case."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs

from .. import storage
from .schema import ENTITY_SCHEMA, RELATION_SCHEMA, TYPED_RELATION_SCHEMA

NEO4J_NODE_LABEL = "Entity"
NEO4J_RELATIONSHIP_TYPE = "CO_OCCURS_WITH"


def neo4j_nodes(entities: pa.Table) -> pa.Table:
    """Entity rows in the column order of the node header; ``:LABEL`` gives every node ``Entity`` and its type."""
    return pa.table({
        "entity_id:ID": entities["entity_id"], "name": entities["name"], "label": entities["label"],
        ":LABEL": pc.binary_join_element_wise(NEO4J_NODE_LABEL, entities["label"], ";"),
        "mentions:long": entities["mentions"], "documents:long": entities["documents"],
        "mean_score:double": entities["mean_score"], "max_score:double": entities["max_score"],
    })


def neo4j_relationships(relations: pa.Table) -> pa.Table:
    """Relation rows in the column order of the relationship header."""
    return pa.table({
        ":START_ID": relations["source_id"], ":END_ID": relations["target_id"],
        ":TYPE": pa.array([NEO4J_RELATIONSHIP_TYPE] * relations.num_rows, pa.string()),
        "documents:long": relations["documents"], "weight:long": relations["weight"],
    })


def neo4j_typed_relationships(relations: pa.Table) -> pa.Table:
    """Typed relation rows in the column order of their relationship header: ``:TYPE`` is the relation in upper
    snake case (``neo4j_type``), ``relation`` the name as extracted."""
    return pa.table({
        ":START_ID": relations["source_id"], ":END_ID": relations["target_id"],
        ":TYPE": neo4j_type(relations["relation"]), "relation": relations["relation"],
        "documents:long": relations["documents"], "weight:long": relations["weight"],
        "mean_score:double": relations["mean_score"], "max_score:double": relations["max_score"],
    })


def neo4j_type(relations: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Neo4j relationship types from relation names, upper snake case: "works for" -> WORKS_FOR (every run of
    characters other than letters and digits becomes one underscore; none at the ends)."""
    snake = pc.replace_substring_regex(relations, r"[^\p{L}\p{N}]+", "_")
    return pc.utf8_trim(pc.utf8_upper(snake), "_")


NEO4J_TABLES = (("entities", neo4j_nodes, ENTITY_SCHEMA), ("relations", neo4j_relationships, RELATION_SCHEMA),
                ("typed_relations", neo4j_typed_relationships, TYPED_RELATION_SCHEMA))


def csv_bytes(table: pa.Table) -> bytes:
    """Headerless CSV: the header goes in a file of its own, for ``neo4j-admin``."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False))
    return sink.getvalue().to_pybytes()


def write_neo4j_parts(fs: pafs.FileSystem, root: str, index: int, tables: dict[str, pa.Table]) -> None:
    """Partition ``index`` of each of ``tables`` as headerless ``neo4j/NAME/part-NNNNN.csv``; an empty partition
    writes nothing, except partition 0."""
    for name, to_csv_columns, _ in NEO4J_TABLES:
        if name in tables and (tables[name].num_rows or index == 0):
            storage.write_bytes(fs, f"{root}/neo4j/{name}/part-{index:05d}.csv",
                                csv_bytes(to_csv_columns(tables[name])))


def write_neo4j_headers(fs: pafs.FileSystem, root: str, typed_relations: bool) -> None:
    """``root/neo4j/{entities,relations,typed_relations}_header.csv``: ``neo4j-admin database import full
    --nodes=HEADER,PARTS --relationships=HEADER,PARTS`` reads them before the headerless parts."""
    for name, to_csv_columns, schema in NEO4J_TABLES[:3 if typed_relations else 2]:
        columns = to_csv_columns(schema.empty_table()).schema.names
        storage.write_bytes(fs, f"{root}/neo4j/{name}_header.csv", (",".join(columns) + "\n").encode())
