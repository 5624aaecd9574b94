"""Which spread says "this score is unreliable"? Out-of-fold, the TTA spread (what the dashboard shows next to
each score) against the disagreement of a two-member ensemble's tails, with the score's closeness to the
operating threshold as the baseline any such signal must beat.

    python -m training.uncertainty_signals --ensemble model/weights/default/cv/oof.csv \
        --member runs/v21_git/oof.csv --config model/weights/default/config.json

`--member` is one member's out-of-fold run on the same folds (v2.2.0's first tail is v2.1.0, whose oof.csv is
in git history at ca96b70); the ensemble's logits are the mean of its two members' per view
(training/combine_runs.py), so the other member's are 2 x ensemble - member. Per signal, in calibrated
probability as displayed:

- error AUC: how well the signal separates lesions on the wrong side of the operating threshold from the rest
  (0.5: no better than chance);
- error AUC at equal score: the same inside each decile of the score (averaged, weighted by the lesions in a
  decile with both kinds), since a spread in probability grows with the probability itself;
- selective AUC: the ensemble's lesion AUC on the most certain 50/80/90% by the signal; a useful signal beats
  a random choice of the same share.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from model.metrics import roc_auc
from training.calibration import apply, tta_logits

KEEP = (0.5, 0.8, 0.9)


def model_signals(views: np.ndarray, scale: float, bias: float, threshold: float) -> dict:
    """One model's calibrated P(melanoma) and the signals it carries itself: its TTA spread (first vs second
    view, as displayed) and the score's closeness to the operating threshold."""
    threshold_logit = np.log(threshold / (1 - threshold))
    return {
        "p": apply(views, scale, bias),
        "tta_spread": np.abs(apply(views[:, 0], scale, bias) - apply(views[:, 1], scale, bias)),
        "closeness_to_threshold": -np.abs(scale * views.mean(1) + bias - threshold_logit),
    }


def signals(ensemble: pd.DataFrame, member: pd.DataFrame, scale: float, bias: float, threshold: float) -> dict:
    """Per-lesion uncertainty signals (higher = less certain) and the calibrated ensemble probability."""
    views = tta_logits(ensemble)
    first = tta_logits(member)
    second = 2 * views - first
    return model_signals(views, scale, bias, threshold) | {
        "tail_disagreement": np.abs(apply(first, scale, bias) - apply(second, scale, bias)),
    }


def wrong_side(y: np.ndarray, p: np.ndarray, threshold: float) -> np.ndarray:
    """1 where the score is on the wrong side of the operating threshold for the label."""
    return ((p >= threshold) != (y == 1)).astype(int)


def within_bins(y: np.ndarray, signal: np.ndarray, score: np.ndarray, bins: int = 10) -> float:
    """AUC of `signal` for `y` inside each quantile bin of `score`, averaged weighted by the bins' sizes."""
    edges = np.quantile(score, np.linspace(0, 1, bins + 1)[1:-1])
    which = np.searchsorted(edges, score, side="right")
    aucs, sizes = [], []
    for b in np.unique(which):
        inside = which == b
        if 0 < y[inside].sum() < inside.sum():
            aucs.append(roc_auc(y[inside], signal[inside]))
            sizes.append(inside.sum())
    return float(np.average(aucs, weights=sizes)) if aucs else float("nan")


def evaluate(y: np.ndarray, values: dict, threshold: float, seed: int = 0) -> pd.DataFrame:
    p = values["p"]
    wrong = wrong_side(y, p, threshold)
    rng = np.random.default_rng(seed)
    named = {k: v for k, v in values.items() if k != "p"} | {"random": rng.random(len(y))}
    rows = []
    for name, signal in named.items():
        order = np.argsort(signal, kind="stable")
        row = {
            "signal": name,
            "error_auc": roc_auc(wrong, signal),
            "error_auc_equal_score": within_bins(wrong, signal, p),
        }
        for keep in KEEP:
            kept = order[: int(keep * len(y))]
            row[f"auc_most_certain_{int(keep * 100)}%"] = roc_auc(y[kept], p[kept])
        rows.append(row)
    return pd.DataFrame(rows).set_index("signal")


def spread_summary(oof: pd.DataFrame, scale: float, bias: float, threshold: float) -> dict:
    """What the model's ± (its TTA spread) says about being wrong, for the checkpoint's validation.json: error
    AUC overall and at equal score, with the score's closeness to the threshold as the baseline."""
    values = model_signals(tta_logits(oof), scale, bias, threshold)
    p, spread, closeness = values["p"], values["tta_spread"], values["closeness_to_threshold"]
    wrong = wrong_side(oof["target"].to_numpy(int), p, threshold)
    return {
        "images": len(p),
        "wrong_side_of_threshold": int(wrong.sum()),
        "tta_spread_error_auc": roc_auc(wrong, spread),
        "tta_spread_error_auc_equal_score": within_bins(wrong, spread, p),
        "closeness_to_threshold_error_auc": roc_auc(wrong, closeness),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ensemble", required=True, help="the ensemble's oof.csv")
    parser.add_argument("--member", required=True, help="one member's oof.csv (same folds)")
    parser.add_argument(
        "--config", required=True, help="the ensemble checkpoint's config.json (calibration, threshold)"
    )
    args = parser.parse_args(argv)
    ensemble = pd.read_csv(args.ensemble, dtype={"image_id": str}).set_index("image_id")
    member = pd.read_csv(args.member, dtype={"image_id": str}).set_index("image_id").reindex(ensemble.index)
    if member["fold"].isna().any() or (member["fold"] != ensemble["fold"]).any():
        raise SystemExit("the member's out-of-fold run does not cover the ensemble's images on the same folds")
    config = json.loads(Path(args.config).read_text())
    network, threshold = config["network"], config["operating_point"]["threshold"]
    values = signals(ensemble, member, network["logit_scale"], network["logit_bias"], threshold)
    table = evaluate(ensemble["target"].to_numpy(int), values, threshold)
    print(table.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
