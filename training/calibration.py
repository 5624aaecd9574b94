"""Post-hoc calibration at the real screening prevalence (Platt scaling on out-of-fold logits).

The network is trained on source-balanced draws (15% melanoma in every source), so its raw probability
answers "how likely in a 15%-melanoma population". A clinician needs the answer for the lesions of a
screening clinic: 1.76% melanoma (ISIC 2020's full metadata). Platt scaling fits
P = sigmoid(a * logit + b) on the out-of-fold logits, each source reweighted to that prevalence (so no
source's own base rate leaks into the mapping). Two numbers, fitted on thousands of held-out lesions: stable,
and monotone, so the ranking is unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from model.metrics import SCREENING_PREVALENCE

TTA_LOGITS = ["logit_v0", "logit_v1"]  # an out-of-fold frame's logits of the two deployed TTA views


def tta_logits(frame: pd.DataFrame) -> np.ndarray:
    return frame[TTA_LOGITS].to_numpy(float)


def mean_logit(frame: pd.DataFrame) -> np.ndarray:
    """The deployed score before calibration: the mean of the TTA views' logits."""
    return tta_logits(frame).mean(1)


def prevalence_weights(frame: pd.DataFrame, prevalence: float = SCREENING_PREVALENCE) -> np.ndarray:
    """Row weights that give every source the target prevalence and a total weight equal to its size."""
    weights = np.zeros(len(frame))
    target = frame["target"].to_numpy(int)
    for _, idx in frame.groupby("dataset").indices.items():
        y = target[idx]
        pos, neg = int(y.sum()), int(len(y) - y.sum())
        if pos == 0 or neg == 0:
            weights[idx] = 1.0
            continue
        weights[idx] = np.where(y == 1, prevalence * len(y) / pos, (1 - prevalence) * len(y) / neg)
    return weights


def fit_platt(logit: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    lr = LogisticRegression(C=1e6, max_iter=1000)
    lr.fit(np.asarray(logit, dtype=np.float64).reshape(-1, 1), np.asarray(y, dtype=int), sample_weight=weights)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def apply(logit_views: np.ndarray, scale: float, bias: float) -> np.ndarray:
    """What the deployed predictor computes: the mean over TTA views of sigmoid(scale * logit + bias)."""
    z = np.asarray(logit_views, dtype=np.float64) * scale + bias
    p = 1.0 / (1.0 + np.exp(-z))
    return p.mean(1) if p.ndim == 2 else p


def cross_fitted(frame: pd.DataFrame, logit_views: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Calibrated probabilities where each fold's mapping was fitted on the other folds (for honest ECE): their
    prevalence weights too, which count each source's melanomas, are of the other folds alone."""
    out = np.zeros(len(frame))
    mean_logit = np.asarray(logit_views).mean(1)
    y = frame["target"].to_numpy(int)
    for fold in np.unique(folds):
        test = np.asarray(folds == fold)
        weights = prevalence_weights(frame[~test])
        a, b = fit_platt(mean_logit[~test], y[~test], weights)
        out[test] = apply(logit_views[test], a, b)
    return out


def weighted_reliability(p: np.ndarray, y: np.ndarray, weights: np.ndarray, bins: int = 10) -> dict:
    """Reliability curve and ECE at the reweighted prevalence; quantile bins (most lesions score low)."""
    p, y, w = np.asarray(p, float), np.asarray(y, int), np.asarray(weights, float)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    mean_pred, frac_pos, weight = [], [], []
    ece = 0.0
    for b in range(len(edges) - 1):
        m = idx == b
        if not m.any() or w[m].sum() == 0:
            continue
        mp = float(np.average(p[m], weights=w[m]))
        fp = float(np.average(y[m], weights=w[m]))
        mean_pred.append(mp)
        frac_pos.append(fp)
        weight.append(float(w[m].sum() / w.sum()))
        ece += weight[-1] * abs(mp - fp)
    return {"mean_predicted": mean_pred, "fraction_positive": frac_pos, "weight": weight, "ece": float(ece)}
