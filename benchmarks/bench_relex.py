"""What relation extraction costs: documents/s of ``predict`` (entities) against ``predict_relations`` (entities
and relations) on the same relex model and documents, side by side in one process.

    python benchmarks/bench_relex.py ../shared/data/crossner/ai/dev.txt --docs 48

The model is a relex checkpoint built and saved by the reference library on the real MiniLM encoder (hidden 512,
``relations_layer`` dot, random heads). Documents are the file's sentences joined to about 300 words. The entity
threshold keeps about one candidate span per 20 words, as a trained model's few; that sets how many spans are
paired (each window pairs every two of its spans above the threshold). Rounds alternate so that machine load hits
both alike.
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
    rows = [r for i, d in enumerate(documents[:8]) for r in model.prompt_tokenizer.rows(i, d.split(), LABELS, 384, 12)]
    scores = sorted((c.score for spans in model.score_rows(rows, 1e-6) for c in spans), reverse=True)
    threshold = scores[sum(len(d.split()) for d in documents[:8]) // 20]
    print(f"{len(documents)} documents, {words:,} words, threshold {threshold:.4f}, {args.threads} threads")

    def entities() -> int:
        return sum(map(len, model.predict(documents, LABELS, threshold=threshold)))

    def relations() -> int:
        return sum(map(len, model.predict_relations(documents, LABELS, RELATIONS, threshold=threshold)[1]))

    model.predict(documents[:2], LABELS, threshold=threshold)  # warm-up
    timings = {"predict (entities)": [], "predict_relations": []}
    found = {}
    for _ in range(args.rounds):
        for name, run in (("predict (entities)", entities), ("predict_relations", relations)):
            start = time.perf_counter()
            found[name] = run()
            timings[name].append(time.perf_counter() - start)
    base = len(documents) / min(timings["predict (entities)"])
    for name, seconds in timings.items():
        rate = len(documents) / min(seconds)
        print(f"{name:20s} {rate:8.2f} docs/s  {rate / base:5.2f}x  ({found[name]} found)")


if __name__ == "__main__":
    main()
