"""``gliner-ray predict``: print the entities (and, with a relex model, relations) a model finds in a few texts."""

from __future__ import annotations

import argparse
import json
import sys

from .args import add_label_arguments, add_precision_argument, comma_list, labels_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="+", help="texts to read (use - to read one text per line from stdin)")
    parser.add_argument("--model", required=True, help="hub id (urchade/gliner_small-v2.1) or checkpoint directory")
    add_label_arguments(parser)
    parser.add_argument("--threshold", type=float, default=0.5, help="keep spans scoring above this")
    parser.add_argument("--nested", action="store_true", help="allow fully nested entities")
    parser.add_argument("--multi-label", action="store_true", help="allow one span to carry several types")
    parser.add_argument("--relations", help='relation types, comma-separated: "works for,located in" (relex models)')
    add_precision_argument(parser)


def run(args: argparse.Namespace) -> None:
    from ..predict import GLiNER

    texts = [line.rstrip("\n") for line in sys.stdin] if args.texts == ["-"] else args.texts
    model = GLiNER.from_pretrained(args.model, dtype=args.precision)
    options = dict(threshold=args.threshold, flat_ner=not args.nested, multi_label=args.multi_label)
    relations = comma_list(args.relations or "")
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
