"""Flags and flag checks that several commands share: entity labels, precision, comma lists, counts."""

from __future__ import annotations

import argparse
import os

from ..storage import absolute

# Per command, the flags naming local files or folders (s3:// URIs stay as they are); --train and --eval take
# comma-separated lists. Model flags (--model, --init, --backbone) are made absolute only when they exist here:
# otherwise they are hub ids.
PATH_FLAGS = {
    "extract": ("input", "output"), "train": ("train", "eval", "output"), "kg": ("mentions", "relations", "output"),
    "evaluate": ("data", "output"),
}
COMMA_LIST_FLAGS = ("train", "eval")
MODEL_FLAGS = ("model", "init", "backbone")


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


def make_paths_absolute(args: argparse.Namespace, command: str) -> None:
    """Make the local paths among ``args`` absolute, here on the driver, before any Ray worker (which runs in a
    working directory of its own) sees them."""
    for name in PATH_FLAGS.get(command, ()):
        value = getattr(args, name, None)
        if isinstance(value, list):
            setattr(args, name, [absolute(v) for v in value])
        elif isinstance(value, str) and name in COMMA_LIST_FLAGS:
            setattr(args, name, ",".join(absolute(v) for v in comma_list(value)))
        elif isinstance(value, str):
            setattr(args, name, absolute(value))
    for name in MODEL_FLAGS:
        value = getattr(args, name, None)
        if isinstance(value, str) and os.path.exists(os.path.expanduser(value)):
            setattr(args, name, absolute(value))
