"""From extracted mentions to a knowledge graph, on Ray Data.

Input: mention rows ``(doc_id, start, end, span, label, score)`` as the extraction job writes them
(``OUTPUT/mentions/*.parquet``, with ``OUTPUT/_SUCCESS`` written last). Output, under ``--output``:

- ``entities/``: one row per entity: ``entity_id, name, label, mentions, documents, mean_score, max_score``.
- ``relations/``: undirected co-occurrence edges ``source_id < target_id`` (no self-loops): ``documents`` is the
  number of documents where the two entities co-occur, ``weight`` the number of co-occurring mention pairs (one
  mention of each, in the same scope: ``--window doc`` or within N characters), so repeated co-mentions weigh more.
- ``mention_entities/``: every kept mention row with its ``entity_id``, linking the graph back to the text.
- ``neo4j/`` (with ``--neo4j``): headerless CSV parts plus one header file per table, for ``neo4j-admin``.
- ``_SUCCESS``: JSON counts, written last: a directory without it is an unfinished run.

An entity is a normalized surface form with a type: ``entity_id = blake2b(normalize(span) + "\\x1f" + label)``,
64 bits as 16 hex characters, so ids agree across runs, input orders and corpora (two distinct entities share an
id with probability about n²/2⁶⁵: ~3e-4 for 10⁸ entities). ``normalize`` folds Unicode compatibility forms (NFKC)
and case (casefold), strips surrounding whitespace and punctuation (Unicode category P*) and collapses inner
whitespace: "IBM", "IBM ", "ＩＢＭ" and "ibm." are one entity. A span that is all punctuation keeps it ("..."),
so every mention has exactly one entity. The type is hashed as written ("ORG" and "org" are different types).

Counts add up: of the ``mentions_read`` rows, ``mentions_below_min_score`` have ``score < min_score`` (or NaN;
compared in the score column's precision), ``mentions_of_rare_entities`` belong to entities with fewer than
``min_count`` mentions (dropped with their edges), and the rest, ``mentions_kept``, are exactly the rows of
``mention_entities/`` and the sum of ``entities.mentions``.

Passes over the data, all on Ray, none collecting a table on the driver: one read that links each mention to its
entity id, materialized because four stages read it; a validation pass over it (clear errors before any output is
touched); ``groupby("entity_id").map_groups`` for the entity table (and, with ``min_count``, to drop rare entities'
mentions); ``groupby("doc_id").map_groups`` for each document's co-occurring pairs, then ``groupby`` on the pair
to add documents up. Tables are written with fixed file names, then ``_SUCCESS``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import math
import unicodedata
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import ray
from ray.data import SaveMode
from ray.data.aggregate import Count, Sum
from ray.data.datasource import FilenameProvider
from ray.data.expressions import col

from . import storage

logger = logging.getLogger(__name__)

# The extraction output contract: column -> the kind of Arrow type it must have.
MENTION_COLUMNS = {"doc_id": "string", "start": "integer", "end": "integer", "span": "string", "label": "string",
                   "score": "floating"}
TYPE_CHECKS = {
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "integer": pa.types.is_integer,
    "floating": pa.types.is_floating,
}
ENTITY_SCHEMA = pa.schema([
    ("entity_id", pa.string()), ("name", pa.string()), ("label", pa.string()), ("mentions", pa.int64()),
    ("documents", pa.int64()), ("mean_score", pa.float64()), ("max_score", pa.float32()),
])
PAIR_SCHEMA = pa.schema([("source_id", pa.string()), ("target_id", pa.string()), ("weight", pa.int64())])
RELATION_SCHEMA = pa.schema([
    ("source_id", pa.string()), ("target_id", pa.string()), ("documents", pa.int64()), ("weight", pa.int64()),
])
VALIDATION_COUNTS = ("rows", "at_min_score", "end_before_start", *(f"null_{name}" for name in MENTION_COLUMNS))
# What this command writes under --output; anything else there is not ours to delete.
OUTPUT_NAMES = ("_SUCCESS", "entities", "relations", "mention_entities", "neo4j")
NEO4J_NODE_LABEL = "Entity"
NEO4J_RELATIONSHIP_TYPE = "CO_OCCURS_WITH"
ROWS_PER_PARTITION = 100_000
MAX_PARTITIONS = 200  # Ray Data's own default shuffle parallelism


# --- entities: normalization and ids -------------------------------------------------------------------------


def normalize_surface(surface: str) -> str:
    """The form that identifies an entity: NFKC, casefolded, surrounding whitespace and punctuation stripped, inner
    whitespace collapsed. Falls back to the unstripped form when stripping leaves nothing ("..." stays "...")."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", surface).casefold())
    edge_noise = "".join({ch for ch in folded if ch.isspace() or unicodedata.category(ch).startswith("P")})
    return " ".join(folded.strip(edge_noise).split()) or " ".join(folded.split())


