#!/usr/bin/env bash
# The shipped default model's recipe on a CPU (no GPU needed; ~2-3 h on 2 cores):
#   frozen ImageNet trunk cached per image view -> tail trained on source-balanced draws ->
#   5-fold patient-grouped CV (out-of-fold evidence) + final model + leave-one-source-out runs ->
#   calibration, operating point, second-stage decision, model card.
#
#   bash training/train_cpu.sh [RUN_DIR] [OUT_CHECKPOINT]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-runs/model2}"
OUT="${2:-model/weights/default}"
PY="${PYTHON:-.venv/bin/python}"
CACHE="${CACHE:-runs/trunk_cache}"
TRAIN=(--cache "$CACHE" --epochs "${EPOCHS:-6}" --samples-per-epoch "${SAMPLES:-4000}" --seed 42)
"$PY" -m training.trunk_cache --out "$CACHE" --threads 1
"$PY" -m training.train_cached "${TRAIN[@]}" --fold all --out "$RUN/cv"
"$PY" -m training.train_cached "${TRAIN[@]}" --fold none --out "$RUN/final"
if [[ -z "${SKIP_LOSO:-}" ]]; then
  for source in ham10000 isic2017 isic2020_patients; do
    # a shorter schedule (3,000 draws an epoch) to fit the CPU budget; recorded in each run's summary.json
    "$PY" -m training.train_cached "${TRAIN[@]}" --samples-per-epoch 3000 --fold "source:$source" --out "$RUN/loso_$source"
  done
fi
"$PY" -m training.cached_baseline --cache "$CACHE" --out "$RUN/baseline.json"
# The floor to beat on complete patients: v1's ranking and an unsupervised ImageNet-feature outlier score.
"$PY" -m training.score_images --dataset isic2020_patients --imagenet --views 1 --out runs/eval
# v1's comparison scores (runs/eval/v1_derm7pt.npz) come from the v1 checkpoint in git history (commit 7304482):
#   git worktree add /tmp/v1 7304482 && "$PY" -m training.score_images --dataset derm7pt \
#     --checkpoint /tmp/v1/model/weights/default --name v1 --out runs/eval
"$PY" -m training.assemble_default --run "$RUN" --baselines runs/eval --cache "$CACHE" --out "$OUT"
