#!/usr/bin/env bash
# The shipped default model's recipe on a CPU (no GPU needed; ~2-3 h on 2 cores); its settings and the
# model's id and version are in training/recipes/default_cpu.json:
#   frozen ImageNet trunk cached per image view -> tail trained on source-balanced draws ->
#   5-fold patient-grouped CV (out-of-fold evidence) + final model + a CV rerun with another seed +
#   leave-one-source-out runs ->
#   calibration, operating point, second-stage decision, model card.
#
#   bash training/train_cpu.sh [RUN_DIR] [OUT_CHECKPOINT]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-runs/model2}"
OUT="${2:-model/weights/default}"
PY="${PYTHON:-.venv/bin/python}"
# The settings are in the recipe file; CACHE, EPOCHS and SAMPLES override them (flags win over the file).
RECIPE="${RECIPE:-training/recipes/default_cpu.json}"
recipe() { "$PY" -m training.recipe "$RECIPE" "$1"; }
CACHE="${CACHE:-$(recipe train_cached.cache)}"
TRAIN=(--config "$RECIPE" --cache "$CACHE")
[[ -n "${EPOCHS:-}" ]] && TRAIN+=(--epochs "$EPOCHS")
[[ -n "${SAMPLES:-}" ]] && TRAIN+=(--samples-per-epoch "$SAMPLES")
# the cache is made where the recipe cuts the network (a deeper cut could advance it, a shallower one could not)
"$PY" -m training.trunk_cache --out "$CACHE" --cut "$(recipe train_cached.cut)" --threads 1
"$PY" -m training.train_cached "${TRAIN[@]}" --fold all --out "$RUN/cv"
"$PY" -m training.train_cached "${TRAIN[@]}" --fold none --out "$RUN/final"
# Run-to-run variation for the card: the same CV with another seed (other folds and initialisation);
# RERUN_SEED=none skips it (~20 min on a quiet 2-core machine)
RERUN_SEED="${RERUN_SEED:-43}"
if [[ "$RERUN_SEED" != none ]]; then
  "$PY" -m training.train_cached "${TRAIN[@]}" --seed "$RERUN_SEED" --fold all --out "$RUN/rerun_seed$RERUN_SEED"
fi
if [[ -z "${SKIP_LOSO:-}" ]]; then
  # a shorter schedule (the recipe's loso.samples_per_epoch draws an epoch) to fit the CPU budget; recorded
  # in each run's summary.json
  LOSO_SAMPLES="$(recipe loso.samples_per_epoch)"
  for source in $(recipe loso.sources); do
    "$PY" -m training.train_cached "${TRAIN[@]}" --samples-per-epoch "$LOSO_SAMPLES" --fold "source:$source" \
      --out "$RUN/loso_$source"
  done
fi
"$PY" -m training.cached_baseline --cache "$CACHE" --out "$RUN/baseline.json"
# The floor to beat on complete patients: v1's ranking and an unsupervised ImageNet-feature outlier score.
"$PY" -m training.score_images --dataset isic2020_patients --imagenet --views 1 --out runs/eval
# v1's comparison scores (runs/eval/v1_derm7pt.npz) come from the v1 checkpoint in git history (commit 7304482):
#   git worktree add /tmp/v1 7304482 && "$PY" -m training.score_images --dataset derm7pt \
#     --checkpoint /tmp/v1/model/weights/default --name v1 --out runs/eval
"$PY" -m training.assemble_default --config "$RECIPE" --run "$RUN" --baselines runs/eval --cache "$CACHE" --out "$OUT"
