#!/usr/bin/env bash
# The recipe of the shipped default model: patient-grouped 5-fold CV (out-of-fold predictions for honest
# metrics) and the final model on all data, with the same settings. Runs on CPU or GPU(s):
#
#   bash training/train_default.sh [OUT_DIR]                      # data from ../shared/datasets
#   DATA_ROOT=.gpu_data/datasets IMAGENET=.gpu_data/imagenet/tf_efficientnet_lite0.safetensors \
#     NPROC=1 bash training/train_default.sh runs/default          # the GPU machine (bundled data)
#
# then, on the dev machine: python -m training.make_default --run runs/default
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-runs/default}"
PY="${PYTHON:-python3}"
NPROC="${NPROC:-1}"
ARGS=(--datasets ham10000 isic2017 isic2020 --image-size 224 --epochs "${EPOCHS:-8}" --batch-size "${BATCH:-128}"
      --lr 1e-3 --backbone-lr-scale 0.3 --weight-decay 1e-2 --warmup-epochs 1 --seed 42 --n-folds 5
      --workers "${WORKERS:-$(( $(nproc) - 2 ))}" --val-every "${VAL_EVERY:-4}")
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
