"""Bi-encoder speed against the number of labels: texts/s at 10, 100 and 1,000 labels beside a uni-encoder at 10.

    python benchmarks/bench_biencoder.py ../shared/data/crossner/ai/dev.txt

Builds, with the reference library, a uni-encoder span GLiNER on the real MiniLM encoder and a bi-encoder span
GLiNER with MiniLM for both texts and labels (random heads: speed only), loads both in gliner_ray and times
``predict`` on the same texts, alternating runs so machine load hits all alike. The first 10 labels are entity
types; the others are distinct words of the data. The bi-encoder's label vectors are computed once, on the first
call (timed apart), and reused. The threshold is high so that decoding, the same in both, stays out of the way.
"""

from __future__ import annotations

import statistics
import tempfile
import time

from _common import argument_parser, minilm

import torch

from gliner_ray import GLiNER
from gliner_ray.data import read_conll

TYPES = ["person", "organization", "location", "algorithm", "programming language", "field", "product",
         "conference", "country", "university"]


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("data", help="a BIO file; its sentences become the texts (e.g. crossner/ai/dev.txt)")
    parser.add_argument("--texts", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()

    from gliner import GLiNER as ReferenceGLiNER
    from gliner import GLiNERConfig as ReferenceConfig

    torch.set_num_threads(args.threads)
    examples = read_conll(args.data).examples
    texts = [" ".join(example.words) for example in examples[: args.texts]]
    vocabulary = dict.fromkeys(w.lower() for e in examples for w in e.words if w.isalpha() and len(w) > 3)
    labels = list(dict.fromkeys([*TYPES, *vocabulary]))[:1000]
    assert len(labels) == 1000, f"{args.data} has too few distinct words for 1,000 labels"
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(f"{len(texts)} texts, {words:.1f} words each on average, batch {args.batch_size}, {args.threads} threads")

    encoder = minilm()
    with tempfile.TemporaryDirectory() as uni_dir, tempfile.TemporaryDirectory() as bi_dir:
        torch.manual_seed(0)
        ReferenceGLiNER.from_config(ReferenceConfig(model_name=encoder, hidden_size=512)).save_pretrained(uni_dir)
        ReferenceGLiNER.from_config(
            ReferenceConfig(model_name=encoder, labels_encoder=encoder, hidden_size=512)
        ).save_pretrained(bi_dir)
        uni = GLiNER.from_pretrained(uni_dir, device="cpu")
        bi = GLiNER.from_pretrained(bi_dir, device="cpu")

    runs = {"uni-encoder, 10 labels": (uni, labels[:10])}
    for count in (10, 100, 1000):
        model, label_set = bi, labels[:count]
        start = time.perf_counter()
        model.encode_labels(label_set)
        print(f"bi-encoder: {count} label vectors computed once in {time.perf_counter() - start:.2f} s")
        runs[f"bi-encoder, {count} labels"] = (model, label_set)
    for model, label_set in runs.values():  # warm-up
        model.predict(texts[:8], label_set, threshold=args.threshold, batch_size=args.batch_size)

    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, (model, label_set) in runs.items():
            start = time.perf_counter()
            model.predict(texts, label_set, threshold=args.threshold, batch_size=args.batch_size)
            seconds[name].append(time.perf_counter() - start)

    baseline = len(texts) / statistics.median(seconds["uni-encoder, 10 labels"])
    print(f"{'model':<26} {'texts/s':>8} {'vs uni-encoder at 10':>21}")
    for name, times in seconds.items():
        speed = len(texts) / statistics.median(times)
        print(f"{name:<26} {speed:8.1f} {speed / baseline:20.2f}x")


if __name__ == "__main__":
    main()
