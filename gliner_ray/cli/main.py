"""The ``gliner-ray`` command: one subcommand per job. ``jobs/*.py`` call ``main`` with their subcommand, so
``ray job submit ... -- python jobs/X.py`` takes exactly the flags of ``gliner-ray X``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

# name: (module, its function that adds the flags, its function that runs the command, one-line help)
COMMANDS = {
    "predict": ("gliner_ray.cli", "add_predict_arguments", "run_predict", "print the entities a model finds in texts"),
    "extract": ("gliner_ray.pipeline", "add_extract_arguments", "run_extract", "extract entity mentions from a sharded corpus into Parquet, on Ray"),
    "train": ("gliner_ray.train", "add_train_arguments", "run_train", "train or fine-tune GLiNER on Ray Train (resumable)"),
    "evaluate": ("gliner_ray.evaluate", "add_evaluate_arguments", "run_evaluate", "score a model on NER datasets (P/R/F1)"),
    "kg": ("gliner_ray.kg", "add_kg_arguments", "run_kg", "build entity and co-occurrence tables from extracted mentions"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="gliner-ray", description="Open-type NER (GLiNER) at corpus scale, on Ray.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, add_arguments, run, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if argv and argv[0] == name:  # import only the chosen command: each module pulls in Ray or torch
            module = importlib.import_module(module_name)
            getattr(module, add_arguments)(sub)
            sub.set_defaults(run=getattr(module, run))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"gliner-ray {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


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
        labels = [part.strip() for part in (args.labels or "").split(",")]
    labels = [label for label in labels if label]
    if not labels:
        raise ValueError("no entity types given: pass --labels 'person,organization' or a non-empty --labels-file")
    return labels


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    from .precision import PRECISIONS

    parser.add_argument(
        "--precision", choices=PRECISIONS, default="fp32",
        help="the model's number format: fp32 (default: the reference's scores), bf16, fp16 (GPUs only), or auto "
             "(bf16 where native: recent GPUs, CPUs with AVX512-BF16/AMX; fp16 on older GPUs; else fp32)",
    )


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="+", help="texts to read (use - to read one text per line from stdin)")
    parser.add_argument("--model", required=True, help="hub id (urchade/gliner_small-v2.1) or checkpoint directory")
    add_label_arguments(parser)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--nested", action="store_true", help="allow fully nested entities")
    parser.add_argument("--multi-label", action="store_true", help="allow one span to carry several types")
    parser.add_argument("--relations", help='relation types, comma-separated: "works for,located in" (relex models)')
    add_precision_argument(parser)


def run_predict(args: argparse.Namespace) -> None:
    import json

    from .gliner import GLiNER

    texts = [line.rstrip("\n") for line in sys.stdin] if args.texts == ["-"] else args.texts
    model = GLiNER.from_pretrained(args.model, dtype=args.precision)
    options = dict(threshold=args.threshold, flat_ner=not args.nested, multi_label=args.multi_label)
    relations = [part.strip() for part in (args.relations or "").split(",") if part.strip()]
    if relations:
        if not hasattr(model, "predict_relations"):
            raise ValueError(f"--relations needs a relation extraction (relex) checkpoint; {args.model} extracts "
                             f"entities only")
        predictions, found = model.predict_relations(texts, labels_from_args(args), relations, **options)
        for text, entities, text_relations in zip(texts, predictions, found):
            print(json.dumps({"text": text, "entities": entities, "relations": text_relations}, ensure_ascii=False))
        return
    predictions = model.predict(texts, labels_from_args(args), **options)
    for text, entities in zip(texts, predictions):
        print(json.dumps({"text": text, "entities": entities}, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
