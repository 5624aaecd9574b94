"""Which further complete ISIC 2020 patients to add to ../shared so whole-patient differences can be decided.

    python -m training.patient_request --melanoma-patients 48 --benign-patients 100 --out runs/patient_request.csv

On the 17 complete patients with a melanoma in `isic2020_patients`, a gain in the share reviewed before the first
melanoma must be ~0.1 before the project's rule can tell it from noise (bench/RESULTS.md, "How much the
whole-patient rule can see"); ~40-65 melanoma patients would see the issue's 0.06. ISIC 2020's full metadata
(`isic2020/metadata/train_full.csv`, 2,056 patients) lists every image of every patient, so this draws, with a
seed, patients not yet in `isic2020_patients` (with and without a melanoma) and lists all their images: the
request for whoever curates ../shared. It reads metadata only; ISIC image and patient names are the archive's
public pseudonyms.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from data.datasets import datasets_root

FULL_METADATA = Path("isic2020") / "metadata" / "train_full.csv"
COMPLETE_PATIENTS = Path("isic2020_patients") / "train.csv"
COLUMNS = ["patient_id", "image_name", "target", "diagnosis"]  # what a curator needs; the rest is in the archive


def draw_patients(
    full: pd.DataFrame, have: set[str], melanoma_patients: int, benign_patients: int, seed: int
) -> pd.DataFrame:
    """Every image of `melanoma_patients` patients with a melanoma and `benign_patients` without, drawn at
    random (seeded) among the patients not in `have`; a request larger than what is left is refused."""
    per_patient = full.groupby("patient_id")["target"].max()
    candidates = per_patient[~per_patient.index.isin(have)]
    rng = np.random.default_rng(seed)
    chosen = []
    for label, wanted, what in ((1, melanoma_patients, "with"), (0, benign_patients, "without")):
        pool = np.sort(candidates[candidates == label].index.to_numpy())
        if wanted > len(pool):
            raise ValueError(f"only {len(pool)} patients {what} a melanoma are not yet complete; asked for {wanted}")
        chosen.extend(rng.choice(pool, wanted, replace=False).tolist())
    images = full[full["patient_id"].isin(chosen)]
    return images[[c for c in COLUMNS if c in images]].sort_values(["patient_id", "image_name"]).reset_index(drop=True)


def summary(request: pd.DataFrame, have: int) -> str:
    patients = request.groupby("patient_id")["target"].agg(["size", "sum"])
    return (
        f"{len(patients)} patients ({int((patients['sum'] > 0).sum())} with a melanoma), {len(request)} images, "
        f"{int(request['target'].sum())} melanomas, {int(patients['size'].median()) if len(patients) else 0} "
        f"images per patient (median); {have} complete patients already in isic2020_patients"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--melanoma-patients", type=int, default=48, help="patients with a melanoma to add")
    parser.add_argument("--benign-patients", type=int, default=100, help="patients without a melanoma to add")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, help="the datasets folder (default: ../shared/datasets)")
    parser.add_argument("--out", type=Path, required=True, help="CSV: one row per requested image")
    args = parser.parse_args(argv)
    if args.melanoma_patients < 0 or args.benign_patients < 0:
        parser.error("patient counts must be >= 0")
    root = args.data_root or datasets_root()
    for path in (root / FULL_METADATA, root / COMPLETE_PATIENTS):
        if not path.is_file():
            print(f"{path}: not found (is --data-root the datasets folder?)", file=sys.stderr)
            return 2
    full = pd.read_csv(root / FULL_METADATA)
    have = set(pd.read_csv(root / COMPLETE_PATIENTS)["patient_id"])
    try:
        request = draw_patients(full, have, args.melanoma_patients, args.benign_patients, args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    request.to_csv(args.out, index=False)
    print(f"{args.out}: {summary(request, len(have))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