@functools.lru_cache(maxsize=1 << 16)  # surface forms repeat a lot within a corpus
def entity_id(surface: str, label: str) -> str:
    """The stable id of the entity a mention names: 16 hex characters of blake2b(normalized form, 0x1F, label)."""
    key = normalize_surface(surface) + "\x1f" + label
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()


def display_form(surface: str) -> str:
    """A surface form with its whitespace tidied, for entity names: "IBM " and "IBM" read the same."""
    return " ".join(surface.split())


# --- Ray Data stages (each a plain function of an Arrow table) ----------------------------------------------


def count_problems(batch: pa.Table, min_score: float) -> pa.Table:
    """One row of ``VALIDATION_COUNTS`` for a batch: rows, rows at or above ``min_score``, rows whose ``end`` is
    before their ``start``, and nulls per column."""
    counts = [
        batch.num_rows,
        pc.sum(pc.greater_equal(batch["score"], min_score)).as_py() or 0,
        pc.sum(pc.less(batch["end"], batch["start"])).as_py() or 0,
        *(batch[name].null_count for name in MENTION_COLUMNS),
    ]
    return pa.table({name: pa.array([count], pa.int64()) for name, count in zip(VALIDATION_COUNTS, counts)})


def link_mentions(batch: pa.Table) -> pa.Table:
    """The mentions, each with the ``entity_id`` it names (null where span or label is null: validation refuses
    those rows right after this pass)."""
    ids = [
        entity_id(span, label) if span is not None and label is not None else None
        for span, label in zip(batch["span"].to_pylist(), batch["label"].to_pylist())
    ]
    return batch.append_column("entity_id", pa.array(ids, pa.string()))


def summarize_entity(mentions: pa.Table) -> pa.Table:
    """One entity row from all its mentions. ``name`` is the most frequent display form, ties broken by the
    smallest string; ``mean_score`` uses an exactly rounded sum, so it does not depend on the row order."""
    scores = mentions["score"].to_pylist()
    forms = Counter(display_form(span) for span in mentions["span"].to_pylist())
    name = min(forms, key=lambda form: (-forms[form], form))
    row = {
        "entity_id": mentions["entity_id"][0].as_py(), "name": name, "label": mentions["label"][0].as_py(),
        "mentions": len(scores), "documents": pc.count_distinct(mentions["doc_id"]).as_py(),
        "mean_score": math.fsum(scores) / len(scores), "max_score": max(scores),
    }
    return pa.Table.from_pylist([row], schema=ENTITY_SCHEMA)


def keep_frequent(mentions: pa.Table, min_count: int) -> pa.Table:
    """All mentions of one entity, or none when the entity has fewer than ``min_count`` of them."""
    return mentions if mentions.num_rows >= min_count else mentions.slice(0, 0)


