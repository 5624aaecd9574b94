"""Whole-patient ranking metrics: "of this patient's 40 moles, which do I look at first?"

Computed on complete patients (every lesion a patient has, isic2020_patients), from out-of-fold scores.
For each patient with a melanoma, the lesions are sorted by a score (ties: input order) and we record:

- first_rank: the rank of the first melanoma (1 = looked at first);
- share_before: the share of the patient's OTHER lesions reviewed before reaching the first melanoma,
  (first_rank - 1) / (n - 1): 0 = the melanoma comes first, 1 = last; a random order gives 0.5 for a patient
  with one melanoma (less with several);
- top-1 and top-5 sensitivity: the share of melanoma patients whose first melanoma is within the top 1 / 5;
- within-patient AUC: for each patient with both kinds, the share of (melanoma, benign) pairs ranked the
  right way round, averaged over patients;
- top-15 retrieval sensitivity (ISIC 2024's secondary measure): the share of all melanomas that sit within
  the top 15 lesions of their patient.

Intervals: 95% percentile bootstrap over patients (melanoma patients resampled with the benign-only ones).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model import metrics
from model.ugly_duckling import rank_descending

WHOLE_PATIENT_SOURCE = "isic2020_patients"  # the complete patients: every lesion each has
METRICS = ("share_before", "top1", "top5", "within_auc", "top15_retrieval", "first_rank_median")


def patient_table(frame: pd.DataFrame, score: np.ndarray, group: str = "group_id") -> pd.DataFrame:
    """One row per patient: n lesions, n melanomas, first_rank, share_before, within-patient AUC, hits@15."""
    y_all = frame["target"].to_numpy(int)
    rows = []
    for patient, idx in frame.groupby(group, sort=True).indices.items():
        idx = np.asarray(idx)
        y, s = y_all[idx], np.asarray(score, dtype=float)[idx]
        n, k = len(idx), int(y.sum())
        row = {"patient": patient, "n": n, "n_melanoma": k}
        if k:
            ranks = rank_descending(s)
            first = int(ranks[y == 1].min())
            row["first_rank"] = first
            row["share_before"] = metrics.share_before(first, n)
            row["hits15"] = int((ranks[y == 1] <= 15).sum())
            if k < n:
                pos = np.nan_to_num(s[y == 1], nan=-np.inf)[:, None]
                neg = np.nan_to_num(s[y == 0], nan=-np.inf)[None, :]
                row["within_auc"] = float(np.mean((pos > neg) + 0.5 * (pos == neg)))
        rows.append(row)
    table = pd.DataFrame(rows)
    for col in ("first_rank", "share_before", "hits15", "within_auc"):
        if col not in table:
            table[col] = np.nan
    return table


def summarise(table: pd.DataFrame) -> dict[str, float]:
    mel = table[table["n_melanoma"] > 0]
    if mel.empty:
        return dict.fromkeys(METRICS, float("nan"))
    return {
        "share_before": float(mel["share_before"].mean()),
        "top1": float((mel["first_rank"] <= 1).mean()),
        "top5": float((mel["first_rank"] <= 5).mean()),
        "within_auc": float(mel["within_auc"].mean()),
        "top15_retrieval": float(mel["hits15"].sum() / mel["n_melanoma"].sum()),
        "first_rank_median": float(mel["first_rank"].median()),
    }


def random_order_share(table: pd.DataFrame) -> float:
    """Expected share_before of a random order (``model.metrics.random_order_share``); NaN without a patient
    with a melanoma (nothing to find)."""
    mel = table[table["n_melanoma"] > 0]
    return metrics.random_order_share(mel["n"], mel["n_melanoma"])


def random_order_top(table: pd.DataFrame, k: int) -> float:
    """Expected top-k sensitivity of a random order (``model.metrics.random_order_top``); NaN without a patient
    with a melanoma."""
    mel = table[table["n_melanoma"] > 0]
    return metrics.random_order_top(list(mel["n"]), list(mel["n_melanoma"]), k)


def bootstrap(table: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict[str, dict[str, object]]:
    """Point values and 95% intervals, patients resampled (melanoma patients within their own stratum, so
    every resample has the same number of them)."""
    rng = np.random.default_rng(seed)
    mel = table[table["n_melanoma"] > 0].reset_index(drop=True)
    point = summarise(table)
    if mel.empty:
        return {m: {"value": float("nan"), "ci": [float("nan")] * 2} for m in METRICS}
    draws: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(n_boot):
        sample = mel.iloc[rng.integers(0, len(mel), len(mel))]
        for m, v in summarise(sample).items():
            draws[m].append(v)
    out: dict[str, dict[str, object]] = {}
    for m in METRICS:
        arr = np.asarray(draws[m], dtype=float)
        arr = arr[np.isfinite(arr)]
        ci = [float(x) for x in np.quantile(arr, [0.025, 0.975])] if len(arr) else [float("nan")] * 2
        out[m] = {"value": point[m], "ci": ci}
    return out


def paired_difference(
    table_a: pd.DataFrame, table_b: pd.DataFrame, metric: str = "share_before", n_boot: int = 1000, seed: int = 0
) -> dict[str, object]:
    """a - b on the same patients, with a paired bootstrap interval."""
    rng = np.random.default_rng(seed)
    a = table_a[table_a["n_melanoma"] > 0].set_index("patient")
    b = table_b[table_b["n_melanoma"] > 0].set_index("patient").loc[a.index]
    value = summarise(a.reset_index())[metric] - summarise(b.reset_index())[metric]
    if a.empty:
        return {"value": float("nan"), "ci": [float("nan")] * 2}
    diffs = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(a), len(a))
        diffs.append(summarise(a.iloc[pick].reset_index())[metric] - summarise(b.iloc[pick].reset_index())[metric])
    arr = np.asarray(diffs, dtype=float)
    arr = arr[np.isfinite(arr)]
    return {"value": float(value), "ci": [float(x) for x in np.quantile(arr, [0.025, 0.975])]}
