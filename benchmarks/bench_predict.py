"""Prediction speed: gliner_ray vs the reference ``gliner`` library, same checkpoint, texts, labels and threads.

    python benchmarks/bench_predict.py ../shared/data/crossner/ai/dev.txt [--checkpoint RUN/final]

Side by side in one run, timed alternately: the reference library's torch path, its own ONNX export
(``export_to_onnx(quantize=True)``, loaded with ``load_onnx_model=True``: fp32 and int8), and ours in fp32 and
bf16 (where the CPU has native bf16). ``--checkpoint`` takes a trained GLiNER (``gliner-ray train``); without it
the model is a GLiNER on the real MiniLM encoder with a random head, built with the reference library. Each
engine's entities are compared with the reference torch path (exact for ours in fp32; an agreement F1 for the
others). Printed: texts/s, ratios, and the encoder's achieved FLOP/s against this machine's measured matmul.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import statistics
import tempfile
import time

from _common import EncoderMeter, argument_parser, matmul_peak, minilm

import torch

from gliner_ray import GLiNER
from gliner_ray.data import read_conll

LABELS = ["person", "organization", "location", "algorithm", "programming language", "field", "product", "conference"]


def agreement(got: list[list[dict]], expected: list[list[dict]]) -> float:
    """F1 of ``got``'s entities (span and label) against ``expected``'s."""
    key = lambda e: (e["start"], e["end"], e["label"])  # noqa: E731
    a = {(i, key(e)) for i, entities in enumerate(got) for e in entities}
    b = {(i, key(e)) for i, entities in enumerate(expected) for e in entities}
    return 1.0 if not a and not b else 2 * len(a & b) / (len(a) + len(b))


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("data", help="a BIO file; its sentences become the texts (e.g. crossner/ai/dev.txt)")
    parser.add_argument("--checkpoint", help="a trained GLiNER checkpoint (default: MiniLM with a random head)")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-onnx", action="store_true", help="leave out the reference's ONNX export")
    args = parser.parse_args()

    from gliner import GLiNER as ReferenceGLiNER
    from gliner import GLiNERConfig as ReferenceConfig

    from gliner_ray.precision import bf16_native

    torch.set_num_threads(args.threads)
    texts = [" ".join(example.words) for example in read_conll(args.data).examples[: args.texts]]
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(f"{len(texts)} texts, {words:.1f} words each on average, {len(LABELS)} labels, batch {args.batch_size}, "
          f"{args.threads} threads; model: {args.checkpoint or 'MiniLM, random head'}")

    work = tempfile.mkdtemp(prefix="bench-predict-")
    checkpoint = os.path.join(work, "model")
    if args.checkpoint:
        shutil.copytree(args.checkpoint, checkpoint)
    else:
        torch.manual_seed(0)
        config = ReferenceConfig(model_name=minilm(), hidden_size=512)
        ReferenceGLiNER.from_config(config).save_pretrained(checkpoint)
    reference = ReferenceGLiNER.from_pretrained(checkpoint, map_location="cpu")
    ours = GLiNER.from_pretrained(checkpoint, device="cpu")
    engines = {"reference torch fp32": lambda t, th: reference.inference(t, LABELS, threshold=th, batch_size=args.batch_size)}
    if not args.no_onnx:
        with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its whole graph
            reference.export_to_onnx(checkpoint, quantize=True)
        for name, file in (("fp32", "model.onnx"), ("int8", "model_quantized.onnx")):
            onnx = ReferenceGLiNER.from_pretrained(checkpoint, load_onnx_model=True, onnx_model_file=file)
            engines[f"reference ONNX {name}"] = (
                lambda t, th, m=onnx: m.inference(t, LABELS, threshold=th, batch_size=args.batch_size))
    engines["gliner_ray fp32"] = lambda t, th: ours.predict(t, LABELS, threshold=th, batch_size=args.batch_size)
    if bf16_native(torch.device("cpu")):
        ours_bf16 = GLiNER.from_pretrained(checkpoint, device="cpu", dtype="bf16")
        engines["gliner_ray bf16"] = lambda t, th: ours_bf16.predict(t, LABELS, threshold=th, batch_size=args.batch_size)

    thresholds = [(0.5, "threshold 0.5: a trained model's candidates" if args.checkpoint else
                   "threshold 0.5, random head: half of all spans are candidates (decoding-heavy)")]
    if not args.checkpoint:
        # A trained model keeps a few candidates per text; a threshold that keeps about 5 stands for that.
        sample = [ours.prompt_tokenizer.rows(i, t.split(), LABELS, 384, 12) for i, t in enumerate(texts[:32])]
        scores = sorted((c.score for spans in ours.score_rows(sum(sample, []), 1e-6) for c in spans), reverse=True)
        thresholds.insert(0, (scores[5 * len(sample)], "about 5 candidates per text, as a trained model"))
    for threshold, what in thresholds:
        expected = engines["reference torch fp32"](texts, threshold)
        print(f"threshold {threshold:.4f} ({what}); {sum(map(len, expected))} entities from the reference")
        found = {name: run(texts, threshold) for name, run in engines.items()}
        times = {name: [] for name in engines}
        for _ in range(args.repeats):
            for name, run in engines.items():
                start = time.perf_counter()
                run(texts, threshold)
                times[name].append(time.perf_counter() - start)
        speed = {name: len(texts) / statistics.median(t) for name, t in times.items()}
        base = speed["reference torch fp32"]
        for name in engines:
            same = agreement(found[name], expected)
            print(f"  {name:<22} {speed[name]:7.1f} texts/s  {speed[name] / base:5.2f}x reference torch  "
                  f"entity F1 vs reference torch {same:.4f}")
        if "reference ONNX int8" in speed:
            for name in ("gliner_ray fp32", "gliner_ray bf16"):
                if name in speed:
                    print(f"  {name} / reference ONNX int8: {speed[name] / speed['reference ONNX int8']:.2f}x")

    meter = EncoderMeter(ours.model.encoder)
    start = time.perf_counter()
    ours.predict(texts, LABELS, threshold=thresholds[0][0], batch_size=args.batch_size)
    total = time.perf_counter() - start
    peak = matmul_peak(repeats=20)
    achieved = meter.flops / meter.seconds
    print(f"encoder: {meter.seconds / total:.0%} of predict time, {achieved / 1e9:.1f} GFLOP/s = "
          f"{achieved / peak:.0%} of measured fp32 matmul ({peak / 1e9:.1f} GFLOP/s)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
