"""The ``gliner-ray`` command: one subcommand per job. ``jobs/*.py`` call ``main`` with their subcommand, so
``ray job submit ... -- python jobs/X.py`` takes exactly the flags of ``gliner-ray X``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from .args import DefaultsHelpFormatter

# name: one-line help; the flags and the run function live in gliner_ray/cli/<name>.py
COMMANDS = {
    "predict": "print the entities a model finds in texts",
    "extract": "extract entity mentions from a sharded corpus into Parquet, on Ray",
    "train": "train or fine-tune GLiNER on Ray Train (resumable)",
    "evaluate": "score a model on NER datasets (P/R/F1)",
    "kg": "build entity and co-occurrence tables from extracted mentions",
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="gliner-ray", description="Open-type NER (GLiNER) at corpus scale, on Ray.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text, formatter_class=DefaultsHelpFormatter)
        if argv and argv[0] == name:  # import only the chosen command: each one pulls in Ray or torch
            command = importlib.import_module(f"{__package__}.{name}")
            command.add_arguments(sub)
            sub.set_defaults(run=command.run)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"gliner-ray {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
