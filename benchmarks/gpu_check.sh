#!/usr/bin/env bash
# The GPU check: on a machine with CUDA, in under 8 minutes, from the repository root:
#
#   bash benchmarks/gpu_check.sh [BIO files for bench_feed, e.g. ../shared/data/crossner/*/dev.txt]
#
# 1. benchmarks/gpu_check.py: CUDA fp32 predictions equal to CPU's; bf16/fp16 against fp32; texts/s, tokens/s
#    and achieved TFLOP/s against the GPU's measured matmul peak, for MiniLM and random DeBERTa-v3 small/base.
# 2. benchmarks/bench_feed.py with one GPU actor and the MiniLM model: words/s and model_busy; then the same job
#    around a simulated accelerator (--accelerator), so that the simulation's words/s, model_busy and CPU seconds
#    per million words sit beside the real GPU's, on the same CPUs.
# 3. benchmarks/gpu_check_train.sh (training on one GPU worker), when that script exists.
# DEVICE=cpu runs steps 1 and 2 small on a CPU, to check the script itself.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
DEVICE="${DEVICE:-cuda}"
started=$SECONDS

if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  CHECK_ARGS=(--device cuda)
  FEED_ARGS=(--encoder minilm --docs 2000 --shards 8 --chunk-size 64 --cpus "$(nproc)" --precision auto)
  SIMULATED_ARGS=(--accelerator 1000000,3000000 --docs 4000 --shards 8 --cpus "$(nproc)")
else
  CHECK_ARGS=(--device cpu --texts 16 --words 40 --models minilm)
  FEED_ARGS=(--docs 40 --shards 2 --chunk-size 8 --cpus 2)
  SIMULATED_ARGS=(--accelerator 300000 --docs 200 --shards 2 --cpus 2)
fi

echo "== 1. predictions and speed per precision (gpu_check.py) =="
timeout 270 python benchmarks/gpu_check.py "${CHECK_ARGS[@]}"

echo "== 2. extraction with one GPU actor (bench_feed.py) =="
timeout 150 python benchmarks/bench_feed.py "$@" "${FEED_ARGS[@]}"
echo "== 2b. the same job around a simulated accelerator (bench_feed.py --accelerator) =="
timeout 150 python benchmarks/bench_feed.py "$@" "${SIMULATED_ARGS[@]}"

if [ -f benchmarks/gpu_check_train.sh ]; then
  echo "== 3. training on one GPU worker (gpu_check_train.sh) =="
  timeout 150 bash benchmarks/gpu_check_train.sh
fi
echo "gpu_check: done in $((SECONDS - started)) s"
