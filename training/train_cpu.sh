#!/usr/bin/env bash
# The shipped default model's recipe on a CPU (no GPU needed; ~2-3 h per trained tail on 2 cores); its
# settings and the model's id and version are in training/recipes/default_cpu.json. Per trained network:
#   frozen ImageNet trunk cached per image view -> tail trained on source-balanced draws ->
#   5-fold patient-grouped CV (out-of-fold evidence) + final model + a CV rerun with another seed +
#   leave-one-source-out runs.
# An ensemble recipe ("ensemble": {"members": [...]}) trains each member recipe so, into RUN_DIR/<member>,
# and combines them into one run of the shared-trunk network (training/combine_runs.py). Then:
#   calibration, operating point, second-stage decision, model card.
#
#   bash training/train_cpu.sh [RUN_DIR] [OUT_CHECKPOINT]
#   WORKERS=2 bash training/train_cpu.sh ...   # folds and held-out sources in 2 single-threaded processes
#
# WORKERS: independent runs (folds, held-out sources, cached datasets) go side by side, one thread each, so
# on 2 cores two folds take about the time of one; folds trained apart are joined by training/merge_folds.py
# into exactly what one `--fold all` run writes.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-runs/model2}"
OUT="${2:-model/weights/default}"
PY="${PYTHON:-.venv/bin/python}"
# The settings are in the recipe files; EPOCHS, SAMPLES and (one network only) CACHE override them. The
# assembly's metadata check reads the cache the final model records.
RECIPE="${RECIPE:-training/recipes/default_cpu.json}"
value() { "$PY" -m training.recipe "$1" "$2"; }
# setting MODULE RECIPE FIELD: what MODULE's parse_args makes of FIELD for RECIPE (its defaults included), a line each
setting() {
  "$PY" -c 'import importlib, sys
module, recipe, field = sys.argv[1:]
v = getattr(importlib.import_module(module).parse_args(["--config", recipe]), field)
print(*(v if isinstance(v, list) else [v]), sep="\n")' "$@"
}

WORKERS="${WORKERS:-1}"
# glibc's malloc gives the tail's large activation buffers back to the kernel after each step and faults them
# in again (over 32 MB they are always mmap-ed, as at 288 px with ranking pairs): half of the run in the
# kernel. jemalloc, told to keep freed pages, trains the same numbers about twice as fast there
# (bench/RESULTS.md; Debian: apt-get install libjemalloc2). JEMALLOC= (empty) runs without it.
# (compgen, not ls: a pipeline that finds nothing would end the script under pipefail)
JEMALLOC="${JEMALLOC-$(compgen -G '/usr/lib/*/libjemalloc.so.2' | head -1 || true)}"
if [[ -n "$JEMALLOC" ]]; then
  export LD_PRELOAD="$JEMALLOC${LD_PRELOAD:+:$LD_PRELOAD}" MALLOC_CONF="${MALLOC_CONF:-dirty_decay_ms:-1,muzzy_decay_ms:-1}"
else
  echo "note: no libjemalloc.so.2; training runs with glibc's malloc (slower at 288 px; see bench/RESULTS.md)" >&2
fi

in_parallel() {  # in_parallel CMD...: one job a line on stdin (appended to CMD); WORKERS at a time, 1 thread each
  if (( WORKERS > 1 )); then OMP_NUM_THREADS=1 xargs -P "$WORKERS" -L 1 "$@"; else xargs -L 1 "$@"; fi
}

cross_validate() {  # cross_validate OUT TRAIN_ARGS...: patient-grouped CV, fold by fold in parallel if WORKERS > 1
  local out="$1"; shift
  if (( WORKERS > 1 )); then
    local folds k
    folds="$(setting training.train_cached "$recipe" n_folds)"
    for ((k = 0; k < folds; k++)); do echo "--fold $k --out $out.parts/$k"; done |
      in_parallel "$PY" -m training.train_cached "$@"
    "$PY" -m training.merge_folds --parts "$out.parts"/* --out "$out"
  else
    "$PY" -m training.train_cached "$@" --fold all --out "$out"
  fi
}

train_network() {  # train_network MEMBER_RECIPE RUN_DIR: cache, CV, final, seed rerun, leave-one-source-out
  local recipe="$1" run="$2"
  local cache="${CACHE:-$(value "$recipe" train_cached.cache)}"
  local train=(--config "$recipe" --cache "$cache")
  [[ -n "${EPOCHS:-}" ]] && train+=(--epochs "$EPOCHS")
  [[ -n "${SAMPLES:-}" ]] && train+=(--samples-per-epoch "$SAMPLES")
  # the cache is made where the recipe cuts the network (a deeper cut could advance it, a shallower one not)
  # (its input size and views from the recipe's trunk_cache section, if it has one)
  # (one dataset a job: they are cached into separate files)
  setting training.trunk_cache "$recipe" datasets | sed 's/^/--datasets /' |
    in_parallel "$PY" -m training.trunk_cache --config "$recipe" --out "$cache" \
      --cut "$(value "$recipe" train_cached.cut)" --threads 1
  cross_validate "$run/cv" "${train[@]}"
  "$PY" -m training.train_cached "${train[@]}" --fold none --out "$run/final"
  # Run-to-run variation for the card: the same CV with another seed (other folds and initialisation);
  # RERUN_SEED=none skips it (~20 min per tail on a quiet 2-core machine)
  local rerun="${RERUN_SEED:-43}"
  if [[ "$rerun" != none ]]; then
    cross_validate "$run/rerun_seed$rerun" "${train[@]}" --seed "$rerun"
  fi
  if [[ -z "${SKIP_LOSO:-}" ]]; then
    # a shorter schedule (the recipe's loso.samples_per_epoch draws an epoch) to fit the CPU budget; recorded
    # in each run's summary.json
    local loso_samples source
    loso_samples="$(value "$recipe" loso.samples_per_epoch)"
    for source in $(value "$recipe" loso.sources); do echo "--fold source:$source --out $run/loso_$source"; done |
      in_parallel "$PY" -m training.train_cached "${train[@]}" --samples-per-epoch "$loso_samples"
  fi
  "$PY" -m training.cached_baseline --cache "$cache" --out "$run/baseline.json"
}

if MEMBERS="$(value "$RECIPE" ensemble.members 2>/dev/null)"; then
  RUNS=()
  for member in $MEMBERS; do
    RUNS+=("$RUN/$(basename "$member" .json)")
    train_network "$member" "${RUNS[-1]}"
  done
  "$PY" -m training.combine_runs --members "${RUNS[@]}" --out "$RUN"
else
  train_network "$RECIPE" "$RUN"
fi
# The floor to beat on complete patients: v1's ranking and an unsupervised ImageNet-feature outlier score.
"$PY" -m training.score_images --dataset isic2020_patients --imagenet --views 1 --out runs/eval
# v1's comparison scores (runs/eval/v1_derm7pt.npz and v1_isic2020_patients.npz) come from the v1 checkpoint in
# git history (commit 7304482); without them the card leaves out v1's rows (the assembler says which):
#   git worktree add /tmp/v1 7304482 && for d in derm7pt isic2020_patients; do
#     "$PY" -m training.score_images --dataset "$d" --checkpoint /tmp/v1/model/weights/default --name v1 \
#       --out runs/eval; done
"$PY" -m training.assemble_default --config "$RECIPE" --run "$RUN" --baselines runs/eval --out "$OUT"
