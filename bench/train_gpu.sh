#!/usr/bin/env bash
# GPU check (optional hardware, never needed for CI). No network needed.
#
#   python -m bench.bundle_data          # once, on the dev machine: real ISIC images -> .gpu_data/ (git-ignored)
#   bash bench/train_gpu.sh [OUT_DIR]    # on the GPU machine
#
# Runs a short DDP training (torchrun, 1 process on one GPU) with AMP at 384 px on the bundled real ISIC 2020
# images, then the same model/optimiser/AMP on synthetic tensors already on the GPU (the loader-free upper
# bound), and prints both images/s and their ratio: a ratio well below 1 means data loading starves the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-runs}/gpu_check}"
PY="${PYTHON:-python3}"
GPU_DATA="${GPU_DATA:-.gpu_data}"
SIZE="${SIZE:-384}"
BATCH="${BATCH:-64}"
WORKERS="${WORKERS:-$(( $(nproc) - 2 ))}"
mkdir -p "$OUT_DIR"

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"; } \
  | tee "$OUT_DIR/gpu.txt"
"$PY" -c "import torch, timm; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'timm', timm.__version__)" \
  | tee -a "$OUT_DIR/gpu.txt"

"$PY" -m torch.distributed.run --standalone --nproc_per_node=1 -m training.train \
  --out "$OUT_DIR/real" --data-root "$GPU_DATA/datasets" --datasets isic2020 \
  --imagenet-weights "$GPU_DATA/imagenet/tf_efficientnet_lite0.safetensors" \
  --fold none --epochs 4 --image-size "$SIZE" --batch-size "$BATCH" --workers "$WORKERS" --amp auto

"$PY" -m torch.distributed.run --standalone --nproc_per_node=1 -m bench.train_synthetic \
  --image-size "$SIZE" --batch-size "$BATCH" --steps 60 | tee "$OUT_DIR/synthetic.json"

"$PY" - "$OUT_DIR" <<'PYEOF'
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
epochs = [json.loads(line) for line in (out / "real" / "log.jsonl").read_text().splitlines()]
real = statistics.median(e["images_per_s"] for e in epochs[1:])  # epoch 1 pays worker start-up and autotuning
synthetic = json.loads((out / "synthetic.json").read_text().splitlines()[-1])["synthetic_images_per_s"]
summary = {"real_images_per_s": round(real, 1), "synthetic_images_per_s": round(synthetic, 1),
           "real_over_synthetic": round(real / synthetic, 3), "epochs_measured": len(epochs) - 1}
print(json.dumps(summary))
(out / "summary.json").write_text(json.dumps(summary, indent=2))
PYEOF