def cooccurrences_in_document(mentions: pa.Table, window: int | None) -> pa.Table:
    """The entity pairs that co-occur in one document, one row per pair ``(source_id < target_id, weight)``.

    ``weight`` counts pairs of mentions, one of each entity, in the same scope. With ``window=None`` the scope is
    the document: an entity mentioned twice next to one mentioned three times gives weight 2 * 3 = 6. With
    ``window=N`` two mentions co-occur when the gap between them, ``max(starts) - min(ends)`` (end exclusive; negative
    when they overlap), is at most N characters. Mentions of the same entity never pair with each other.
    """
    ids = mentions["entity_id"].to_numpy()
    if window is None:
        entities, counts = np.unique(ids, return_counts=True)  # sorted, so entities[i] < entities[j] for i < j
        first, second = np.triu_indices(len(entities), k=1)
        source, target, weight = entities[first], entities[second], counts[first] * counts[second]
        return pa.table([source, target, weight], schema=PAIR_SCHEMA)
    order = np.argsort(mentions["start"].to_numpy(), kind="stable")
    ids, starts, ends = ids[order], mentions["start"].to_numpy()[order], mentions["end"].to_numpy()[order]
    # Mention i pairs with every later mention j whose start is within `window` of i's end; for j > i in start order
    # that is exactly gap(i, j) <= window (if j ends first, the spans overlap).
    reach = np.searchsorted(starts, ends + window, side="right")
    after = reach - np.arange(len(ids)) - 1
    first = np.repeat(np.arange(len(ids)), after)
    position_in_run = np.arange(len(first)) - np.repeat(np.cumsum(after) - after, after)
    a, b = ids[first], ids[first + 1 + position_in_run]
    a, b = a[a != b], b[a != b]
    pairs = pa.table({"source_id": np.where(a < b, a, b), "target_id": np.where(a < b, b, a)})
    counted = pairs.group_by(["source_id", "target_id"]).aggregate([([], "count_all")])
    return pa.table([counted["source_id"], counted["target_id"], counted["count_all"]], schema=PAIR_SCHEMA)


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


# --- files ---------------------------------------------------------------------------------------------------


def find_mention_files(uri: str, allow_incomplete: bool = False) -> tuple[pafs.FileSystem, str, list[str]]:
    """The mention Parquet files ``uri`` names, with their filesystem and the directory they were found under.

    ``uri`` is an extraction output (then its ``mentions/`` are read, and its ``_SUCCESS`` must exist unless
    ``allow_incomplete``), a directory of Parquet files, one file, or a glob (``*`` may cross directories).
    """
    fs, path = storage.resolve(uri)
    if fs.get_file_info(f"{path}/mentions").type == pafs.FileType.Directory:
        if not allow_incomplete and fs.get_file_info(f"{path}/_SUCCESS").type != pafs.FileType.File:
            raise ValueError(
                f"--mentions {uri} is an extraction output without _SUCCESS: the extraction has not finished "
                "(or crashed); wait for it or re-run it, or pass --allow-incomplete to use the mentions "
                "written so far"
            )
        uri = storage.join(uri, "mentions")
    fs, base, infos = storage.find_files(uri)
    if fs.get_file_info(base).type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"--mentions {uri}: no such file or directory")
    files = [info.path for info in infos if info.path == base or info.path.endswith(".parquet")]
    if not files:
        raise ValueError(f"--mentions {uri}: no mention Parquet files found "
                         "(expected *.parquet files, or an extraction output with mentions/)")
    return fs, base, files


