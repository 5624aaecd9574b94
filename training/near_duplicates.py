"""Near-duplicate training images (one lesion under two names): find candidates, and measure what the known
pairs did to a model's out-of-fold figures.

    python -m training.near_duplicates find --out candidates.csv        # pairs for a person to confirm
    python -m training.near_duplicates report --checkpoint model/weights/default

``find`` compares small grey thumbnails (16 x 16, each normalised to mean 0 and unit norm, so a brightness or
contrast change between the two uploads does not hide a copy) of every image of the training sources, and
lists the pairs whose correlation reaches ``--min-correlation`` and that are not yet in one group. Look at
each pair before adding it to ``data/near_duplicates.csv``: plain nevi on plain skin can correlate as highly.

``report`` scores a checkpoint's out-of-fold table (``cv/oof.csv``) with and without both copies of every
listed pair, per source, writes that under ``near_duplicates`` in its validation.json and renders its model
card again. Folds drawn since the list exists keep every pair in one group (``data.near_duplicates``), so a
new model's report shows no pair split across folds.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from data.near_duplicates import PAIRS_CSV, load_pairs
from model.metrics import roc_auc
from training.calibration import apply, tta_logits

THUMBNAIL = 16
MIN_CORRELATION = 0.985  # every confirmed pair so far lies above it
BLOCK = 2048


def signature(path: str | Path) -> np.ndarray:
    """The image as a 16 x 16 grey thumbnail, mean 0 and unit norm (cheap: JPEG draft decoding)."""
    with Image.open(path) as image:
        image.draft("L", (4 * THUMBNAIL, 4 * THUMBNAIL))
        grey = image.convert("L").resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR)
    values = np.asarray(grey, dtype=np.float32).ravel()
    values -= values.mean()
    return values / (np.linalg.norm(values) or 1.0)


def candidate_pairs(signatures: np.ndarray, min_correlation: float = MIN_CORRELATION) -> list[tuple[int, int, float]]:
    """Index pairs (i < j) whose signatures correlate at least ``min_correlation``, blockwise to bound memory."""
    found = []
    for start in range(0, len(signatures), BLOCK):
        block = signatures[start : start + BLOCK] @ signatures.T
        rows, cols = np.nonzero(block >= min_correlation)
        found += [(start + i, j, float(block[i, j])) for i, j in zip(rows, cols, strict=True) if start + i < j]
    return found


def find(records: pd.DataFrame, min_correlation: float = MIN_CORRELATION) -> pd.DataFrame:
    """Candidate pairs among ``records`` (image_id, dataset, group_id, target, image_path) not yet in one group."""
    paths = records["image_path"].tolist()
    signatures = np.stack([signature(p) for p in tqdm(paths, desc="thumbnails", unit="img")])
    rows = []
    for i, j, corr in candidate_pairs(signatures, min_correlation):
        a, b = records.iloc[i], records.iloc[j]
        if a["group_id"] != b["group_id"]:
            rows.append(
                {
                    "image_a": a["image_id"],
                    "image_b": b["image_id"],
                    "correlation": round(corr, 4),
                    "dataset_a": a["dataset"],
                    "dataset_b": b["dataset"],
                    "target_a": a["target"],
                    "target_b": b["target"],
                }
            )
    columns = ["image_a", "image_b", "correlation", "dataset_a", "dataset_b", "target_a", "target_b"]
    return pd.DataFrame(rows, columns=columns).sort_values("correlation", ascending=False, ignore_index=True)


def report(
    oof: pd.DataFrame,
    pairs: Iterable[tuple[str, str]],
    pairs_file: str = "data/near_duplicates.csv",
    scale: float = 1.0,
    bias: float = 0.0,
) -> dict:
    """What the listed pairs present in an out-of-fold table did to it: how many were split across folds, and
    each source's AUC with and without both copies of every pair. Scored as the model deploys: the mean of its
    calibrated view probabilities (scale, bias: the checkpoint's calibration), so "AUC as reported" is the AUC
    the card's lesion table reports."""
    by_id = oof.set_index("image_id")
    present = [(a, b) for a, b in pairs if a in by_id.index and b in by_id.index]
    split = [(a, b) for a, b in present if by_id.at[a, "fold"] != by_id.at[b, "fold"]]
    copies = {image for pair in present for image in pair}
    score = apply(tta_logits(oof), scale, bias)
    by_dataset = {}
    for name, rows in oof.groupby("dataset", sort=False).indices.items():
        frame, s = oof.iloc[rows], score[rows]
        keep = ~frame["image_id"].isin(copies).to_numpy()
        if keep.all():
            continue
        y = frame["target"].to_numpy(int)
        by_dataset[str(name)] = {
            "auc": roc_auc(y, s),
            "auc_without": roc_auc(y[keep], s[keep]),
            "dropped": int((~keep).sum()),
        }
    return {
        "list": pairs_file,
        "pairs": len(present),
        "split_across_folds": len(split),
        "melanoma_pairs_split": sum(int(by_id.at[a, "target"] == 1 or by_id.at[b, "target"] == 1) for a, b in split),
        "by_dataset": by_dataset,
    }


def update_checkpoint(checkpoint: Path, pairs: Sequence[tuple[str, str]]) -> dict:
    """Write ``report`` into the checkpoint's validation.json and render its model card from it again."""
    from training.evidence import update_evidence

    oof = pd.read_csv(checkpoint / "cv" / "oof.csv", dtype={"image_id": str, "group_id": str})
    network = json.loads((checkpoint / "config.json").read_text()).get("network") or {}
    result = report(oof, pairs, scale=network.get("logit_scale", 1.0), bias=network.get("logit_bias", 0.0))

    def add_report(validation: dict) -> dict:
        validation["near_duplicates"] = result
        return result

    return update_evidence(checkpoint, add_report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    finder = commands.add_parser("find", help="list candidate pairs for a person to confirm")
    finder.add_argument("--out", type=Path, required=True, help="CSV of candidate pairs")
    finder.add_argument("--datasets", nargs="+", default=["ham10000", "isic2017", "isic2020", "isic2020_patients"])
    finder.add_argument("--min-correlation", type=float, default=MIN_CORRELATION)
    reporter = commands.add_parser("report", help="a checkpoint's figures with and without the listed pairs")
    reporter.add_argument("--checkpoint", type=Path, required=True)
    reporter.add_argument("--pairs", type=Path, default=PAIRS_CSV)
    args = parser.parse_args(argv)
    if args.command == "find":
        from data.datasets import load_datasets

        candidates = find(load_datasets(args.datasets), args.min_correlation)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        candidates.to_csv(args.out, index=False)
        print(f"{args.out}: {len(candidates)} candidate pairs not yet in one group; confirm each by eye")
        return 0
    if not (args.checkpoint / "cv" / "oof.csv").is_file():
        print(f"{args.checkpoint}: no cv/oof.csv (is it an assembled checkpoint?)", file=sys.stderr)
        return 2
    result = update_checkpoint(args.checkpoint, load_pairs(args.pairs))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
