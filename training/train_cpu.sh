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
TRAIN=(--cache "$CACHE" --epochs "${EPOCHS:-8}" --samples-per-epoch "${SAMPLES:-6000}" --seed 42)
"$PY" -m training.trunk_cache --out "$CACHE" --threads 1
"$PY" -m training.train_cached "${TRAIN[@]}" --fold all --out "$RUN/cv"
"$PY" -m training.train_cached "${TRAIN[@]}" --fold none --out "$RUN/final"
if [[ -z "${SKIP_LOSO:-}" ]]; then
  for source in ham10000 isic2017 isic2020_patients; do
    "$PY" -m training.train_cached "${TRAIN[@]}" --fold "source:$source" --out "$RUN/loso_$source"
  done
fi
# The floor to beat on complete patients: v1's ranking and an unsupervised ImageNet-feature outlier score.
"$PY" -m training.score_images --dataset isic2020_patients --imagenet --views 1 --out runs/eval
"$PY" -m training.assemble_default --run "$RUN" --baselines runs/eval --out "$OUT"