def check_output(uri: str, overwrite: bool, input_fs: pafs.FileSystem, input_root: str) -> tuple[pafs.FileSystem, str]:
    """The output filesystem and root, after refusing an output that overlaps the input, holds files this command
    did not write, or holds a previous graph while ``overwrite`` is off."""
    fs, root = storage.resolve(uri)
    root = root.rstrip("/")
    if fs.type_name == input_fs.type_name and (
        root == input_root or root.startswith(input_root + "/") or input_root.startswith(root + "/")
    ):
        raise ValueError(f"--output {uri} overlaps the input {input_root}: write the graph somewhere else")
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File:
        raise FileExistsError(f"--output {uri} is a file: give a directory")
    if info.type == pafs.FileType.NotFound:
        return fs, root
    present = {entry.base_name for entry in fs.get_file_info(pafs.FileSelector(root))}
    foreign = sorted(present - set(OUTPUT_NAMES))
    if foreign:
        raise FileExistsError(f"--output {uri} holds files this command did not write ({', '.join(foreign[:5])}): "
                              "choose a new or empty directory")
    if present and not overwrite:
        raise FileExistsError(f"--output {uri} already holds a graph: pass --overwrite to replace it")
    return fs, root


def clear_output(fs: pafs.FileSystem, root: str) -> None:
    """Delete a previous graph under ``root``: ``_SUCCESS`` first, so a crash midway never looks complete."""
    for name in OUTPUT_NAMES:  # _SUCCESS first
        info = fs.get_file_info(f"{root}/{name}")
        if info.type == pafs.FileType.File:
            fs.delete_file(info.path)
        elif info.type == pafs.FileType.Directory:
            fs.delete_dir(info.path)


class PartFiles(FilenameProvider):
    """Output files named by write task, ``part-00000.<format>``, ``part-00001.<format>``, ... (Ray appends a block
    number to Parquet names: ``part-00000-0.parquet``): the same names on every run, never a random one."""

    def __init__(self, file_format: str):
        super().__init__(file_format=file_format)

    def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
        return f"part-{task_index:05d}.{self.file_format}"


def _no_csv_header() -> dict:
    return {"write_options": pacsv.WriteOptions(include_header=False)}


def write_table(
    dataset: ray.data.Dataset, fs: pafs.FileSystem, path: str, schema: pa.Schema, csv: bool = False
) -> None:
    """Write ``dataset`` as ``path/part-*.parquet``, or as headerless ``part-*.csv``, into a ``path`` that must not
    exist yet (``clear_output`` ran), so fixed file names can never mix runs. Ray writes no file for an empty
    dataset; then one empty part with ``schema`` is written, so that readers always find the table."""
    if csv:
        dataset.write_csv(path, filesystem=fs, filename_provider=PartFiles("csv"), arrow_csv_args_fn=_no_csv_header,
                          mode=SaveMode.CREATE)
    else:
        dataset.write_parquet(path, filesystem=fs, filename_provider=PartFiles("parquet"), mode=SaveMode.CREATE)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        fs.create_dir(path)
        with fs.open_output_stream(f"{path}/part-00000.{'csv' if csv else 'parquet'}") as f:
            if csv:
                pacsv.write_csv(schema.empty_table(), f, **_no_csv_header())
            else:
                pq.write_table(schema.empty_table(), f)


def write_neo4j(entities: ray.data.Dataset, relations: ray.data.Dataset, fs: pafs.FileSystem, root: str) -> None:
    """``root/neo4j/{entities,relations}_header.csv`` and headerless ``root/neo4j/{entities,relations}/part-*.csv``:
    ``neo4j-admin database import full --nodes=HEADER,PARTS --relationships=HEADER,PARTS`` reads them."""
    for name, table, to_csv_columns, schema in (
        ("entities", entities, neo4j_nodes, ENTITY_SCHEMA),
        ("relations", relations, neo4j_relationships, RELATION_SCHEMA),
    ):
        columns = to_csv_columns(schema.empty_table()).schema
        csv_rows = table.map_batches(to_csv_columns, batch_format="pyarrow")
        write_table(csv_rows, fs, f"{root}/neo4j/{name}", columns, csv=True)
        storage.write_bytes(fs, f"{root}/neo4j/{name}_header.csv", (",".join(columns.names) + "\n").encode())


# --- the job -------------------------------------------------------------------------------------------------


