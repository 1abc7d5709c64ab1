"""What relation extraction costs against the entities per window: documents/s of ``predict`` (entities) and
``predict_relations`` (entities and relations) on the same relex model and documents, at 5, 20 and 50 candidate
entities per window, side by side in one process.

    python benchmarks/bench_relex.py ../shared/data/crossner/ai/dev.txt --docs 24 --rounds 1

The model is a relex checkpoint built and saved by the reference library on the real MiniLM encoder (hidden 512,
``relations_layer`` dot, random heads). Documents are the file's sentences joined to about 300 words (one window
each). The entity threshold is the knob: for E entities per window it is the score of the (E x windows)-th best
candidate span of all the windows (random heads score in a narrow band, so a sample's threshold would miss the
count), and each window pairs every two of its spans above it (E(E-1) pairs; the ``max_pairs`` cap of 2,048 is
reached from 46 entities on). Entities per window are an average: windows vary around it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import LABELS, argument_parser, make_documents, minilm, read_sentences

RELATIONS = ["part of", "used for", "developed by", "works at"]


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("sentences", help="a BIO-column file, e.g. ../shared/data/crossner/ai/dev.txt")
    parser.add_argument("--docs", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--entities", type=int, nargs="+", default=[5, 20, 50], help="candidate entities per window")
    args = parser.parse_args()

    import torch
    from gliner import GLiNER as ReferenceGLiNER
    from gliner import GLiNERConfig as ReferenceConfig

    from gliner_ray import GLiNER

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    path = Path(tempfile.mkdtemp(prefix="bench-relex-")) / "model"
    ReferenceGLiNER.from_config(ReferenceConfig(model_name=minilm(), hidden_size=512,
                                                relations_layer="dot")).save_pretrained(path)
    model = GLiNER.from_pretrained(path, device="cpu")
    documents = make_documents(read_sentences(args.sentences), args.docs, words_each=300)
    words = sum(len(d.split()) for d in documents)
    sample = model.split_texts(documents)[1]  # rows as predict_relations makes them: relations in the prompt
    rows = [r for i, split in enumerate(sample) for r in model.prompt_tokenizer.rows(
        i, split.words, LABELS, model.config.max_len, model.config.max_width, RELATIONS)]
    scores = sorted((c.score for spans in model.score_rows(rows, 1e-6) for c in spans), reverse=True)
    print(f"{len(documents)} documents, {words:,} words, {len(rows) / len(sample):.2f} windows per document, "
          f"{args.threads} threads")
    model.predict(documents[:2], LABELS, threshold=0.5)  # warm-up

    print(f"{'entities/window':>15} {'threshold':>9} {'predict docs/s':>14} {'relations docs/s':>16} {'ratio':>6} "
          f"{'relations found':>15} {'pairs dropped':>13}")
    for per_window in args.entities:
        threshold = scores[per_window * len(rows)]
        timings = {"entities": [], "relations": []}
        dropped = model.dropped_pairs
        for _ in range(args.rounds):
            start = time.perf_counter()
            model.predict(documents, LABELS, threshold=threshold)
            timings["entities"].append(time.perf_counter() - start)
            start = time.perf_counter()
            found = sum(map(len, model.predict_relations(documents, LABELS, RELATIONS, threshold=threshold)[1]))
            timings["relations"].append(time.perf_counter() - start)
        entities, relations = (len(documents) / min(timings[k]) for k in ("entities", "relations"))
        print(f"{per_window:>15} {threshold:9.4f} {entities:14.2f} {relations:16.2f} {relations / entities:5.2f}x "
              f"{found:>15} {(model.dropped_pairs - dropped) // args.rounds:>13}")


if __name__ == "__main__":
    main()
