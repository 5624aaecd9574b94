"""The data bundle: a re-encoded copy of the datasets that a model can be trained on, and its bundle.json.

    BUNDLE/                      (bench.bundle_data writes one at .gpu_data/ for the GPU machine)
        bundle.json              how the images were re-encoded: this module reads and writes it
        datasets/<name>/...      the readers' own layouts, CSV files unchanged, images re-encoded
        imagenet/<backbone>.safetensors

bundle.json (a bundle of original bytes has "codec": null and "inference_preprocess": null):
    {"codec": {"format": "WEBP", "quality": 75},
     "max_side": {"isic2020": 384, "isic2017": 224, "ham10000": null},
     "inference_preprocess": {"reencode": {"format": "WEBP", "quality": 75, "max_side": 384}}}

A model trained on these pixels must see the same kind of pixels at inference: the trainer copies
`inference_preprocess` into its checkpoints (see data.transforms.Reencode), found through
`inference_preprocess(data_root)` with `--data-root BUNDLE/datasets`.

The format lives here, in training, because the trainer reads it; bench only produces bundles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MANIFEST = "bundle.json"
DATASETS = "datasets"


def manifest(codec_format: str, quality: int, max_side: dict[str, int | None], inference_max_side: int | None) -> dict:
    """The content of bundle.json for images re-encoded as `codec_format` at `quality`, per-dataset `max_side`."""
    return {
        "codec": {"format": codec_format, "quality": quality},
        "max_side": dict(max_side),
        "inference_preprocess": {
            "reencode": {"format": codec_format, "quality": quality, "max_side": inference_max_side}
        },
    }


def original_manifest(sources: tuple[str, ...] | list[str]) -> dict:
    """bundle.json for a bundle of original bytes: nothing was re-encoded, so inference re-encodes nothing."""
    return {"codec": None, "sources": list(sources), "inference_preprocess": None}


def write_manifest(folder: str | Path, content: dict[str, Any]) -> Path:
    path = Path(folder) / MANIFEST
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """bundle.json of a bundle folder, or None when the folder is not a bundle."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def inference_preprocess(data_root: str | Path | None) -> dict[str, Any] | None:
    """The re-encoding a model trained from `data_root` (a bundle's datasets/ folder) needs at inference,
    or None for original images (no data root given, or not inside a bundle)."""
    if not data_root:
        return None
    found = read_manifest(Path(data_root).parent)
    return found.get("inference_preprocess") if found else None
