"""``gliner-ray evaluate``: score a model on NER datasets (exact-match P/R/F1) and write the report."""

from __future__ import annotations

import argparse
import logging

from ..checks import check_at_least, check_threshold
from ..data import FORMATS, load_label_map, read_dataset
from ..evaluate import (REPORT_FILES, average_scores, check_dataset, check_output, dataset_names, evaluate_dataset,
                        remove_old_report, summary_table, write_report)
from .args import add_precision_argument

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="hub id (urchade/gliner_small-v2.1) or checkpoint directory")
    parser.add_argument("--data", nargs="+", required=True, metavar="PATH", help="datasets, local paths or s3:// URIs")
    parser.add_argument("--format", choices=FORMATS, help="dataset format (default: from the extension and content)")
    parser.add_argument(
        "--label-map", help='JSON object or JSON file renaming tag names to entity types, e.g. \'{"PER": "person"}\''
    )
    parser.add_argument("--threshold", type=float, default=0.5, help="minimum span score")
    decoding = parser.add_mutually_exclusive_group()
    decoding.add_argument("--flat", dest="flat_ner", action="store_true", default=True, help="no overlapping entities (default)")
    decoding.add_argument("--nested", dest="flat_ner", action="store_false", help="allow fully nested entities")
    parser.add_argument("--batch-size", type=int, default=8, help="model rows per forward pass")
    parser.add_argument("--output", required=True, help="folder or URI for report.json, report.md and report.png")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished report already at --output")
    add_precision_argument(parser)


def run(args: argparse.Namespace) -> None:
    """Check the flags and the output, read the datasets, then load the model, score it and write the report."""
    import torch  # loaded only once the flags are read

    from ..precision import inference_dtype
    from ..predict import GLiNER

    check_threshold(args.threshold, "--threshold")
    check_at_least(args.batch_size, "--batch-size")
    inference_dtype(args.precision, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    names = dataset_names(args.data)
    check_output(args.output, args.overwrite)
    label_map = load_label_map(args.label_map) if args.label_map else None
    datasets = {name: read_dataset(path, args.format, label_map) for name, path in zip(names, args.data)}
    for name, dataset in datasets.items():
        check_dataset(dataset, name)
    remove_old_report(args.output)
    model = GLiNER.from_pretrained(args.model, dtype=args.precision)
    log.info("evaluating %s on %s in %s", args.model, model.device, next(model.model.parameters()).dtype)
    results = {}
    for (name, dataset), path in zip(datasets.items(), args.data):
        result = evaluate_dataset(model, dataset, name, args.threshold, args.flat_ner, args.batch_size)
        results[name] = {"path": path, **result}
        log.info("%s: P %.1f R %.1f F1 %.1f", name, *(100 * result[k] for k in ("precision", "recall", "f1")))
    report = {
        "model": str(args.model),
        "threshold": args.threshold,
        "flat_ner": args.flat_ner,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "datasets": results,
        "average": average_scores(results),
    }
    write_report(report, args.output)
    print("\n".join(summary_table(report)))
    log.info("wrote %s under %s", ", ".join(REPORT_FILES), args.output)
