"""How fast can the training images be produced? Per-image PIL augmentation in loader workers (what
training.train does by default) against batch augmentation of images decoded once (--batch-augment), on
real images of the four training sources, one CPU thread, and on the GPU when there is one.

    python -m bench.train_feed [--images 240] [--batch 64] [--data-root BUNDLE/datasets]

A GPU needs its feed at or above the synthetic-tensor bound (bench/train_synthetic.py); per-image
augmentation gives about `images/s per core` times the number of loader workers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from data.datasets import load_datasets
from data.images import decode_image
from data.transforms import RandomDegrade, train_transform
from training.batch_augment import BatchAugment
from training.decoded_images import decode_all
from training.trunk_cache import TRAIN_SOURCES

MEAN = STD = (0.5, 0.5, 0.5)


def per_image(paths: list[str], size: int) -> float:
    """images/s of decode + RandomDegrade + train_transform, one image at a time (one loader worker)."""
    augment, degrade = train_transform(size, MEAN, STD), RandomDegrade()
    start = time.perf_counter()
    for path in paths:
        augment(degrade(decode_image(path)))
    return len(paths) / (time.perf_counter() - start)


def batched(decoded: torch.Tensor, size: int, batch: int, device: torch.device, repeats: int) -> float:
    """images/s of BatchAugment (with degradation) on `device`, after one warm-up batch."""
    images = decoded.to(device)
    augment, generator = BatchAugment(size, MEAN, STD, degrade=True), torch.Generator().manual_seed(0)
    augment(images[:batch], generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start, done = time.perf_counter(), 0
    for _ in range(repeats):
        for i in range(0, len(images) - batch + 1, batch):
            augment(images[i : i + batch], generator)
            done += batch
    if device.type == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--data-root", default=None, help="a bundle's datasets/ folder (default: ../shared)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    records = load_datasets(list(TRAIN_SOURCES), Path(args.data_root) if args.data_root else None)
    records = records.groupby("dataset").head(args.images // len(TRAIN_SOURCES))
    paths = records["image_path"].tolist()
    start = time.perf_counter()
    decoded = decode_all(paths, args.side)
    result = {
        "images": len(paths),
        "decode_once_images_per_s": round(len(paths) / (time.perf_counter() - start), 1),
        "per_image_pil_images_per_s_per_core": round(per_image(paths, args.size), 1),
        "batch_cpu_1_thread_images_per_s": round(batched(decoded, args.size, args.batch, torch.device("cpu"), 1), 1),
    }
    if torch.cuda.is_available():
        result["batch_gpu_images_per_s"] = round(batched(decoded, args.size, args.batch, torch.device("cuda"), 20), 1)
        result["gpu"] = torch.cuda.get_device_name()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
