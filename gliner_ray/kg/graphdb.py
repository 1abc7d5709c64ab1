"""The graph in an embedded graph database that speaks Cypher (LadybugDB, the maintained successor of Kùzu),
loaded straight from the Parquet tables of a finished kg output (``--graphdb PATH``). Nodes: ``Entity``,
``Document`` and, when resolving, ``Alias``; relationships: ``CO_OCCURS_WITH`` (co-occurrence), ``RELATED``
(typed relations, ``relation`` the type as extracted), ``MENTIONS`` (document to entity, one per mention) and
``ALIAS_OF`` (alias to entity)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

EXTRA = "graph"
SCHEMA = [
    ("CREATE NODE TABLE Entity(entity_id STRING, name STRING, label STRING, mentions INT64, documents INT64, "
     "aliases INT64, mean_score DOUBLE, max_score FLOAT, PRIMARY KEY(entity_id))"),
    "CREATE NODE TABLE Document(doc_id STRING, PRIMARY KEY(doc_id))",
    "CREATE REL TABLE CO_OCCURS_WITH(FROM Entity TO Entity, documents INT64, weight INT64)",
    ("CREATE REL TABLE RELATED(FROM Entity TO Entity, relation STRING, documents INT64, weight INT64, "
     "mean_score DOUBLE, max_score FLOAT)"),
    ("CREATE REL TABLE MENTIONS(FROM Document TO Entity, start_char INT64, end_char INT64, span STRING, "
     "score DOUBLE, rule STRING)"),
    ("CREATE NODE TABLE Alias(alias_id STRING, surface STRING, label STRING, rule STRING, evidence INT64, "
     "score DOUBLE, PRIMARY KEY(alias_id))"),
    "CREATE REL TABLE ALIAS_OF(FROM Alias TO Entity)",
]
ALIAS_ID = "entity_id + '|' + rule + '|' + surface"


def import_ladybug():
    """The ``ladybug`` module, or an error naming the extra that installs it."""
    try:
        import ladybug
    except ImportError as error:
        raise ImportError(f"--graphdb needs LadybugDB: pip install 'gliner-ray[{EXTRA}]' ({error})") from None
    return ladybug


def copy_statements(graph: Path) -> list[str]:
    """The ``COPY`` statements that load the tables present under ``graph``."""
    parts = {name: (graph / name / "*.parquet").as_posix() for name in
             ("entities", "relations", "typed_relations", "mention_entities", "aliases")}
    resolved = (graph / "aliases").is_dir()
    rule = "rule" if resolved else "'normalized'"
    statements = [
        f"COPY Entity FROM '{parts['entities']}'",
        f"COPY CO_OCCURS_WITH FROM '{parts['relations']}'",
        f"COPY Document FROM (LOAD FROM '{parts['mention_entities']}' RETURN DISTINCT doc_id)",
        (f"COPY MENTIONS FROM (LOAD FROM '{parts['mention_entities']}' RETURN doc_id, entity_id, start, `end`, "
         f"span, CAST(score AS DOUBLE), {rule})"),
    ]
    if (graph / "typed_relations").is_dir():
        statements.append(f"COPY RELATED FROM '{parts['typed_relations']}'")
    if resolved:
        statements += [
            (f"COPY Alias FROM (LOAD FROM '{parts['aliases']}' RETURN {ALIAS_ID}, surface, label, rule, "
             "evidence, score)"),
            f"COPY ALIAS_OF FROM (LOAD FROM '{parts['aliases']}' RETURN {ALIAS_ID}, entity_id)",
        ]
    return statements


def load_graph(graph: str, database: str, overwrite: bool = False) -> dict:
    """Load the kg output at ``graph`` (a local directory with ``_SUCCESS``) into a new LadybugDB database at
    ``database``; returns its node and relationship counts."""
    ladybug = import_ladybug()
    root = Path(graph)
    if not (root / "_SUCCESS").is_file():
        raise ValueError(f"--graphdb: {graph} is not a finished local kg output (no _SUCCESS)")
    if os.path.lexists(database):
        if not overwrite:
            raise FileExistsError(f"--graphdb {database} exists: pass --overwrite to replace it")
        shutil.rmtree(database) if os.path.isdir(database) else os.remove(database)
    connection = ladybug.Connection(ladybug.Database(database))
    for statement in SCHEMA + copy_statements(root):
        connection.execute(statement)
    counts = {table: connection.execute(query).get_all()[0][0] for table, query in (
        ("entities", "MATCH (e:Entity) RETURN count(e)"), ("documents", "MATCH (d:Document) RETURN count(d)"),
        ("co_occurrences", "MATCH ()-[r:CO_OCCURS_WITH]->() RETURN count(r)"),
        ("typed_relations", "MATCH ()-[r:RELATED]->() RETURN count(r)"),
        ("mentions", "MATCH ()-[r:MENTIONS]->() RETURN count(r)"), ("aliases", "MATCH (a:Alias) RETURN count(a)"))}
    logger.info("loaded %s into %s: %s", graph, database, counts)
    return counts
