"""Melanoma metrics, one module for training, triage evaluation and the dashboard's model page.

Screening numbers (PPV, NPV, lesions reviewed per melanoma found) depend on prevalence, and our
validation data is enriched with melanoma; they are always recomputed at the real ISIC 2020 screening
prevalence (584 melanomas in 33,126 lesions = 1.76%) from sensitivity and specificity.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# sklearn.metrics is imported where it is used: it pulls in scipy (seconds on a small CPU), and the
# dashboard's sign-in page reaches this module (through the operating point) without computing a curve.

SCREENING_PREVALENCE = 584 / 33126  # ISIC 2020 training metadata (metadata/train_full.csv)


def _arrays(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and scores {p.shape} differ in shape")
    return y, p


def proportion_ci(hits: int, total: int) -> tuple[float, float]:
    """95% Wilson score interval of ``hits / total`` (scipy's binomtest); NaNs when ``total`` is 0. Wilson, not
    the normal approximation, because a clinic's first results are a handful of lesions, where that one
    leaves [0, 1] and collapses at 0 or all hits."""
    if total <= 0:
        return float("nan"), float("nan")
    from scipy.stats import binomtest

    ci = binomtest(int(hits), int(total)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def share_before(first_rank: int, n: int) -> float:
    """The share of a patient's OTHER lesions looked at before the first melanoma, ranked ``first_rank`` of
    ``n``: 0 = the melanoma comes first, 1 = last (0 for a patient with one lesion)."""
    return (first_rank - 1) / (n - 1) if n > 1 else 0.0


def random_order_share(n, k) -> float:
    """Expected share of a patient's other lesions looked at before the first of its ``k`` melanomas among ``n``
    lesions, in a random order (E[first rank] = (n + 1) / (k + 1)), averaged over patients; NaN for none."""
    n, k = np.asarray(n, dtype=float), np.asarray(k, dtype=float)
    if n.size == 0:
        return float("nan")
    expected_first = (n + 1) / (k + 1)
    return float(np.mean(np.where(n > 1, (expected_first - 1) / np.maximum(n - 1, 1), 0.0)))


def random_order_top(n, m, k: int) -> float:
    """Expected top-``k`` sensitivity of a random order: the mean over patients of the chance that a random ``k``
    of a patient's ``n`` lesions hold one of its ``m`` melanomas, 1 - C(n - m, k) / C(n, k). A patient with
    ``k`` lesions or fewer is found by any order; NaN for no patient."""
    if len(n) == 0:
        return float("nan")
    misses = [math.comb(int(a - b), k) / math.comb(int(a), k) if a > k else 0.0 for a, b in zip(n, m, strict=True)]
    return float(1.0 - np.mean(misses))


def roc_auc(y, p) -> float:
    y, p = _arrays(y, p)
    if len(np.unique(y)) < 2:
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def partial_auc_above_tpr(y, p, min_tpr: float = 0.8) -> float:
    """ISIC 2024's pAUC: area under the ROC curve above `min_tpr` (range 0 to 1 - min_tpr)."""
    y, p = _arrays(y, p)
    if len(np.unique(y)) < 2:
        return float("nan")
    # Swap the classes and negate scores: the region TPR >= min_tpr becomes FPR <= 1 - min_tpr.
    max_fpr = 1.0 - min_tpr
    from sklearn.metrics import roc_auc_score

    scaled = roc_auc_score(1 - y, -p, max_fpr=max_fpr)
    # Undo sklearn's McClish standardisation.
    return float(0.5 * max_fpr**2 + (max_fpr - 0.5 * max_fpr**2) / (1.0 - 0.5) * (scaled - 0.5))


def threshold_for_sensitivity(y, p, sensitivity: float) -> float:
    """The highest threshold whose sensitivity (P >= threshold) reaches the target."""
    y, p = _arrays(y, p)
    positives = np.sort(p[y == 1])[::-1]
    if len(positives) == 0:
        return float("nan")
    k = int(np.ceil(sensitivity * len(positives))) - 1
    return float(positives[min(max(k, 0), len(positives) - 1)])


def rates_at_threshold(y, p, threshold: float) -> tuple[float, float]:
    y, p = _arrays(y, p)
    flagged = p >= threshold
    sens = float(flagged[y == 1].mean()) if (y == 1).any() else float("nan")
    spec = float((~flagged[y == 0]).mean()) if (y == 0).any() else float("nan")
    return sens, spec


def sensitivity_at_specificity(y, p, specificity: float) -> float:
    y, p = _arrays(y, p)
    negatives = np.sort(p[y == 0])
    if len(negatives) == 0 or (y == 1).sum() == 0:
        return float("nan")
    # Smallest threshold that keeps at least `specificity` of benign lesions below it.
    k = int(np.ceil(specificity * len(negatives))) - 1
    threshold = np.nextafter(negatives[min(max(k, 0), len(negatives) - 1)], np.inf)
    return rates_at_threshold(y, p, threshold)[0]


def specificity_at_sensitivity(y, p, sensitivity: float) -> float:
    return rates_at_threshold(y, p, threshold_for_sensitivity(y, p, sensitivity))[1]


def at_prevalence(sensitivity: float, specificity: float, prevalence: float = SCREENING_PREVALENCE) -> dict:
    """PPV, NPV and lesions flagged for review per melanoma found, at a given prevalence."""
    tp = sensitivity * prevalence
    fp = (1 - specificity) * (1 - prevalence)
    fn = (1 - sensitivity) * prevalence
    tn = specificity * (1 - prevalence)
    ppv = tp / (tp + fp) if tp + fp > 0 else float("nan")
    npv = tn / (tn + fn) if tn + fn > 0 else float("nan")
    return {
        "prevalence": prevalence,
        "ppv": ppv,
        "npv": npv,
        "reviews_per_melanoma": (1 / ppv) if ppv and ppv > 0 else float("inf"),
        "flagged_fraction": tp + fp,
    }


def calibration(y, p, bins: int = 10) -> dict:
    """Reliability curve (equal-width bins) and expected calibration error."""
    y, p = _arrays(y, p)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    mean_pred, frac_pos, count = [], [], []
    ece = 0.0
    for b in range(bins):
        mask = idx == b
        if not mask.any():
            continue
        mean_pred.append(float(p[mask].mean()))
        frac_pos.append(float(y[mask].mean()))
        count.append(int(mask.sum()))
        ece += mask.mean() * abs(p[mask].mean() - y[mask].mean())
    return {"mean_predicted": mean_pred, "fraction_positive": frac_pos, "count": count, "ece": float(ece)}


def bootstrap_ci(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y,
    p,
    groups=None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap interval; resamples whole groups (patients/lesions) when given."""
    y, p = _arrays(y, p)
    rng = np.random.default_rng(seed)
    if groups is None:
        groups = np.arange(len(y))
    groups = np.asarray(groups)
    unique, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(unique))]
    values = []
    for _ in range(n_boot):
        picked = rng.integers(0, len(unique), len(unique))
        rows = np.concatenate([members[g] for g in picked])
        v = metric(y[rows], p[rows])
        if np.isfinite(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def summarize(
    y,
    p,
    groups=None,
    threshold: float | None = None,
    n_boot: int = 500,
    seed: int = 0,
    prevalence: float = SCREENING_PREVALENCE,
) -> dict:
    """Every headline figure with bootstrap intervals; the threshold defaults to 90% sensitivity."""
    y, p = _arrays(y, p)
    if threshold is None:
        threshold = threshold_for_sensitivity(y, p, 0.90)
    sens, spec = rates_at_threshold(y, p, threshold)
    out = {
        "n": len(y),
        "n_melanoma": int(y.sum()),
        "auc": roc_auc(y, p),
        "auc_ci": bootstrap_ci(roc_auc, y, p, groups, n_boot, seed),
        "pauc_80": partial_auc_above_tpr(y, p),
        "pauc_80_ci": bootstrap_ci(partial_auc_above_tpr, y, p, groups, n_boot, seed),
        "sens_at_spec90": sensitivity_at_specificity(y, p, 0.90),
        "spec_at_sens90": specificity_at_sensitivity(y, p, 0.90),
        "spec_at_sens95": specificity_at_sensitivity(y, p, 0.95),
        "threshold": float(threshold),
        "sensitivity": sens,
        "specificity": spec,
        "screening": at_prevalence(sens, spec, prevalence),
        "calibration_ece": calibration(y, p)["ece"],
    }
    return out


def curves(y, p) -> dict | None:
    """ROC, precision-recall (at the data's prevalence) and reliability curves, thinned for plotting; None
    when `y` holds one class only (no curve is defined)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    y, p = _arrays(y, p)
    if len(np.unique(y)) < 2:
        return None
    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 300)).astype(int))
    keep_pr = np.unique(np.linspace(0, len(recall) - 1, min(len(recall), 300)).astype(int))
    return {
        "roc": {"fpr": fpr[keep].round(5).tolist(), "tpr": tpr[keep].round(5).tolist()},
        "pr": {
            "recall": recall[keep_pr].round(5).tolist(),
            "precision": precision[keep_pr].round(5).tolist(),
            "prevalence": float(y.mean()),
        },
        "calibration": calibration(y, p),
    }
