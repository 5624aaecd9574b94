"""Compare training runs on the same out-of-fold evidence before one becomes the default.

    python -m training.compare_runs --reference runs/model3/cv --candidate runs/v22/cv \
        --candidate runs/model3/cv+runs/seed43/cv --out runs/v22/compare.md

A run is a cross-validation folder with an `oof.csv` (training/train_cached.py, training/train.py); `a+b`
is the ensemble of runs a and b (the mean of their TTA-averaged logits, matched by image). Every candidate is
compared with the reference on the images both scored:

- lesion-level ROC AUC per training source, with the paired difference (candidate - reference) and its 95%
  interval from a patient bootstrap (a patient's lesions are resampled together);
- the whole-patient ranking on the complete patients (training/whole_patient.py): share of lesions reviewed
  before the first melanoma, top-5, within-patient AUC, each with a paired patient-bootstrap difference.

Each difference also gets the smallest difference that comparison could detect, from the width of its own
interval (standard error ~ width / 3.92; detectable at 80% power, two-sided 5%: 2.80 standard errors): a
difference smaller than that is not evidence either way (on 17 melanoma patients, about 0.1 of share;
bench/RESULTS.md, "How much the whole-patient rule can see").

AUC and ranking do not depend on calibration, so raw logits are compared; the card's rule (out-of-fold
first, the external test read only after the choice) stays with the person choosing. Seeds change the fold
assignment too, so a rerun of the same recipe with another seed measures how much of a difference is noise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from model.metrics import bootstrap_ci, roc_auc
from training import whole_patient
from training.calibration import mean_logit
from training.whole_patient import WHOLE_PATIENT_SOURCE

RANKING_METRICS = ("share_before", "top5", "within_auc")
Z_TWO_SIDED_5, Z_POWER_80 = 1.959964, 0.841621


def detectable_difference(ci: list[float]) -> float:
    """The true difference that a 95% interval this wide would exclude 0 for 4 times in 5: 2.80 standard
    errors, the standard error read off the interval (its width / 3.92; NaN for an undefined interval)."""
    standard_error = (ci[1] - ci[0]) / (2 * Z_TWO_SIDED_5)
    return float((Z_TWO_SIDED_5 + Z_POWER_80) * standard_error)


def difference_row(a: float, b: float, diff: float, ci) -> dict:
    """One compared measure: candidate, reference, their paired difference, its interval and what it could detect."""
    ci = [float(x) for x in ci]
    return {"a": a, "b": b, "diff": diff, "ci": ci, "detectable": detectable_difference(ci)}


def load_run(spec: str) -> pd.DataFrame:
    """One row per image: the run's records and `score`, the mean logit (averaged over the runs of `a+b`)."""
    frames = []
    for part in spec.split("+"):
        path = Path(part) / "oof.csv"
        if not path.exists():
            raise SystemExit(f"{part}: no oof.csv (is it a cross-validation run folder?)")
        frame = pd.read_csv(path, dtype={"image_id": str})
        frame["score"] = mean_logit(frame)
        frames.append(frame.set_index("image_id"))
    first = frames[0].drop(columns=["logit_v0", "logit_v1", "p_raw", "fold"], errors="ignore")
    common = first.index
    for other in frames[1:]:
        common = common.intersection(other.index)
    out = first.loc[common].copy()
    out["score"] = np.mean([f.loc[common, "score"].to_numpy(float) for f in frames], axis=0)
    return out.reset_index()


def paired_auc(y: np.ndarray, a: np.ndarray, b: np.ndarray, groups: np.ndarray, n_boot: int, seed: int) -> dict:
    """AUC(a) - AUC(b) on the same lesions, whole patients resampled together (model.metrics' bootstrap,
    resampling row indices so that both scores of a lesion travel together)."""

    def difference(y_rows: np.ndarray, rows: np.ndarray) -> float:
        rows = rows.astype(int)
        return roc_auc(y_rows, a[rows]) - roc_auc(y_rows, b[rows])

    auc_a, auc_b = roc_auc(y, a), roc_auc(y, b)
    ci = bootstrap_ci(difference, y, np.arange(len(y)), groups, n_boot, seed)
    return difference_row(auc_a, auc_b, auc_a - auc_b, ci)


def compare(reference: pd.DataFrame, candidate: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict:
    """Per-source AUC and whole-patient ranking, candidate vs reference, paired on their common images."""
    both = reference.merge(candidate[["image_id", "score"]], on="image_id", suffixes=("_ref", "_cand"))
    sources = {}
    for name, idx in sorted(both.groupby("dataset").indices.items()):
        sub = both.iloc[idx]
        y = sub["target"].to_numpy(int)
        if 0 < y.sum() < len(y):
            sources[name] = paired_auc(
                y,
                sub["score_cand"].to_numpy(float),
                sub["score_ref"].to_numpy(float),
                sub["group_id"].to_numpy(),
                n_boot,
                seed,
            )
    patients = both[both["dataset"] == WHOLE_PATIENT_SOURCE].reset_index(drop=True)
    ranking = {}
    if len(patients):
        table_c = whole_patient.patient_table(patients, patients["score_cand"].to_numpy(float))
        table_r = whole_patient.patient_table(patients, patients["score_ref"].to_numpy(float))
        point_c, point_r = whole_patient.summarise(table_c), whole_patient.summarise(table_r)
        for metric in RANKING_METRICS:
            diff = whole_patient.paired_difference(table_c, table_r, metric, n_boot, seed)
            ranking[metric] = difference_row(point_c[metric], point_r[metric], diff["value"], diff["ci"])
    return {"n_images": len(both), "sources": sources, "ranking": ranking}


def report_markdown(reference: str, results: dict[str, dict]) -> str:
    lines = [f"# Runs compared with `{reference}` (out-of-fold, paired patient bootstrap)", ""]
    for name, result in results.items():
        lines += [f"## `{name}` ({result['n_images']} images in common)", ""]
        lines += [
            "| measure | candidate | reference | difference (95% CI) | detectable (80% power) |",
            "|---|---|---|---|---|",
        ]
        for label, rows in (("AUC", result["sources"]), ("ranking", result["ranking"])):
            for key, r in rows.items():
                lines.append(
                    f"| {label} {key} | {r['a']:.3f} | {r['b']:.3f} | {r['diff']:+.3f} "
                    f"({r['ci'][0]:+.3f} to {r['ci'][1]:+.3f}) | {r['detectable']:.3f} |"
                )
        lines.append("")
    lines.append(
        "Lower is better for share_before; higher for the others. A difference smaller than its detectable one "
        "is not evidence either way."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="run folder (or a+b) every candidate is compared with")
    parser.add_argument("--candidate", action="append", required=True, help="run folder or a+b; repeatable")
    parser.add_argument("--out", type=Path, help="markdown report (printed as well)")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args(argv)
    reference = load_run(args.reference)
    results = {spec: compare(reference, load_run(spec), args.n_boot) for spec in args.candidate}
    text = report_markdown(args.reference, results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
