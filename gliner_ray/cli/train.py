"""``gliner-ray train``: its flags, reading the data they name, and the call into the job."""

from __future__ import annotations

import argparse
import dataclasses

from ..cluster import ADDRESS_HELP
from ..data import Example, load_label_map, read_dataset
from ..training import TrainSettings, train
from ..training.settings import PRECISIONS
from .args import comma_list

# The run's step counts and limits, each an integer flag defaulting to the TrainSettings field of the same name.
RUN_COUNTS = {
    "--eval-every": "steps between evaluations on --eval",
    "--checkpoint-every": "steps between checkpoints",
    "--log-every": "steps between loss lines",
    "--keep-checkpoints": "newest checkpoints kept",
    "--max-failures": "worker failures to recover from",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``gliner-ray train``: one per ``TrainSettings`` field, plus the data to read."""
    defaults = TrainSettings(output="")
    data = parser.add_argument_group("data")
    data.add_argument("--train", required=True, help="training data: URI[,URI...] (local or s3://)")
    data.add_argument("--eval", help="evaluation data (exact-match P/R/F1 every --eval-every steps)")
    data.add_argument("--format", choices=["gliner", "pile-ner", "conll"], help="input format (default: inferred)")
    data.add_argument("--label-map", help="conll: JSON file mapping tag names to natural-language types")
    model = parser.add_argument_group("model")
    start = model.add_mutually_exclusive_group(required=True)
    start.add_argument("--backbone", help="pretrained encoder (hub id or directory): train a fresh GLiNER on it")
    start.add_argument("--init", help="GLiNER checkpoint (hub id or directory): fine-tune it")
    model.add_argument("--hidden-size", type=int, help="fresh models: width of the GLiNER layers (default: encoder's)")
    model.add_argument("--max-width", type=int, default=defaults.max_width, help="fresh models: longest span, in words")
    model.add_argument("--max-len", type=int, default=defaults.max_len, help="fresh models: words per training text")
    model.add_argument("--dropout", type=float, default=defaults.dropout, help="fresh models")
    model.add_argument("--max-types", type=int, default=defaults.max_types, help="entity types per prompt, at most")
    run = parser.add_argument_group("run")
    run.add_argument("--output", required=True, help="local directory or s3://bucket/prefix; re-run to resume")
    run.add_argument("--workers", type=int, default=defaults.workers, help="Ray Train workers, each a data-parallel copy")
    run.add_argument("--gpu", action="store_true", help="one GPU per worker (NCCL)")
    run.add_argument("--address", help=ADDRESS_HELP)
    run.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                     help="bf16 autocast: auto (where bf16 is native: recent GPUs, CPUs with AVX512-BF16/AMX), "
                          "bf16 or fp32")
    run.add_argument("--cpus-per-worker", type=int, default=defaults.cpus_per_worker,
                     help="default: the node's CPUs divided by the workers on it (GPU workers: CPUs per GPU)")
    run.add_argument("--steps", type=int, default=defaults.steps, help="optimizer steps in all")
    run.add_argument("--batch-size", type=int, default=defaults.batch_size, help="sentences per worker per batch")
    run.add_argument("--max-tokens", type=int, default=defaults.max_tokens,
                     help="instead of --batch-size: batches of similar length holding up to this many text sub-tokens "
                          "(texts x the longest), so a GPU gets full batches with little padding")
    run.add_argument("--accumulate", type=int, default=defaults.accumulate,
                     help="batches per optimizer step (gradient accumulation: the step of a batch this many times bigger)")
    for flag, help_text in RUN_COUNTS.items():
        run.add_argument(flag, type=int, default=getattr(defaults, flag[2:].replace("-", "_")), help=help_text)
    run.add_argument("--eval-threshold", type=float, default=defaults.eval_threshold,
                     help="span score threshold of the evaluations")
    run.add_argument("--seed", type=int, default=defaults.seed, help="random seed (weights, shuffling, dropout)")
    recipe = parser.add_argument_group("recipe (the paper's defaults; for runs of a few thousand steps use "
                                       "--lr-encoder 5e-5 --lr-other 2e-4)")
    recipe.add_argument("--lr-encoder", type=float, default=defaults.lr_encoder, help="learning rate of the encoder")
    recipe.add_argument("--lr-other", type=float, default=defaults.lr_other,
                        help="learning rate of the non-encoder layers")
    recipe.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help="AdamW weight decay")
    recipe.add_argument("--warmup-ratio", type=float, default=defaults.warmup_ratio,
                        help="share of the steps spent on linear warm-up")
    recipe.add_argument("--max-grad-norm", type=float, default=defaults.max_grad_norm, help="gradient clipping norm")
    recipe.add_argument("--loss-reduction", choices=["sum", "mean"], default=defaults.loss_reduction,
                        help="span loss summed (the reference trainer) or averaged over valid spans")
    recipe.add_argument("--focal-alpha", type=float, default=defaults.focal_alpha, help="< 0: off")
    recipe.add_argument("--focal-gamma", type=float, default=defaults.focal_gamma, help="0: plain BCE")


def run(args: argparse.Namespace) -> None:
    """Check the settings, read the data, train, and print the final model's URI."""
    names = {f.name for f in dataclasses.fields(TrainSettings)}
    settings = TrainSettings(**{k: v for k, v in vars(args).items() if k in names})
    settings.check()
    train_examples = read_examples(args.train, args.format, args.label_map)
    eval_examples = read_examples(args.eval, args.format, args.label_map) if args.eval else []
    print(train(train_examples, eval_examples, settings, args.address))


def read_examples(uris: str, format: str | None, label_map: str | None) -> list[Example]:
    """Examples from comma-separated URIs, through the dataset readers (which skip and count unusable ones)."""
    mapping = load_label_map(label_map) if label_map else None
    examples: list[Example] = []
    for uri in comma_list(uris):
        examples += read_dataset(uri, format, mapping).examples
    return examples
