#!/usr/bin/env bash
# The first model's (v1) recipe (settings in training/recipes/v1_gpu.json): patient-grouped 5-fold CV
# (out-of-fold predictions for honest metrics) and the final model on all data, with the same settings.
# Runs on CPU or GPU(s):
#
#   bash training/train_default.sh [OUT_DIR]                      # data from ../shared/datasets
#   DATA_ROOT=.gpu_data/datasets IMAGENET=.gpu_data/imagenet/tf_efficientnet_lite0.safetensors \
#     NPROC=1 bash training/train_default.sh runs/default          # the GPU machine (bundled data)
#
# then, on the dev machine: python -m training.make_default --run runs/default   # --config: v1_gpu.json
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-runs/default}"
PY="${PYTHON:-python3}"
NPROC="${NPROC:-1}"
# The settings are in the recipe file; EPOCHS, BATCH and VAL_EVERY override them (flags win over the file).
RECIPE="${RECIPE:-training/recipes/v1_gpu.json}"
ARGS=(--config "$RECIPE" --workers "${WORKERS:-$(( $(nproc) - 2 ))}")
[[ -n "${EPOCHS:-}" ]] && ARGS+=(--epochs "$EPOCHS")
[[ -n "${BATCH:-}" ]] && ARGS+=(--batch-size "$BATCH")
[[ -n "${VAL_EVERY:-}" ]] && ARGS+=(--val-every "$VAL_EVERY")
[[ -n "${DATA_ROOT:-}" ]] && ARGS+=(--data-root "$DATA_ROOT")
[[ -n "${IMAGENET:-}" ]] && ARGS+=(--imagenet-weights "$IMAGENET")
# shellcheck disable=SC2206  # EXTRA is a list of extra flags, split on purpose
ARGS+=(${EXTRA:-})
RUN=("$PY" -m torch.distributed.run --standalone --nproc_per_node="$NPROC" -m training.train)
STAGES="${STAGES:-final cv}"
for stage in $STAGES; do
  case "$stage" in
    final) "${RUN[@]}" "${ARGS[@]}" --fold none --out "$OUT_DIR/final" ;;
    cv)    "${RUN[@]}" "${ARGS[@]}" --fold all --out "$OUT_DIR/cv" ;;
  esac
done
