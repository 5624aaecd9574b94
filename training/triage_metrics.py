"""Per-patient triage metrics with patient-resampled bootstrap intervals (training/evaluate_triage.py).

* top-1 / top-3 sensitivity: among patients with >= 2 lesions and >= 1 melanoma, the share whose melanoma is
  ranked first / in the first three of that patient's lesions;
* within-patient concordance: among patients with a melanoma and a benign lesion, the share of
  (melanoma, benign) pairs of the same patient ranked the right way round (mean over patients);
* lesion-level AUC and pAUC above 80% TPR (ISIC 2024 definition, range 0-0.2);
* lesions reviewed per melanoma found at the real 1.76% prevalence, at the threshold reaching 90%
  sensitivity (from sensitivity and specificity, since the data is enriched).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model.metrics import (
    SCREENING_PREVALENCE,
    at_prevalence,
    partial_auc_above_tpr,
    rates_at_threshold,
    roc_auc,
    threshold_for_sensitivity,
)
from model.ugly_duckling import rank_descending, ugly_duckling

SENSITIVITY = 0.90
METRICS = ("top1", "top3", "concordance", "auc", "pauc80", "reviews_per_melanoma")
METRIC_LABELS = {
    "top1": "top-1 sensitivity",
    "top3": "top-3 sensitivity",
    "concordance": "within-patient concordance",
    "auc": "lesion AUC",
    "pauc80": "pAUC (TPR ≥ 80%, max 0.2)",
    "reviews_per_melanoma": (
        f"lesions reviewed per melanoma @ {SENSITIVITY:.0%} sens, {SCREENING_PREVALENCE:.2%} prev."
    ),
}


@dataclass
class Patients:
    """Row indices per patient and precomputed per-patient facts."""

    frame: pd.DataFrame
    members: list[np.ndarray]
    names: list[str]
    n: np.ndarray
    n_mel: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Patients:
        groups = frame.groupby("group_id", sort=True).indices
        names = list(groups)
        members = [np.asarray(groups[g]) for g in names]
        y = frame["target"].to_numpy()
        return cls(
            frame,
            members,
            names,
            np.array([len(m) for m in members]),
            np.array([int(y[m].sum()) for m in members]),
        )


def ud_scores(
    frame: pd.DataFrame,
    emb: np.ndarray,
    patients: Patients,
    method: str,
    min_lesions: int,
    scale_floor: float,
) -> np.ndarray:
    z = np.full(len(frame), np.nan)
    for m in patients.members:
        z[m] = ugly_duckling(emb[m], method, min_lesions, scale_floor)
    return z


def patient_outcomes(
    score: np.ndarray, tiebreak: np.ndarray | None, y: np.ndarray, patients: Patients
) -> dict[str, np.ndarray]:
    """Per patient: top-1 hit, top-3 hit, concordance (NaN where not defined)."""
    k = len(patients.members)
    top1, top3, conc = np.full(k, np.nan), np.full(k, np.nan), np.full(k, np.nan)
    for i, m in enumerate(patients.members):
        yy = y[m]
        if len(m) < 2 or yy.sum() == 0:
            continue
        ranks = rank_descending(score[m], None if tiebreak is None else tiebreak[m])
        best = ranks[yy == 1].min()
        top1[i] = float(best <= 1)
        top3[i] = float(best <= 3)
        if 0 < yy.sum() < len(yy):
            pos = np.nan_to_num(score[m][yy == 1], nan=-np.inf)[:, None]
            neg = np.nan_to_num(score[m][yy == 0], nan=-np.inf)[None, :]
            conc[i] = float(np.mean((pos > neg) + 0.5 * (pos == neg)))
    return {"top1": top1, "top3": top3, "concordance": conc}


def lesion_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(p)
    y, p = y[ok], p[ok]
    if len(np.unique(y)) < 2:
        return {"auc": np.nan, "pauc80": np.nan, "reviews_per_melanoma": np.nan}
    thr = threshold_for_sensitivity(y, p, SENSITIVITY)
    sens, spec = rates_at_threshold(y, p, thr)
    return {
        "auc": roc_auc(y, p),
        "pauc80": partial_auc_above_tpr(y, p, 0.8),
        "reviews_per_melanoma": at_prevalence(sens, spec)["reviews_per_melanoma"],
    }


def mean_finite(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def all_metrics(
    score: np.ndarray, tiebreak: np.ndarray | None, y: np.ndarray, patients: Patients, pick: np.ndarray
) -> dict[str, float]:
    """Metrics over the patients `pick` (indices into patients, with repeats for a bootstrap sample)."""
    outcomes = patient_outcomes(score, tiebreak, y, patients)
    rows = np.concatenate([patients.members[i] for i in pick]) if len(pick) else np.zeros(0, dtype=int)
    out = {name: mean_finite(values[pick]) for name, values in outcomes.items()}
    out.update(lesion_metrics(y[rows], score[rows]))
    return out


def bootstrap(
    strategies: dict[str, tuple[np.ndarray, np.ndarray | None]],
    y: np.ndarray,
    patients: Patients,
    pick: np.ndarray,
    n_boot: int,
    seed: int,
    reference: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Point estimates and percentile 95% intervals (patients resampled), plus paired differences."""
    rng = np.random.default_rng(seed)
    outcomes = {s: patient_outcomes(score, tb, y, patients) for s, (score, tb) in strategies.items()}
    point = {s: all_metrics(score, tb, y, patients, pick) for s, (score, tb) in strategies.items()}
    draws: dict[str, dict[str, list[float]]] = {s: {m: [] for m in METRICS} for s in strategies}
    diffs: dict[str, dict[str, list[float]]] = {s: {m: [] for m in METRICS} for s in strategies if s != reference}
    for _ in range(n_boot):
        sample = pick[rng.integers(0, len(pick), len(pick))]
        rows = np.concatenate([patients.members[i] for i in sample])
        values = {}
        for s, (score, _tb) in strategies.items():
            v = {name: mean_finite(arr[sample]) for name, arr in outcomes[s].items()}
            v.update(lesion_metrics(y[rows], score[rows]))
            values[s] = v
            for m in METRICS:
                draws[s][m].append(v[m])
        if reference:
            for s in diffs:
                for m in METRICS:
                    diffs[s][m].append(values[s][m] - values[reference][m])

    def interval(values: list[float]) -> list[float]:
        arr = np.asarray(values, dtype=float)
        arr = arr[np.isfinite(arr)]
        if len(arr) < max(10, n_boot // 10):
            return [float("nan"), float("nan")]
        return [float(v) for v in np.quantile(arr, [0.025, 0.975])]

    result: dict[str, dict[str, Any]] = {}
    for s in strategies:
        result[s] = {m: {"value": point[s][m], "ci": interval(draws[s][m])} for m in METRICS}
        if s in diffs:
            result[s]["difference_vs_" + str(reference)] = {
                m: {"value": point[s][m] - point[reference][m], "ci": interval(diffs[s][m])} for m in METRICS
            }
    return result
