"""The ``gliner-ray`` command: one subcommand per job. ``jobs/*.py`` call ``main`` with their subcommand, so
``ray job submit ... -- python jobs/X.py`` takes exactly the flags of ``gliner-ray X``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import tempfile
import time
import traceback
from typing import Sequence

from ..cluster import Interrupted, failure_line, root_cause
from .args import DefaultsHelpFormatter, make_paths_absolute

# name: one-line help; the flags and the run function live in gliner_ray/cli/<name>.py
COMMANDS = {
    "predict": "print the entities a model finds in texts",
    "extract": "extract entity mentions from a sharded corpus into Parquet, on Ray",
    "train": "train or fine-tune GLiNER on Ray Train (resumable)",
    "evaluate": "score a model on NER datasets (P/R/F1)",
    "kg": "build entity and co-occurrence tables from extracted mentions",
}
RAY_JOBS = ("extract", "train", "kg")


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
        sub.add_argument("--verbose", action="store_true", help="also Ray's own log lines and progress bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    make_paths_absolute(args, args.command)  # Ray workers run in directories of their own
    if args.command in RAY_JOBS:
        from ..cluster import set_verbose

        set_verbose(args.verbose)
    try:
        args.run(args)
    except (KeyboardInterrupt, Interrupted) as stop:
        print(f"gliner-ray {args.command}: {stop or 'interrupted'}", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, OSError) as error:
        if root_cause(error) is error and not type(error).__module__.startswith("ray."):
            print(f"gliner-ray {args.command}: error: {error}", file=sys.stderr)
            return 2
        return report_failure(args.command, error)
    except Exception as error:
        return report_failure(args.command, error)
    return 0


def report_failure(command: str, error: Exception) -> int:
    """One line for a failure inside Ray (what failed, where the full traceback is); exit code 1."""
    folder = os.path.join(tempfile.gettempdir(), "gliner-ray")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{command}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log")
    with open(path, "w", encoding="utf-8") as log:
        traceback.print_exception(error, file=log)
    print(f"gliner-ray {command}: error: {failure_line(error)}; fix it and run the same command again (it resumes); "
          f"the full traceback is in {path}", file=sys.stderr)
    return 1
