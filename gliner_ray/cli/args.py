"""Flags and flag checks that several commands share: entity labels, precision, comma lists, counts, and the
``--help`` format."""

from __future__ import annotations

import argparse
import logging
import os

from ..storage import absolute
from ..text import label_key

log = logging.getLogger(__name__)

# Per command, the flags naming local files or folders (s3:// URIs stay as they are); --train and --eval take
# comma-separated lists. Model flags (--model, --init, --backbone) are made absolute only when they exist here:
# otherwise they are hub ids.
PATH_FLAGS = {
    "extract": ("input", "output"), "train": ("train", "eval", "output"), "kg": ("mentions", "relations", "output"),
    "evaluate": ("data", "output"),
}
COMMA_LIST_FLAGS = ("train", "eval")
MODEL_FLAGS = ("model", "init", "backbone")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` that ends each flag's line with its default, except where there is no value to show: switches
    (``--overwrite``), defaults of None (the help says what happens instead) and help that already names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.nargs == 0 or action.default is None or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_label_arguments(parser: argparse.ArgumentParser, required: bool = True) -> argparse._MutuallyExclusiveGroup:
    """--labels and --labels-file, alternatives; the group, for a command to add one of its own."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--labels", help='entity types, comma-separated: "person,organization,location"')
    group.add_argument("--labels-file", help="a file with one entity type per line (blank and # lines skipped)")
    return group


def labels_from_args(args: argparse.Namespace) -> list[str]:
    """The entity types given by --labels or --labels-file, stripped, empty entries dropped, and types that differ
    only in case or spacing merged into the first one written (with a warning)."""
    labels = read_labels_file(args.labels_file) if args.labels_file else comma_list(args.labels or "")
    if not labels:
        raise ValueError("no entity types given: pass --labels 'person,organization' or a non-empty --labels-file")
    return merge_similar_labels(labels)


def read_labels_file(path: str) -> list[str]:
    """The lines of a labels file, stripped; blank lines and ``#`` comment lines skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as error:
        reason = error.reason if isinstance(error, UnicodeDecodeError) else error.strerror
        raise ValueError(f"--labels-file {path}: cannot read it ({reason}); give a UTF-8 file with one entity "
                         f"type per line") from None
    return [line for line in lines if line and not line.startswith("#")]


def merge_similar_labels(labels: list[str]) -> list[str]:
    """``["Person", "person", "new  york"]`` -> ``["Person", "new  york"]``: one type per spelling that differs only
    in letter case or in the spaces between words; the first spelling is kept, and the merge logged."""
    kept: dict[str, str] = {}
    for label in labels:
        key = label_key(label)
        if key not in kept:
            kept[key] = label
        elif kept[key] != label:
            log.warning("entity types %r and %r differ only in case or spacing: using %r", kept[key], label, kept[key])
    return list(kept.values())


def comma_list(text: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']: the parts of a comma-separated flag, stripped, empty ones dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    from ..precision import PRECISIONS  # torch: only for the commands that load a model

    parser.add_argument(
        "--precision", choices=PRECISIONS, default="fp32",
        help="the model's number format: fp32 (the reference's scores), bf16, fp16 (GPUs only), or auto "
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
