"""Bundle a compact copy of ../shared/datasets for the GPU machine (which cannot see ../shared).

    python -m bench.bundle_data [--out .gpu_data]

Writes the same layouts (CSV files unchanged) with images re-encoded as WebP (quality 75), so the
same readers work on it: ISIC 2020 at 384 px (the GPU check trains at 384), ISIC 2017 at 224 px,
HAM10000 at its native 200×150. Also writes the ImageNet lite0 weights as a timm-named safetensors
file. The bundle format (bundle.json, the folder layout) is defined in training/bundle.py. The folder
is git-ignored and must stay under the device tool's 64 MiB limit.
"""

from __future__ import annotations

import argparse
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from data.readers import datasets_root
from data.transforms import Reencode
from training.bundle import DATASETS, manifest, write_manifest

QUALITY = 75  # keeps the bundle (images + weights) well under the device tool's 64 MiB
SIZES = {"isic2020": 384, "isic2017": 224, "ham10000": None}


def _encode(job: tuple[str, str, int | None]) -> int:
    src, dst, size = job
    with Image.open(src) as im:
        data = Reencode("WEBP", QUALITY, size).encode(im)  # the same code reproduces it at inference time
    Path(dst).write_bytes(data)
    return len(data)


def bundle(out: Path) -> None:
    src_root = datasets_root()
    jobs = []
    for name, size in SIZES.items():
        src = src_root / name
        for path in src.rglob("*"):
            rel = path.relative_to(src)
            target = out / DATASETS / name / rel
            if path.is_dir() or rel.parts[0] == "metadata" or rel.parts[0] == "test":
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix.lower() == ".csv":
                shutil.copyfile(path, target)
            elif path.suffix.lower() in (".jpg", ".jpeg", ".png"):
                jobs.append((str(path), str(target.with_suffix(".webp")), size))
    with ProcessPoolExecutor() as pool:
        total = sum(pool.map(_encode, jobs, chunksize=64))
    print(f"{len(jobs)} images, {total / 2**20:.1f} MiB")
    # A model trained on these pixels must see the same kind of pixels at inference (training.bundle).
    write_manifest(out, manifest("WEBP", QUALITY, SIZES, inference_max_side=SIZES["isic2020"]))

    from safetensors.torch import save_file

    from model.network import MelanomaNet, NetworkConfig
    from model.pretrained import load_imagenet_weights

    net = MelanomaNet(NetworkConfig())
    load_imagenet_weights(net.backbone, "tf_efficientnet_lite0")
    (out / "imagenet").mkdir(parents=True, exist_ok=True)
    save_file(
        {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in net.backbone.state_dict().items()},
        str(out / "imagenet" / "tf_efficientnet_lite0.safetensors"),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(".gpu_data"))
    bundle(parser.parse_args().out)
