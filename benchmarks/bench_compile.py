"""Does ``torch.compile`` speed up a training step? Eager against compiled, the same batches, side by side.

    python benchmarks/bench_compile.py ../shared/data/conll2003/train.txt --steps 40

A fresh GLiNER on the MiniLM encoder (hidden 512), CoNLL-2003 batches of 8 built once by the training job's own
``BatchBuilder``, ``train_step`` (forward, backward, clipping, AdamW, schedule) under the precision ``--precision
auto`` picks. Two identical models (same seed): one eager, one ``torch.compile(model, dynamic=True)`` (batches
differ in shape every step). Printed: the compiled model's first steps (compilation), then the steady-state
steps/s of both, timed in alternating rounds so machine load hits both alike, and their loss after the same steps.
"""

from __future__ import annotations

import random
import time

from _common import argument_parser, minilm

import torch

from gliner_ray import GLiNER
from gliner_ray.data import read_conll
from gliner_ray.precision import uses_bf16
from gliner_ray.training import BatchBuilder, TrainSettings, clean_examples, parameter_groups, train_step, warmup_cosine


def fresh(encoder: str, settings: TrainSettings, compiled: bool):
    torch.manual_seed(0)
    gliner = GLiNER.from_backbone(encoder, hidden_size=512, device="cpu")
    gliner.model.train()
    optimizer = torch.optim.AdamW(parameter_groups(gliner.model, settings.lr_encoder, settings.lr_other,
                                                   settings.weight_decay), fused=True)
    scheduler = warmup_cosine(optimizer, settings.steps, settings.warmup_ratio)
    model = torch.compile(gliner.model, dynamic=True) if compiled else gliner.model
    return gliner, model, optimizer, scheduler


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("train", help="a CoNLL BIO file")
    parser.add_argument("--steps", type=int, default=40, help="timed steps of each model (after --warmup)")
    parser.add_argument("--warmup", type=int, default=8, help="first steps, untimed: compilation, allocator")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    encoder = minilm()
    settings = TrainSettings(output="unused", backbone=encoder, steps=10_000, lr_encoder=5e-5, lr_other=2e-4)
    bf16 = uses_bf16("auto", torch.device("cpu"))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    examples = read_conll(args.train).examples
    random.Random(0).shuffle(examples)
    sides = {name: fresh(encoder, settings, name == "compiled") for name in ("eager", "compiled")}
    first = next(iter(sides.values()))[0]
    examples, _ = clean_examples(examples[: 8 * (args.warmup + args.steps)], 384, first.config.max_width)
    build = BatchBuilder(first.prompt_tokenizer, first.config.max_width, max_types=25, seed=0)
    batches = [build(examples[i : i + 8]) for i in range(0, len(examples) - 7, 8)]
    print(f"{len(batches)} batches of 8, bf16 autocast {bf16}, {args.threads} threads", flush=True)

    def run(name: str, part: list) -> tuple[float, float]:
        _, model, optimizer, scheduler = sides[name]
        start = time.perf_counter()
        for batch in part:
            loss = train_step(model, [batch], optimizer, scheduler, settings, autocast)
        return time.perf_counter() - start, float(loss)

    for name in sides:
        seconds, _ = run(name, batches[: args.warmup])
        print(f"{name}: first {args.warmup} steps {seconds:.1f} s", flush=True)
    timed = batches[args.warmup :]
    per_round = max(1, len(timed) // args.rounds)
    totals, losses = {name: 0.0 for name in sides}, {}
    for r in range(args.rounds):
        part = timed[r * per_round : (r + 1) * per_round]
        for name in (sides if r % 2 == 0 else reversed(list(sides))):
            seconds, losses[name] = run(name, part)
            totals[name] += seconds
    steps = per_round * args.rounds
    for name in sides:
        print(f"{name}: {steps / totals[name]:.2f} steps/s steady ({8 * steps / totals[name]:.1f} sentences/s), "
              f"last loss {losses[name]:.2f}")
    print(f"compiled / eager: {totals['eager'] / totals['compiled']:.2f}x")


if __name__ == "__main__":
    main()
