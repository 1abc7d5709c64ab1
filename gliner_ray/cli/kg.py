"""``gliner-ray kg``: its flags, and the call into the job (``gliner_ray.kg``)."""

from __future__ import annotations

import argparse

from ..cluster import ADDRESS_HELP
from ..kg import build_graph
from ..kg.graph import BYTES_PER_PARTITION, MAX_PARTITIONS
from ..kg.graphdb import import_ladybug, load_graph
from ..kg.resolve import MODES, Resolution


def parse_window(text: str) -> int | None:
    """``doc`` (None: the whole document) or a number of characters >= 0."""
    if text == "doc":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected 'doc' or a number of characters >= 0, got {text!r}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``gliner-ray kg`` (and ``jobs/build_kg.py``)."""
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
    parser.add_argument("--relations", default=None,
                        help="relation Parquet files (directory, glob, or extraction output) for typed edges; "
                             "default: the relations/ beside the --mentions extraction output's mentions/, if any")
    parser.add_argument("--neo4j", action="store_true", help="also write CSV files for neo4j-admin database import")
    parser.add_argument("--overwrite", action="store_true", help="replace a graph already at --output")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="read an extraction output that has no _SUCCESS yet")
    parser.add_argument("--resolve", choices=MODES, default="corpus",
                        help="entity resolution: 'none' (normalized surface forms only), 'documents' (also aliases "
                             "and acronyms within each document), 'corpus' (default: also short forms the corpus "
                             "agrees on, and near-duplicate names); every merge is explained in aliases/")
    parser.add_argument("--alias-agreement", type=float, default=Resolution.agreement,
                        help="a short form seen alone merges into the long form that at least this share of the "
                             "documents resolving it agree on (default %(default)s)")
    parser.add_argument("--alias-min-documents", type=int, default=Resolution.min_documents,
                        help="...and that at least this many documents resolve it (default %(default)s)")
    parser.add_argument("--similarity", type=float, default=Resolution.similarity,
                        help="near-duplicate names of one type merge at this similarity (0..1, default %(default)s)")
    parser.add_argument("--graphdb", default=None, metavar="PATH",
                        help="also load the graph into an embedded LadybugDB database at PATH (Cypher; needs "
                             "gliner-ray[graph] and a local --output); --overwrite replaces one there")
    parser.add_argument("--partitions", type=int, default=None,
                        help=f"hash partitions of the shuffles (default: one per {BYTES_PER_PARTITION >> 20} MiB of "
                             f"input, at least one per CPU, at most {MAX_PARTITIONS})")
    parser.add_argument("--address", help=ADDRESS_HELP)


def run(args: argparse.Namespace) -> None:
    """Build the graph the flags describe (and load it into the graph database)."""
    if args.graphdb:
        try:
            import_ladybug()  # before any work
        except ImportError as error:
            raise ValueError(str(error)) from None
    build_graph(
        args.mentions, args.output, min_score=args.min_score, min_count=args.min_count, window=args.window,
        neo4j=args.neo4j, overwrite=args.overwrite, allow_incomplete=args.allow_incomplete,
        partitions=args.partitions, relations=args.relations, address=args.address,
        resolution=Resolution(args.resolve, args.alias_agreement, args.alias_min_documents, args.similarity),
    )
    if args.graphdb:
        load_graph(args.output, args.graphdb, args.overwrite)
