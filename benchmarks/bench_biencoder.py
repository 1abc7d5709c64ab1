"""Bi-encoder speed and memory against the number of labels: texts/s and peak memory at 10, 100, 1,000 and 5,000
labels, beside a uni-encoder at the same counts (labels that do not fit its prompt run in label passes).

    python benchmarks/bench_biencoder.py ../shared/data/crossner/ai/dev.txt --texts 24 --repeats 1

Builds, with the reference library, a uni-encoder span GLiNER on the real MiniLM encoder and a bi-encoder span
GLiNER with MiniLM for both texts and labels (random heads: speed only), loads both in gliner_ray and times
``predict`` on the same texts in one process. The first 10 labels are entity types; the others are distinct words
of the data (then pairs of them). The bi-encoder's label vectors are computed once, before (timed apart), and
reused. The threshold is high so that decoding, the same in both, stays out of the way. Memory: the process's peak
RSS during each timed run (VmHWM, reset before it), and that peak less the RSS before the run.
"""

from __future__ import annotations

import statistics
import tempfile
import time

from _common import ProcessPeak, argument_parser, minilm

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
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 100, 1000, 5000], help="label counts")
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()

    from gliner import GLiNER as ReferenceGLiNER
    from gliner import GLiNERConfig as ReferenceConfig

    torch.set_num_threads(args.threads)
    examples = read_conll(args.data).examples
    texts = [" ".join(example.words) for example in examples[: args.texts]]
    labels = label_list(examples, max(args.labels))
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(f"{len(texts)} texts, {words:.1f} words each on average, batch {args.batch_size}, {args.threads} threads")

    encoder = minilm()
    with tempfile.TemporaryDirectory() as uni_dir, tempfile.TemporaryDirectory() as bi_dir:
        torch.manual_seed(0)
        ReferenceGLiNER.from_config(ReferenceConfig(model_name=encoder, hidden_size=512)).save_pretrained(uni_dir)
        ReferenceGLiNER.from_config(
            ReferenceConfig(model_name=encoder, labels_encoder=encoder, hidden_size=512)
        ).save_pretrained(bi_dir)
        models = {"uni": GLiNER.from_pretrained(uni_dir, device="cpu"),
                  "bi": GLiNER.from_pretrained(bi_dir, device="cpu")}
    for model in models.values():  # warm-up
        model.predict(texts[:8], labels[:10], threshold=args.threshold, batch_size=args.batch_size)

    results = {}
    for count in args.labels:
        label_set = labels[:count]
        start = time.perf_counter()
        models["bi"].encode_labels(label_set)
        print(f"{count} labels: bi-encoder label vectors computed once in {time.perf_counter() - start:.1f} s, "
              f"uni-encoder in {models['uni'].log_label_passes([label_set])} label passes", flush=True)
        for name, model in models.items():
            seconds = []
            for _ in range(args.repeats):
                with ProcessPeak() as peak:
                    start = time.perf_counter()
                    model.predict(texts, label_set, threshold=args.threshold, batch_size=args.batch_size)
                    seconds.append(time.perf_counter() - start)
            results[name, count] = (len(texts) / statistics.median(seconds), peak)

    print(f"{'labels':>6} | {'uni texts/s':>11} {'peak MiB':>9} {'(+run)':>7} | {'bi texts/s':>10} {'peak MiB':>9} "
          f"{'(+run)':>7} {'vs bi at 10':>11}")
    for count in args.labels:
        (uni, uni_peak), (bi, bi_peak) = results["uni", count], results["bi", count]
        print(f"{count:>6} | {uni:11.2f} {uni_peak.mib:9.0f} {uni_peak.added_mib:7.0f} | {bi:10.2f} {bi_peak.mib:9.0f} "
              f"{bi_peak.added_mib:7.0f} {bi / results['bi', args.labels[0]][0]:10.2f}x")


def label_list(examples, count: int) -> list[str]:
    """``count`` distinct labels: the 10 entity types, then distinct words of the data, then pairs of them."""
    vocabulary = list(dict.fromkeys(w.lower() for e in examples for w in e.words if w.isalpha() and len(w) > 3))
    labels = list(dict.fromkeys([*TYPES, *vocabulary]))
    pairs = (f"{a} {b}" for shift in range(1, len(vocabulary))
             for a, b in zip(vocabulary, vocabulary[shift:] + vocabulary[:shift]))
    while len(labels) < count:
        labels.append(next(pairs))
    return labels[:count]


if __name__ == "__main__":
    main()
