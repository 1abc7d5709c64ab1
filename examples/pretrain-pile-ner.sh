#!/usr/bin/env bash
# Pretrain GLiNER on Pile-NER with the paper's recipe (arXiv 2311.08526; the reference's config_large.yaml):
# deberta-v3-large, 30,000 steps of 8 sentences, AdamW at 1e-5 (encoder) / 5e-5 (the rest), 10% warm-up then
# cosine, dropout 0.4, spans up to 12 words, up to 25 types per prompt, texts up to 384 words. Data-parallel
# over 4 GPU workers, a checkpoint every 1,000 steps (re-run the same command to resume), P/R/F1 on CrossNER
# dev during training and on every CrossNER dev set and MIT-Restaurant at the end.
#
#   BUCKET=s3://my-bucket bash examples/pretrain-pile-ner.sh                      # on the cluster (see docs/jobs.md, "Pretraining on Pile-NER")
#   ray job submit --address http://127.0.0.1:8265 --working-dir . -- env BUCKET=s3://my-bucket bash examples/pretrain-pile-ner.sh
#
# Expects, in the UniNER / Pile-NER conversation JSON (the released pile-ner.json) and CoNLL columns:
#   $BUCKET/data/pile-ner.json   $BUCKET/data/crossner/{ai,literature,music,politics,science}/dev.txt
#   $BUCKET/data/mit-restaurant.json
# Every setting below can be overridden from the environment (the tiny trial in docs/jobs.md does). Formats are
# inferred from each file (a .json of conversations is Pile-NER/UniNER, a .txt of columns CoNLL).
#
# Batch: the paper's 8 sentences per step is per worker here, so 4 workers take 32 per step (each prompt still
# draws its negative types from a batch of 8, as in the paper). STEPS=7500 sees as many sentences as the paper.
set -euo pipefail

BUCKET=${BUCKET:?set BUCKET to where the data and runs live, e.g. s3://my-bucket or a local directory}
TRAIN=${TRAIN:-$BUCKET/data/pile-ner.json}
CROSSNER=${CROSSNER:-$BUCKET/data/crossner}
EVAL=${EVAL:-$CROSSNER/ai/dev.txt}
FINAL_EVAL=${FINAL_EVAL:-"$CROSSNER/ai/dev.txt $CROSSNER/literature/dev.txt $CROSSNER/music/dev.txt $CROSSNER/politics/dev.txt $CROSSNER/science/dev.txt $BUCKET/data/mit-restaurant.json"}
OUTPUT=${OUTPUT:-$BUCKET/runs/gliner-pile-ner}
BACKBONE=${BACKBONE:-microsoft/deberta-v3-large}
HIDDEN_SIZE=${HIDDEN_SIZE:-768}
WORKERS=${WORKERS:-4}
GPU=${GPU---gpu}                  # GPU= (set, empty) trains on CPU workers
STEPS=${STEPS:-30000}
BATCH_SIZE=${BATCH_SIZE:-8}
CHECKPOINT_EVERY=${CHECKPOINT_EVERY:-1000}
EVAL_EVERY=${EVAL_EVERY:-5000}

gliner-ray train --train "$TRAIN" --eval "$EVAL" \
    --backbone "$BACKBONE" --hidden-size "$HIDDEN_SIZE" --max-width 12 --max-len 384 --dropout 0.4 --max-types 25 \
    --lr-encoder 1e-5 --lr-other 5e-5 --weight-decay 0.01 --warmup-ratio 0.1 --max-grad-norm 1.0 \
    --steps "$STEPS" --batch-size "$BATCH_SIZE" --workers "$WORKERS" $GPU \
    --checkpoint-every "$CHECKPOINT_EVERY" --keep-checkpoints 3 --eval-every "$EVAL_EVERY" --log-every 50 \
    --output "$OUTPUT" "$@"

# shellcheck disable=SC2086  # FINAL_EVAL is a list of URIs
gliner-ray evaluate --model "$OUTPUT/final" --data $FINAL_EVAL --output "$OUTPUT/eval"
