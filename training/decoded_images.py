"""A training set decoded once into one uint8 tensor (N, 3, side, side), for batch augmentation
(training/batch_augment.py).

The shared sources are small (ISIC 2020 512 px, complete patients 384 px, ISIC 2017 256 px, HAM10000 200x150),
so side=256 holds 16,000 images in ~3 GB. Images are squashed to a square as the deployed predictor's own
resize does (data.transforms.eval_transform: Resize((size, size))), so training sees the same aspect.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from data.images import decode_image
from data.transforms import preprocess_steps


def _decode_one(job: tuple[str, int, list]) -> np.ndarray:
    path, side, steps = job
    image = decode_image(path)
    for step in steps:  # on the decoded image, before the resize, as the predictor does
        image = step(image)
    image = image.resize((side, side), Image.Resampling.BICUBIC, reducing_gap=None)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()


def decode_all(
    paths: list[str], side: int, workers: int = 0, progress: bool = False, preprocess: dict | None = None
) -> torch.Tensor:
    """uint8 (len(paths), 3, side, side), each image passed through the `preprocess` pixel steps first (a
    checkpoint's entry, e.g. colour constancy); a file that cannot be decoded stops the run, naming it."""
    steps = preprocess_steps(preprocess)  # built once; an unknown step stops here, before any decoding
    out = torch.empty((len(paths), 3, side, side), dtype=torch.uint8)
    jobs = [(str(p), side, steps) for p in paths]
    bar = tqdm(total=len(jobs), desc=f"decoding at {side} px", disable=not progress, file=sys.stderr, mininterval=5)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for i, array in enumerate(pool.map(_decode_one, jobs, chunksize=64)):
                out[i] = torch.from_numpy(array)
                bar.update(1)
    else:
        for i, job in enumerate(jobs):
            out[i] = torch.from_numpy(_decode_one(job))
            bar.update(1)
    bar.close()
    return out
