"""Which CAM method covers the lesion best? Share of CAM energy inside the lesion, and the pointing game.

    python -m bench.cam_coverage [--dataset isic2017] [--n 60] [--seed 0] [--write bench/RESULTS.md]

For each image (random, seeded, from one dataset read by data.readers) and each method in the CAM registry
(model/cam_methods.py), with the shipped default model (or --checkpoint):
* energy inside: sum of the heatmap inside the lesion mask / sum over the image (a map spread evenly over
  the frame scores the mask's share of the frame, printed as "mask area" for comparison);
* pointing game: the heatmap's maximum lies inside the lesion mask (dilated by 15 px at 224 px, as usual).

The lesion masks are NOT expert segmentations: ../shared holds no ISIC segmentation ground truth, so each
mask is a classical unsupervised segmentation of the dermoscopic image (Otsu threshold on a smoothed
darkness channel, the dark vignette at the border removed, the largest remaining component, holes filled).
Images whose mask covers under 5% or over 85% of the frame are skipped and counted, because there the
segmentation has most likely failed. Figures are printed (and written with --write), never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from data.datasets import load_dataset
from data.images import decode_image
from model.cam import explain_many
from model.cam_methods import CAM_LABELS, CAM_METHODS, DEFAULT_METHOD, GRADIENT_FREE
from model.checkpoint import DEFAULT_CHECKPOINT
from model.predictor import Predictor

SECTION = "## CAM lesion coverage (CPU)"
MIN_MASK, MAX_MASK = 0.05, 0.85  # mask share of the frame outside which the segmentation is not trusted
POINTING_TOLERANCE = 15 / 224  # of the image's shorter side


# ---------------------------------------------------------------- lesion mask (a proxy, see the docstring)


def _largest_central_component(binary: np.ndarray) -> np.ndarray:
    """The component with the most pixels that does not touch the border (else the largest one)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(binary, dtype=bool)
    h, w = binary.shape
    best, best_area, fallback, fallback_area = 0, 0, 0, 0
    for label in range(1, count):
        x, y, bw, bh, area = stats[label]
        touches = x == 0 or y == 0 or x + bw >= w or y + bh >= h
        if area > fallback_area:
            fallback, fallback_area = label, area
        if not touches and area > best_area:
            best, best_area = label, area
    return labels == (best or fallback)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(mask.shape, dtype=np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def lesion_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of the dark lesion in a dermoscopic image (uint8 RGB)."""
    h, w = rgb.shape[:2]
    # Darkness: lesions are darker than skin, most of all in the blue channel; a soft blur removes hair.
    darkness = 255 - rgb[..., 2].astype(np.float32) * 0.5 - rgb.mean(axis=2) * 0.5
    k = max(3, (min(h, w) // 40) | 1)
    darkness = cv2.GaussianBlur(darkness.astype(np.uint8), (k, k), 0)
    # Otsu on the central region only, so a black dermoscope vignette does not set the threshold.
    cy, cx = h // 6, w // 6
    threshold, _ = cv2.threshold(darkness[cy : h - cy, cx : w - cx], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    binary = darkness > threshold
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    binary = cv2.morphologyEx(binary.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
    return _fill_holes(_largest_central_component(binary))


# ---------------------------------------------------------------- coverage measures


def energy_inside(heat: np.ndarray, mask: np.ndarray) -> float:
    """Share of the map's energy inside the mask; 0 for an empty map (it shows the clinician nothing)."""
    total = float(heat.sum())
    return float(heat[mask].sum()) / total if total > 0 else 0.0


def pointing_hit(heat: np.ndarray, mask: np.ndarray, tolerance: float = POINTING_TOLERANCE) -> bool:
    """The map's maximum lies inside the (slightly dilated) mask; an empty map points nowhere."""
    if not float(heat.max(initial=0.0)) > 0:
        return False
    radius = max(1, round(tolerance * min(mask.shape)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    grown = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return bool(grown[y, x])


# ---------------------------------------------------------------- run


def measure(predictor: Predictor, records, methods: list[str]) -> dict:
    images, masks, kept, skipped = [], [], [], 0
    for _, row in records.iterrows():
        image = decode_image(row["image_path"])
        mask = lesion_mask(np.asarray(image))
        if not MIN_MASK <= mask.mean() <= MAX_MASK:
            skipped += 1
            continue
        images.append(image)
        masks.append(mask)
        kept.append(row)
    frame = pd.DataFrame(kept).reset_index(drop=True)
    area = np.array([m.mean() for m in masks])
    results: dict[str, dict] = {}
    for method in methods:
        start = time.perf_counter()
        heats = explain_many(predictor, images, frame, method)
        seconds = time.perf_counter() - start
        energy = np.array([energy_inside(h, m) for h, m in zip(heats, masks, strict=True)])
        hits = np.array([pointing_hit(h, m) for h, m in zip(heats, masks, strict=True)])
        empty = int(sum(not float(h.max(initial=0.0)) > 0 for h in heats))
        results[method] = {"energy": energy, "hits": hits, "seconds": seconds, "empty": empty}
    return {"n": len(images), "skipped": skipped, "area": area, "results": results}


def _sem(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def paired_interval(a: np.ndarray, b: np.ndarray, draws: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b over the same images, with a 95% bootstrap interval (images resampled)."""
    diff = np.asarray(a) - np.asarray(b)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(draws, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def _label(method: str) -> str:
    return CAM_LABELS[method].split(" (")[0]


def report(run: dict, dataset: str, checkpoint: str, model_id: str) -> tuple[list[str], str]:
    """Markdown lines and the best score-specific method (gradient-free maps do not explain the score)."""
    results, area = run["results"], run["area"]
    order = sorted(results, key=lambda m: -results[m]["energy"].mean())
    specific = [m for m in order if m not in GRADIENT_FREE]
    best = specific[0] if specific else order[0]
    lines = [
        SECTION,
        "",
        f"Measured {dt.date.today().isoformat()} with `python -m bench.cam_coverage --dataset {dataset} --n "
        f"{run['n'] + run['skipped']}` on {os.cpu_count()} CPU core(s), torch {torch.__version__} (1 thread), "
        f"Python {platform.python_version()}; model {model_id} ({checkpoint}).",
        f"Data: {run['n']} random {dataset} images (seeded draw of {run['n'] + run['skipped']}; "
        f"{run['skipped']} skipped because their lesion mask covered <{MIN_MASK:.0%} or >{MAX_MASK:.0%} of the "
        "frame). The lesion masks are an unsupervised Otsu segmentation, not expert masks (../shared has none), "
        "so the figures compare the methods with each other; they are not a localisation accuracy.",
        f"Mean mask area: {area.mean():.1%} of the frame: what a map spread evenly over the image would score. "
        "An empty map (nothing above zero) counts as 0% and as a miss.",
        "",
        f"| method | explains the score | CAM energy inside the lesion (mean ± s.e.) | paired difference vs "
        f"{_label(best)} (95% bootstrap CI) | pointing game | empty maps | seconds per image |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in order:
        r = results[method]
        diff = (
            "—"
            if method == best
            else "{:+.1%} ({:+.1%} to {:+.1%})".format(*paired_interval(r["energy"], results[best]["energy"]))
        )
        lines.append(
            f"| {_label(method)} | {'no (gradient-free)' if method in GRADIENT_FREE else 'yes'} | "
            f"{r['energy'].mean():.1%} ± {_sem(r['energy']):.1%} | {diff} | {r['hits'].mean():.0%} | "
            f"{r['empty']}/{run['n']} | {r['seconds'] / max(run['n'], 1):.2f} |"
        )
    lines += [
        "",
        f"Best on average among the methods that explain the score: **{_label(best)}**; the CAM registry's "
        f"default (model/cam_methods.py) is {_label(DEFAULT_METHOD)}"
        + (" (the same)." if best == DEFAULT_METHOD else " (see the paired difference above).")
        + " A gradient-free map shows where the network's features are strongest whatever the score, so it is "
        "offered for comparison but not chosen as the default even when it covers more.",
        "",
    ]
    return lines, best


def write_section(path: Path, lines: list[str]) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(SECTION)
    block = "\n".join(lines).rstrip() + "\n"
    if start < 0:
        text = text.rstrip() + "\n\n" + block
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + block + (text[end + 1 :] if end >= 0 else "")
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="isic2017")
    parser.add_argument("--n", type=int, default=80, help="images drawn before skipping failed masks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--methods", nargs="+", default=list(CAM_METHODS))
    parser.add_argument("--write", type=Path, help="replace this benchmark's section of a RESULTS.md")
    args = parser.parse_args(argv)

    predictor = Predictor.from_checkpoint(args.checkpoint, device="cpu")
    torch.set_num_threads(1)  # a shared machine: one core
    records = load_dataset(args.dataset).sample(n=args.n, random_state=args.seed)
    run = measure(predictor, records, args.methods)
    try:
        shown = args.checkpoint.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = args.checkpoint
    lines, _ = report(run, args.dataset, str(shown), predictor.model_id)
    print("\n".join(lines))
    if args.write:
        write_section(args.write, lines)


if __name__ == "__main__":
    main()
