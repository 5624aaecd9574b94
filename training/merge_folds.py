"""Merge cross-validation runs made fold by fold (in parallel processes) into one run folder.

    python -m training.train_cached --config R --fold 0 --out runs/x/cv_parts/0   # one process per fold ...
    python -m training.merge_folds --parts runs/x/cv_parts/* --out runs/x/cv

Folds are independent (each trains from the same seed on its own patients), so WORKERS single-threaded
processes can train them side by side on as many cores, but `train_cached --fold all` writes one
folder. This joins the parts into exactly what `--fold all` leaves: `oof.csv`, `oof_embeddings.npz` and
`summary.json` (the folds in order, the settings the parts share). The parts must be the same run (settings
and cache) except for the fold, and together hold every fold once; nothing is trained or refitted here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from training.assemble_default import load_embeddings
from training.train_cached import save_embeddings

# settings that may differ between the parts of one run: which fold, where it was written
PER_PART = ("fold", "out")


class MergeError(ValueError):
    pass


def read_part(folder: Path) -> tuple[dict, pd.DataFrame]:
    for name in ("summary.json", "oof.csv", "oof_embeddings.npz"):
        if not (folder / name).exists():
            raise MergeError(f"{folder}: no {name} (is that fold's run finished?)")
    summary = json.loads((folder / "summary.json").read_text())
    oof = pd.read_csv(folder / "oof.csv", dtype={"image_id": str, "group_id": str})
    return summary, oof


def shared_settings(summaries: list[dict], folders: list[Path]) -> dict:
    first = {k: v for k, v in summaries[0]["config"].items() if k not in PER_PART}
    for summary, folder in zip(summaries[1:], folders[1:], strict=True):
        config = {k: v for k, v in summary["config"].items() if k not in PER_PART}
        differ = sorted(k for k in first.keys() | config.keys() if first.get(k) != config.get(k))
        if differ:
            raise MergeError(f"{folder} is another run than {folders[0]}: settings {differ} differ")
        if summary.get("cache") != summaries[0].get("cache"):
            raise MergeError(f"{folder} was trained on another trunk cache than {folders[0]}")
    return first


def merge(parts: list[Path], out: Path) -> dict:
    if not parts:
        raise MergeError("no parts given")
    read = [read_part(p) for p in parts]
    summaries = [s for s, _ in read]
    config = shared_settings(summaries, parts)
    folds = [f for s in summaries for f in s["folds"]]
    names = [f["name"] for f in folds]
    expected = [f"fold{k}" for k in range(config["n_folds"])]
    if sorted(names) != expected:
        raise MergeError(f"the parts hold folds {sorted(names)}, not each of {expected} once")
    oof = pd.concat([frame for _, frame in read], ignore_index=True)
    twice = oof.loc[oof["image_id"].duplicated(), "image_id"]
    if len(twice):
        raise MergeError(f"an image is predicted by two parts, e.g. {twice.iloc[0]}")
    # each part's embeddings in its own rows' order, so they stay row-aligned with `oof` through the sort
    embedding = np.concatenate(
        [load_embeddings(p / "oof_embeddings.npz", f["image_id"]) for p, (_, f) in zip(parts, read, strict=True)]
    )
    if np.isnan(embedding).any():
        raise MergeError(f"{int(np.isnan(embedding).any(axis=1).sum())} image(s) without an embedding in their part")
    order = {name: i for i, name in enumerate(expected)}
    rows = oof["fold"].map(order).to_numpy().argsort(kind="stable")
    oof, embedding = oof.iloc[rows].reset_index(drop=True), embedding[rows]
    out.mkdir(parents=True, exist_ok=True)
    oof.to_csv(out / "oof.csv", index=False)
    save_embeddings(out / "oof_embeddings.npz", oof, embedding)
    summary = {
        "config": {**config, "fold": "all", "out": str(out)},
        "cache": summaries[0].get("cache"),
        "n_images": summaries[0].get("n_images"),
        "folds": sorted(folds, key=lambda f: order[f["name"]]),
        # compute time of all parts (they ran side by side, so more than the wall time)
        "seconds": round(sum(s.get("seconds", 0) for s in summaries), 1),
        "merged_from": [str(p) for p in parts],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", type=Path, required=True, help="run folders of single folds")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        summary = merge(args.parts, args.out)
    except MergeError as error:
        print(f"merge_folds: {error}", file=sys.stderr)
        return 2
    print(f"{args.out}: {len(summary['folds'])} folds merged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