def check_columns(schema: pa.Schema, uri: str) -> None:
    """Refuse mention files without the columns of the extraction output, or with other types."""
    for name, kind in MENTION_COLUMNS.items():
        if name not in schema.names:
            raise ValueError(f"--mentions {uri}: column {name!r} is missing (columns: {', '.join(schema.names)}); "
                             f"mention files need {', '.join(MENTION_COLUMNS)}")
        if not TYPE_CHECKS[kind](schema.field(name).type):
            raise ValueError(f"--mentions {uri}: column {name!r} has type {schema.field(name).type}, expected {kind}")


def validate_mentions(dataset: ray.data.Dataset, uri: str, min_score: float) -> dict:
    """Check the mention values in one pass; the ``VALIDATION_COUNTS`` (``rows``, ``at_min_score``, ...)."""
    problems = dataset.map_batches(count_problems, batch_format="pyarrow", fn_kwargs={"min_score": min_score})
    counts = problems.aggregate(*(Sum(name, alias_name=name) for name in VALIDATION_COUNTS)) or {}
    if not counts.get("rows"):
        raise ValueError(f"--mentions {uri}: the mention files hold no rows")
    nulls = [name for name in MENTION_COLUMNS if counts[f"null_{name}"]]
    if nulls:
        raise ValueError(f"--mentions {uri}: null values in {', '.join(nulls)} "
                         f"({', '.join(str(counts[f'null_{n}']) for n in nulls)} rows); "
                         "every mention needs all columns")
    if counts["end_before_start"]:
        raise ValueError(f"--mentions {uri}: {counts['end_before_start']} rows have end < start (offsets are "
                         "[start, end), end exclusive)")
    if not counts["at_min_score"]:
        raise ValueError(f"--mentions {uri}: none of the {counts['rows']} mentions has score >= {min_score:g}; "
                         "lower --min-score")
    return counts


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
) -> dict:
    """Build the entity, relation and mention-entity tables from the mentions at ``mentions`` into ``output``;
    returns the counts also written to ``output/_SUCCESS``. See the module docstring for the definitions."""
    if min_count < 1:
        raise ValueError(f"--min-count must be at least 1, got {min_count}")
    if window is not None and window < 0:
        raise ValueError(f"--window must be 'doc' or a number of characters >= 0, got {window}")
    input_fs, input_root, files = find_mention_files(mentions, allow_incomplete)
    output_fs, output_root = check_output(output, overwrite, input_fs, input_root)

    raw = ray.data.read_parquet(files, filesystem=input_fs)
    check_columns(raw.schema().base_schema, mentions)
    # Read once, linked once, held by Ray (spilled to disk when large): validation and the entity, relation and
    # mention-table stages all read it, and normalizing every surface form again for each would cost more.
    linked = raw.map_batches(link_mentions, batch_format="pyarrow").materialize()
    # Compare in the scores' own precision, so that --min-score 0.9 keeps a float32 score of 0.9.
    score_floor = pa.scalar(min_score, raw.schema().base_schema.field("score").type).as_py()
    counts = validate_mentions(linked, mentions, score_floor)
    partitions = partitions or min(MAX_PARTITIONS, math.ceil(counts["rows"] / ROWS_PER_PARTITION))
    logger.info("%d mention rows in %d files, %d with score >= %s; %d shuffle partitions",
                counts["rows"], len(files), counts["at_min_score"], min_score, partitions)

    scored = linked.filter(expr=col("score") >= score_floor)
    all_entities = (
        scored.select_columns(["entity_id", "doc_id", "span", "label", "score"])
        .groupby("entity_id", num_partitions=partitions)
        .map_groups(summarize_entity, batch_format="pyarrow").materialize()
    )
    entities, kept, kept_mentions = all_entities, scored, counts["at_min_score"]
    if min_count > 1:
        entities = all_entities.filter(expr=col("mentions") >= min_count).materialize()
        if entities.count() == 0:
            raise ValueError(f"no entity has --min-count {min_count} mentions (the most mentioned has "
                             f"{all_entities.max('mentions')}): lower --min-count")
        kept_mentions = entities.sum("mentions")
        kept = scored.groupby("entity_id", num_partitions=partitions).map_groups(
            keep_frequent, batch_format="pyarrow", fn_kwargs={"min_count": min_count}
        ).materialize()
    logger.info("%d entities (%d kept with >= %d mentions)", all_entities.count(), entities.count(), min_count)

    relations = (
        kept.select_columns(["doc_id", "entity_id", "start", "end"]).groupby("doc_id", num_partitions=partitions)
        .map_groups(cooccurrences_in_document, batch_format="pyarrow", fn_kwargs={"window": window})
        .groupby(["source_id", "target_id"], num_partitions=partitions)
        .aggregate(Count(alias_name="documents"), Sum("weight", alias_name="weight"))
        .materialize()
    )
    logger.info("%d relations (co-occurrence scope: %s)", relations.count(), "document" if window is None else
                f"{window} characters")

    clear_output(output_fs, output_root)
    write_table(entities, output_fs, f"{output_root}/entities", ENTITY_SCHEMA)
    write_table(relations, output_fs, f"{output_root}/relations", RELATION_SCHEMA)
    write_table(kept, output_fs, f"{output_root}/mention_entities", linked.schema().base_schema)
    if neo4j:
        write_neo4j(entities, relations, output_fs, output_root)

    summary = {
        "mentions": mentions, "files": len(files), "min_score": min_score, "min_count": min_count,
        "window": "doc" if window is None else window,
        "mentions_read": counts["rows"],
        "mentions_below_min_score": counts["rows"] - counts["at_min_score"],
        "mentions_of_rare_entities": counts["at_min_score"] - kept_mentions,
        "mentions_kept": kept_mentions,
        "entities": entities.count(), "relations": relations.count(),
    }
    storage.write_bytes(output_fs, f"{output_root}/_SUCCESS", (json.dumps(summary, indent=2) + "\n").encode())
    logger.info("wrote %s: %s", output, summary)
    return summary


