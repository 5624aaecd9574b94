#!/usr/bin/env bash
# The v3 candidate on the lent GPU machine (training/recipes/v3_gpu.json), in device calls that each carry
# at most 64 MiB beside the repository. Prepare here, once: python -m bench.bundle_data --original
# (original bytes in .gpu_data/shards/part_NN.tar, ~48 MiB each). Then, on one warm machine:
#
#   bash training/train_gpu_v3.sh unpack 0     # carry .gpu_data/shards/part_00.tar; likewise 1, 2, 3, 4
#   bash training/train_gpu_v3.sh train        # CV + final; results under $OUT (cv/, final/, log)
#
# and back here: copy $OUT's cv/ and final/ into runs/v3/ (final/checkpoint = final/), score derm7pt on
# the CPU (python -m training.train ... is not needed: see the recipe's description) and run
# python -m training.assemble_default --run runs/v3 --config training/recipes/v3_gpu.json.
# CPU rehearsal with tiny data (what the tests run): BUNDLE=<dir> OUT=<dir> EXTRA="--limit-per-dataset 48 ..."
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
BUNDLE="${BUNDLE:-.gpu_bundle}"
OUT="${OUT:?set OUT (the device tool does) to where the results go}"
RECIPE="${RECIPE:-training/recipes/v3_gpu.json}"
case "${1:-}" in
  unpack)
    mkdir -p "$BUNDLE"
    tar -xf ".gpu_data/shards/part_$(printf '%02d' "$2").tar" -C "$BUNDLE"
    echo "unpacked shard $2: $(find "$BUNDLE" -type f | wc -l) files in $BUNDLE"
    ;;
  train)
    test -f "$BUNDLE/bundle.json" || { echo "shard 0 (bundle.json) is not unpacked in $BUNDLE" >&2; exit 2; }
    mkdir -p "$OUT/cv" "$OUT/final" "${RUN:=runs/v3}"
    { nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no GPU"; date -u; } > "$OUT/device.txt"
    ARGS=(--config "$RECIPE" --data-root "$BUNDLE/datasets" --workers "${WORKERS:-$(( $(nproc) - 2 ))}"
      --imagenet-weights "$BUNDLE/imagenet/tf_efficientnet_lite0.safetensors")
    # shellcheck disable=SC2206  # EXTRA is a list of extra flags, split on purpose
    ARGS+=(${EXTRA:-})
    TRAIN=("$PY" -m torch.distributed.run --standalone --nproc_per_node=1 -m training.train)
    SECONDS=0
    # The feed against the loader-free bound (bench/RESULTS.md); batch augmentation falls back to the
    # per-image loader if it fails on this machine, so the training window is not lost.
    if [[ -z "${SKIP_FEED_CHECK:-}" ]]; then
      if "$PY" -m bench.train_feed --data-root "$BUNDLE/datasets" --images 480 --batch 128 > "$OUT/feed.json"; then
        "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 -m bench.train_synthetic \
          --image-size 224 --batch-size 128 --steps 40 >> "$OUT/feed.json" || true
      else
        # the within-patient ranking loss draws its pairs from the decoded images: off with the file loader
        echo "batch augmentation failed here: training with the per-image loader, no ranking loss" | tee -a "$OUT/feed.json"
        ARGS+=(--no-batch-augment --pair-loss-weight 0)
      fi
      echo "feed checks done after ${SECONDS}s" | tee "$OUT/train.log"
    fi
    "${TRAIN[@]}" "${ARGS[@]}" --fold all --out "$RUN/cv" 2>&1 | tee -a "$OUT/train.log"
    echo "cv done after ${SECONDS}s" | tee -a "$OUT/train.log"
    cp "$RUN/cv/oof.csv" "$RUN/cv/oof_embeddings.npz" "$OUT/cv/"
    "${TRAIN[@]}" "${ARGS[@]}" --fold none --out "$RUN/final" 2>&1 | tee -a "$OUT/train.log"
    echo "final done after ${SECONDS}s" | tee -a "$OUT/train.log"
    cp "$RUN/final/last/model.safetensors" "$RUN/final/last/config.json" "$OUT/final/"
    ;;
  *)
    echo "usage: $0 unpack N | train" >&2
    exit 2
    ;;
esac
