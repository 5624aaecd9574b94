#!/usr/bin/env bash
# The complete patients scored by the shipped recipe trained without ANY SIIM-ISIC 2020 image (neither the
# subset nor the complete patients): what a clinic whose population the model never saw may expect. Caches the
# frozen trunk for HAM10000, ISIC 2017 and the complete patients, trains each tail of the recipe on HAM10000 +
# ISIC 2017 (--fold source:isic2020_patients, the recipe's LOSO schedule), then writes the entry into the
# checkpoint's evidence and card (training.loso_evidence). ~30 min on 2 cores.
#
#   bash training/loso_population.sh [RUN_DIR] [CHECKPOINT]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-runs/loso_pop}"
CHECKPOINT="${2:-model/weights/default}"
PY="${PYTHON:-.venv/bin/python}"
CACHE="${CACHE:-runs/trunk_cache}"
TAILS=(training/recipes/tail_blocks52.json training/recipes/tail_blocks52_pairs_long.json)  # v2.3.0's members
value() { "$PY" -m training.recipe "$1" "$2"; }
JEMALLOC="${JEMALLOC-$(compgen -G '/usr/lib/*/libjemalloc.so.2' | head -1 || true)}"
if [[ -n "$JEMALLOC" ]]; then
  export LD_PRELOAD="$JEMALLOC${LD_PRELOAD:+:$LD_PRELOAD}" MALLOC_CONF="${MALLOC_CONF:-dirty_decay_ms:-1,muzzy_decay_ms:-1}"
fi
cut="$(value "${TAILS[0]}" train_cached.cut)"
printf '%s\n' ham10000 isic2017 isic2020_patients | OMP_NUM_THREADS=1 xargs -P 2 -I{} \
  "$PY" -m training.trunk_cache --config "${TAILS[0]}" --out "$CACHE" --cut "$cut" --threads 1 --datasets {}
members=()  # filled here, not in the pipeline below (its loop runs in a subshell)
for tail in "${TAILS[@]}"; do members+=("$RUN/$(basename "$tail" .json)/loso_isic2020_patients"); done
for i in "${!TAILS[@]}"; do
  echo "--config ${TAILS[$i]} --samples-per-epoch $(value "${TAILS[$i]}" loso.samples_per_epoch) --out ${members[$i]}"
done | OMP_NUM_THREADS=1 xargs -P 2 -L 1 "$PY" -m training.train_cached --cache "$CACHE" \
  --datasets ham10000 isic2017 isic2020_patients --fold source:isic2020_patients
"$PY" -m training.loso_evidence --checkpoint "$CHECKPOINT" --source isic2020_patients --members "${members[@]}"
