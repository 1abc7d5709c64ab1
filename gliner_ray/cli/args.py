"""Flags and flag checks that several commands share: entity labels, precision, comma lists, counts."""

from __future__ import annotations

import argparse


def add_label_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--labels", help='entity types, comma-separated: "person,organization,location"')
    group.add_argument("--labels-file", help="a file with one entity type per line")


def labels_from_args(args: argparse.Namespace) -> list[str]:
    """The entity types given by --labels or --labels-file, stripped, empty entries dropped."""
    if args.labels_file:
        with open(args.labels_file, encoding="utf-8") as f:
            labels = [line.strip() for line in f]
    else:
        labels = comma_list(args.labels or "")
    labels = [label for label in labels if label]
    if not labels:
        raise ValueError("no entity types given: pass --labels 'person,organization' or a non-empty --labels-file")
    return labels


def comma_list(text: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']: the parts of a comma-separated flag, stripped, empty ones dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    from ..precision import PRECISIONS  # torch: only for the commands that load a model

    parser.add_argument(
        "--precision", choices=PRECISIONS, default="fp32",
        help="the model's number format: fp32 (default: the reference's scores), bf16, fp16 (GPUs only), or auto "
             "(bf16 where native: recent GPUs, CPUs with AVX512-BF16/AMX; fp16 on older GPUs; else fp32)",
    )
