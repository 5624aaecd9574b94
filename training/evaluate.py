"""Evaluate a checkpoint (or a predictions file) on labelled data: JSON report + HTML page of plotly figures.

    python -m training.evaluate --checkpoint model/weights/default --data isic2020 [--data-root DIR] --out reports/x
    python -m training.evaluate --predictions model/weights/default/cv/oof.csv --out reports/oof

Intervals are bootstrap 95% intervals that resample whole patients (HAM10000: lesions), so images of
one patient never count as independent evidence.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from model.metrics import SCREENING_PREVALENCE, curves, rates_at_threshold, summarize, threshold_for_sensitivity

TARGET_SENSITIVITY = 0.90  # the operating point: miss at most 1 in 10 melanomas in validation


def _clean(value):
    """JSON-safe: NaN/inf -> None, numpy -> python, tuples -> lists."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def report_from_predictions(preds: pd.DataFrame, threshold: float | None = None, n_boot: int = 1000) -> dict:
    """preds: image_id, dataset, group_id, target, p_melanoma. Pooled + per-dataset figures at one threshold."""
    preds = preds.dropna(subset=["target"])
    y = preds["target"].astype(int).to_numpy()
    p = preds["p_melanoma"].to_numpy(float)
    if threshold is None:
        threshold = threshold_for_sensitivity(y, p, TARGET_SENSITIVITY)
    report = {
        "threshold": threshold,
        "threshold_rule": f"lowest score that still flags {TARGET_SENSITIVITY:.0%} of validation melanomas (pooled)",
        "prevalence_for_screening_figures": SCREENING_PREVALENCE,
        "pooled": summarize(y, p, preds["group_id"], threshold, n_boot),
        "per_dataset": {},
        "curves": {"pooled": curves(y, p)},
    }
    for name, part in preds.groupby("dataset"):
        yy = part["target"].astype(int).to_numpy()
        pp = part["p_melanoma"].to_numpy(float)
        report["per_dataset"][name] = summarize(yy, pp, part["group_id"], threshold, n_boot)
        if (found := curves(yy, pp)) is not None:  # none for a dataset with one class
            report["curves"][name] = found
    sens, spec = rates_at_threshold(y, p, threshold)
    report["operating_point"] = {"threshold": threshold, "sensitivity": sens, "specificity": spec}
    return _clean(report)


def figures_html(report: dict, title: str) -> str:
    """ROC, precision-recall (at the validation prevalence) and calibration, pooled and per dataset, drawn by
    model/figures.py like the dashboard's Model page."""
    from model import figures

    def auc(name: str) -> str:
        value = (report["pooled"] if name == "pooled" else report["per_dataset"][name])["auc"]
        return "n/a" if value is None else f"{value:.3f}"

    sets = report["curves"]
    return figures.figures_page(
        [
            figures.roc_figure({f"{name} (AUC {auc(name)})": c for name, c in sets.items()}),
            figures.pr_figure(sets, prevalence=None),
            figures.calibration_figure(sets),
        ],
        title,
    )


def predictions_from_checkpoint(
    checkpoint: Path | None, datasets: list[str], data_root: Path | None, tta: int
) -> pd.DataFrame:
    from data.datasets import load_datasets
    from model.predictor import Predictor

    records = load_datasets(datasets, data_root)
    predictor = Predictor.from_checkpoint(checkpoint)
    scored = predictor.predict_records(records, tta=tta)
    if len(scored.errors):
        print(f"warning: {len(scored.errors)} image(s) could not be scored and are left out")
    return scored.scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="checkpoint folder to score --data with")
    source.add_argument("--predictions", type=Path, help="CSV with dataset, group_id, target, p_melanoma")
    parser.add_argument("--data", nargs="+", default=["isic2020"], help="registered datasets (with --checkpoint)")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--tta", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=None, help="default: the checkpoint's, else 90%% sens.")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True, help="folder for report.json and report.html")
    args = parser.parse_args(argv)

    threshold = args.threshold
    if args.checkpoint:
        from model.checkpoint import read_config

        threshold = threshold or read_config(args.checkpoint).get("operating_point", {}).get("threshold")
        preds = predictions_from_checkpoint(args.checkpoint, args.data, args.data_root, args.tta)
    else:
        preds = pd.read_csv(args.predictions, dtype={"image_id": str, "group_id": str})
    report = report_from_predictions(preds, threshold, args.bootstrap)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    (args.out / "report.html").write_text(
        figures_html(report, f"Melanoma validation: {args.checkpoint or args.predictions}")
    )
    pooled = report["pooled"]
    print(
        f"AUC {pooled['auc']:.4f} (95% CI {pooled['auc_ci'][0]:.4f}-{pooled['auc_ci'][1]:.4f}), "
        f"pAUC80 {pooled['pauc_80']:.4f}; per dataset: "
        + ", ".join(f"{k} {v['auc']:.4f}" for k, v in report["per_dataset"].items())
    )
    print(f"report -> {args.out / 'report.json'}, figures -> {args.out / 'report.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
