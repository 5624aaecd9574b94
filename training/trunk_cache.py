"""Cache the frozen ImageNet trunk's activations for every image view (see training/partial.py).

    python -m training.trunk_cache --out runs/trunk_cache                       # all training sources + derm7pt
    python -m training.trunk_cache --out runs/trunk_cache --limit-per-dataset 40  # a smoke run
    python -m training.trunk_cache --config training/recipes/tail_blocks52_288.json --out runs/trunk_cache_288

For each dataset: `<out>/<dataset>.npy` (float16, images x views x C x H x W, memory-mapped) and
`<out>/<dataset>.csv` (the records, row-aligned). Views: 0 = the image as scored at inference, 1 = its
horizontal flip (together: the deployed 2-view TTA, so out-of-fold predictions use exactly the deployed
views), 2.. = random training augmentations (crop, flips, rotation, colour, resampling, re-compression),
seeded per image. External datasets get views 0-1 only. Resumable: an interrupted dataset continues
where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchvision.transforms import v2
from tqdm import tqdm

from data.datasets import EXTERNAL_ONLY, load_dataset
from data.images import decode_image
from data.transforms import RandomDegrade, colour_constancy_step, eval_transform, preprocess_steps, train_transform
from model.network import NetworkConfig
from model.predictor import TTA_VIEWS
from model.pretrained import build_network
from training.partial import trunk_modules
from training.recipe import parse_config

logger = logging.getLogger(__name__)
TTA_VIEW_COUNT = 2  # views 0 and 1: identity and horizontal flip, the deployed TTA policy
TRAIN_SOURCES = ("ham10000", "isic2017", "isic2020", "isic2020_patients")


def image_seed(image_id: str, seed: int) -> int:
    return (zlib.crc32(image_id.encode()) + 1_000_003 * seed) % (2**31)


def view_tensors(image, image_id: str, views: int, size: int, mean, std, seed: int) -> list[torch.Tensor]:
    """The `views` inputs of one image: identity, hflip, then seeded random augmentations."""
    clean = eval_transform(size, mean, std)(image)
    out = [view(clean) for view in TTA_VIEWS[: min(views, TTA_VIEW_COUNT)]]  # the deployed predictor's own views
    if views > TTA_VIEW_COUNT:
        state = torch.get_rng_state()
        torch.manual_seed(image_seed(image_id, seed))
        augment = v2.Compose([RandomDegrade(), train_transform(size, mean, std)])
        out += [augment(image) for _ in range(views - TTA_VIEW_COUNT)]
        torch.set_rng_state(state)
    return out


def build_trunk(backbone: str, cut: str, image_size: int) -> tuple[torch.nn.Module, NetworkConfig]:
    from model.fast_cpu import fuse_conv_bn

    config = NetworkConfig(backbone=backbone, image_size=image_size)
    net = build_network(config, imagenet=True).eval()
    trunk = trunk_modules(net.backbone, cut).eval()
    x = torch.randn(2, 3, image_size, image_size)
    fused, _ = fuse_conv_bn(trunk, (x,))
    with torch.inference_mode():
        gap = float((fused(x) - trunk(x)).abs().max())
        if not gap <= 1e-3:  # folding changed the numbers (a NaN gap too, which `gap > 1e-3` lets through)
            fused = trunk
    return fused.to(memory_format=torch.channels_last), config


def cache_dataset(
    name: str,
    records: pd.DataFrame,
    trunk: torch.nn.Module,
    config: NetworkConfig,
    out: Path,
    views: int,
    seed: int,
    batch_size: int = 32,
    preprocess: dict | None = None,
) -> Path:
    """Cache `records`' views; `preprocess`: the pixel steps the checkpoint will record (e.g. colour constancy),
    applied to each decoded image before its views are made, exactly as the predictor applies them."""
    path = out / f"{name}.npy"
    progress_file = out / f"{name}.progress"
    records = records.reset_index(drop=True)
    with torch.inference_mode():
        probe = trunk(torch.zeros(1, 3, config.image_size, config.image_size))
    shape = (len(records), views, *probe.shape[1:])
    done = int(progress_file.read_text()) if progress_file.exists() and path.exists() else 0
    if done and tuple(np.load(path, mmap_mode="r").shape) != shape:
        done = 0
    array = np.lib.format.open_memmap(path, mode="r+" if done else "w+", dtype=np.float16, shape=shape)
    if done == 0:
        records.to_csv(out / f"{name}.csv", index=False)
    if done >= len(records):
        return path

    steps = preprocess_steps(preprocess)

    def decode(i: int):
        image = decode_image(records.at[i, "image_path"])
        for step in steps:
            image = step(image)
        return image

    bar = tqdm(total=len(records), initial=done, desc=f"trunk {name}", unit="img", mininterval=10)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(done, len(records), batch_size):
            idx = list(range(start, min(start + batch_size, len(records))))
            images = list(pool.map(decode, idx))
            batch = [
                t
                for i, img in zip(idx, images, strict=True)
                for t in view_tensors(
                    img, str(records.at[i, "image_id"]), views, config.image_size, config.mean, config.std, seed
                )
            ]
            x = torch.stack(batch).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                # Small forward passes keep the activations in the CPU's cache (13 ms/view at 8, 30 at 128).
                h = torch.cat([trunk(x[s : s + 8]) for s in range(0, len(x), 8)]).float().numpy().astype(np.float16)
            array[idx[0] : idx[-1] + 1] = h.reshape(len(idx), views, *h.shape[1:])
            array.flush()
            progress_file.write_text(str(idx[-1] + 1))
            bar.update(len(idx))
    bar.close()
    return path


@dataclass
class TrunkCacheConfig:
    """The cache's settings; a recipe's "trunk_cache" section (--config) sets them, flags override."""

    out: str = "runs/trunk_cache"
    datasets: list[str] = field(default_factory=lambda: [*TRAIN_SOURCES, "derm7pt"])
    backbone: str = "tf_efficientnet_lite0"
    image_size: int = 224
    cut: str = "blocks.5.2"
    views: int = 4  # per training image (>= 2)
    # Shades of Gray colour constancy with this Minkowski power before every view (None: none); the models
    # trained on the cache record it as their `preprocess`, so the predictor does the same (data.transforms)
    colour_constancy_power: float | None = None
    seed: int = 42
    limit_per_dataset: int | None = None
    threads: int = os.cpu_count() or 1


def parse_args(argv: list[str] | None = None) -> TrunkCacheConfig:
    """Defaults, then a recipe's "trunk_cache" section (--config, training/recipes/), then the flags given."""
    return parse_config(
        TrunkCacheConfig, "trunk_cache", argv, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.views < TTA_VIEW_COUNT:
        print(f"--views must be at least {TTA_VIEW_COUNT}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "backbone": args.backbone,
        "image_size": args.image_size,
        "cut": args.cut,
        "views": args.views,
        "tta_views": TTA_VIEW_COUNT,
        "seed": args.seed,
        "limit_per_dataset": args.limit_per_dataset,
        "augment": "RandomDegrade() then data.transforms.train_transform",
        "preprocess": colour_constancy_step(args.colour_constancy_power),
    }
    meta_file = out / "cache.json"
    if meta_file.exists():
        old = json.loads(meta_file.read_text())
        if {k: old.get(k) for k in meta} != meta:
            print(f"{out} holds a cache made with other settings ({old}); choose another --out", file=sys.stderr)
            return 2
    # atomically: processes caching other datasets into the same folder read it at the same time
    tmp = meta_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, meta_file)
    trunk, config = build_trunk(args.backbone, args.cut, args.image_size)
    start = time.time()
    for name in args.datasets:
        records = load_dataset(name)
        if args.limit_per_dataset:
            records = records.sample(min(args.limit_per_dataset, len(records)), random_state=args.seed)
        views = TTA_VIEW_COUNT if name in EXTERNAL_ONLY else args.views
        cache_dataset(name, records, trunk, config, out, views, args.seed, preprocess=meta["preprocess"])
    print(f"trunk cache in {out} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