# --- command line --------------------------------------------------------------------------------------------


def parse_window(text: str) -> int | None:
    """``doc`` (None: the whole document) or a number of characters >= 0."""
    if text == "doc":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected 'doc' or a number of characters >= 0, got {text!r}")
    return int(text)


def add_kg_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mentions", required=True,
                        help="extraction output directory (reads its mentions/, needs its _SUCCESS), a directory "
                             "of mention Parquet files, or a glob; local path or s3://")
    parser.add_argument("--output", required=True, help="graph directory (local path or s3://)")
    parser.add_argument("--min-score", type=float, default=0.0, help="drop mentions scored below this")
    parser.add_argument("--min-count", type=int, default=1,
                        help="drop entities with fewer mentions than this, and their edges and mention rows")
    parser.add_argument("--window", type=parse_window, default=None, metavar="doc|N",
                        help="co-occurrence scope: 'doc' (same document, default) or N (at most N characters "
                             "between the two mentions)")
    parser.add_argument("--neo4j", action="store_true", help="also write CSV files for neo4j-admin database import")
    parser.add_argument("--overwrite", action="store_true", help="replace a graph already at --output")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="read an extraction output that has no _SUCCESS yet")
    parser.add_argument("--partitions", type=int, default=None,
                        help=f"shuffle partitions (default: one per {ROWS_PER_PARTITION} mentions, at most "
                             f"{MAX_PARTITIONS})")


def run_kg(args: argparse.Namespace) -> None:
    build_graph(
        args.mentions, args.output, min_score=args.min_score, min_count=args.min_count, window=args.window,
        neo4j=args.neo4j, overwrite=args.overwrite, allow_incomplete=args.allow_incomplete,
        partitions=args.partitions,
    )
