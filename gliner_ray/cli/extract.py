"""``gliner-ray extract``: its flags, and the call into the job (``gliner_ray.extract``)."""

from __future__ import annotations

import argparse
import os

from ..cluster import ADDRESS_HELP
from ..corpus import MAX_RECORD_BYTES
from ..extract import Limits, Scale, Settings, extract
from ..extract.early_stop import EARLY_STOP_RECORDS
from ..shards import FORMATS, SPLIT_BYTES
from ..predict.relex import MAX_PAIRS
from .args import add_label_arguments, add_precision_argument, comma_list, labels_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="a file, directory, glob or s3://bucket/prefix of text shards")
    parser.add_argument("--format", choices=FORMATS, help="input format (default: from the file extensions)")
    parser.add_argument("--id-field", default="id", help="document id field or column")
    parser.add_argument("--text-field", default="text", help="document text field or column")
    add_label_arguments(parser).add_argument(
        "--labels-field", help="read each document's own entity types from this field or column (a list of strings) "
                               "instead of --labels; records without usable ones go to errors/")
    parser.add_argument("--model", required=True, help="hub id (urchade/gliner_small-v2.1) or checkpoint directory")
    parser.add_argument("--threshold", type=float, default=0.5, help="keep spans scoring above this")
    nesting = parser.add_mutually_exclusive_group()
    nesting.add_argument("--flat", dest="flat_ner", action="store_true", default=True, help="no overlapping mentions (default)")
    nesting.add_argument("--nested", dest="flat_ner", action="store_false", help="allow fully nested mentions")
    parser.add_argument("--multi-label", action="store_true", help="allow one span to carry several types")
    parser.add_argument("--relations", help='relation types, comma-separated: "works for,located in" (relex models; '
                        'writes relations/ beside mentions/)')
    parser.add_argument("--relation-threshold", type=float, help="keep relations scoring above this (default: --threshold)")
    parser.add_argument("--max-pairs", type=int, default=MAX_PAIRS, help=f"relex: entity pairs scored per window at most, "
                        f"the best-scoring entities' first; _SUCCESS counts the pairs left out (default: {MAX_PAIRS})")
    parser.add_argument("--output", required=True, help="output directory, local or s3://")
    parser.add_argument("--overwrite", action="store_true", help="delete earlier results in --output and start again")
    parser.add_argument("--max-chars", type=int, help="send documents longer than this to errors/ (default: no cap)")
    parser.add_argument("--max-record-size", type=_byte_size, default=f"{MAX_RECORD_BYTES >> 20}MiB",
                        help="send a line or document over this size to errors/ instead of holding it in memory, "
                             "e.g. 64MiB, 0 for no cap")
    parser.add_argument("--split-size", type=_byte_size, default=f"{SPLIT_BYTES >> 20}MiB",
                        help="read JSON Lines and Parquet files over this size in pieces of about this size, e.g. "
                             "500KB, 1GiB, 0 for never")
    parser.add_argument("--early-stop-records", type=int, default=EARLY_STOP_RECORDS,
                        help="stop before any work when the first this many records all fail for one reason (a "
                             "wrong --text-field or --format); 0: never")
    parser.add_argument("--max-error-rate", type=float,
                        help="stop once more than this share of the records read (at least --early-stop-records of "
                             "them) failed, e.g. 0.1 (default: never)")
    add_precision_argument(parser)
    scale = parser.add_argument_group("scale")
    scale.add_argument("--actors", type=_actor_range, help="model actors: N, or MIN,MAX to autoscale (default: one per GPU; on CPU-only clusters, all CPUs / --cpus-per-actor)")
    scale.add_argument("--num-gpus-per-actor", type=float, help="default: 1 when the cluster has GPUs, else 0")
    scale.add_argument("--cpus-per-actor", type=int, default=1, help="CPUs (and torch threads) per model actor")
    scale.add_argument("--batch-size", type=int, help="model rows (windows of up to 384 words) per forward pass (default: 32 on GPU, 8 on CPU)")
    scale.add_argument("--max-tokens", type=int, help="padded sub-tokens per forward pass: rows of like length are batched together up to this (default: 16384 on GPU; on CPU, --batch-size 8 instead)")
    scale.add_argument("--cpu-workers", type=int, help="with GPU actors: concurrent tasks reading and tokenizing (default: as many as fit)")
    scale.add_argument("--chunk-size", type=int, default=256, help="documents per unit of work and output file")
    parser.add_argument("--s3-endpoint", help="S3-compatible endpoint URL (sets AWS_ENDPOINT_URL for the driver and workers)")
    parser.add_argument("--address", help=ADDRESS_HELP)


def _byte_size(value: str) -> int | None:
    """``64MiB``, ``500KB``, ``1G`` or a plain number of bytes; 0 means no splitting (None)."""
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    number = value.strip().lower().removesuffix("b").removesuffix("i")
    try:
        size = int(float(number[:-1] if number[-1:] in units else number) * units.get(number[-1:], 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 64MiB, 500KB or 1048576, got {value!r}") from None
    return size or None


def _actor_range(value: str) -> tuple[int, int]:
    """``N`` or ``MIN,MAX`` model actors."""
    parts = value.split(",")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected N or MIN,MAX, got {value!r}")
    return numbers[0], numbers[-1]


def run(args: argparse.Namespace) -> None:
    worker_env = {}
    if args.s3_endpoint:
        os.environ["AWS_ENDPOINT_URL"] = worker_env["AWS_ENDPOINT_URL"] = args.s3_endpoint
    model = os.path.abspath(args.model) if os.path.isdir(args.model) else args.model
    settings = Settings(
        model=model, labels=() if args.labels_field else tuple(labels_from_args(args)), labels_field=args.labels_field,
        threshold=args.threshold, flat_ner=args.flat_ner,
        multi_label=args.multi_label, id_field=args.id_field, text_field=args.text_field, max_chars=args.max_chars,
        max_record_bytes=args.max_record_size,
        split_bytes=args.split_size, precision=args.precision, relations=tuple(comma_list(args.relations or "")),
        relation_threshold=args.relation_threshold, max_pairs=args.max_pairs,
    )
    scale = Scale(
        actors=args.actors, num_gpus_per_actor=args.num_gpus_per_actor, cpus_per_actor=args.cpus_per_actor,
        batch_size=args.batch_size, max_tokens=args.max_tokens, cpu_workers=args.cpu_workers, chunk_size=args.chunk_size,
    )
    limits = Limits(early_stop_records=args.early_stop_records, max_error_rate=args.max_error_rate)
    extract(args.input, args.output, settings, scale, args.format, args.overwrite, args.address, worker_env or None, limits)
