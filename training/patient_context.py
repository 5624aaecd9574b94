"""Fit and judge the second stage (model/patient_context.py) on out-of-fold whole patients.

The first stage's out-of-fold logits and embeddings give every lesion of a complete patient its context
features. A logistic regression is cross-fitted over the same patient-grouped folds the network used (a
patient's second-stage score never comes from a model that saw that patient), and the whole-patient
metrics of its ranking are compared, patient by patient, with the ranking by the network's logit alone.
It is deployed only if it is better; either way the comparison goes into the model card.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from model.patient_context import FEATURES, ContextModel, features_by_patient
from training import whole_patient

C = 0.3  # L2 strength: 25 melanomas among ~2,000 lesions are few; a strongly regularised, small model


def fit(features: pd.DataFrame, y: np.ndarray, columns: tuple[str, ...] = FEATURES) -> ContextModel:
    x = features[list(columns)].to_numpy(dtype=np.float64)
    mean, scale = x.mean(0), x.std(0) + 1e-9
    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=2000)
    lr.fit((x - mean) / scale, y)
    return ContextModel(
        features=tuple(columns),
        mean=tuple(mean.tolist()),
        scale=tuple(scale.tolist()),
        coef=tuple(lr.coef_[0].tolist()),
        intercept=float(lr.intercept_[0]),
    )


def cross_fit(features: pd.DataFrame, y: np.ndarray, folds: np.ndarray, columns=FEATURES) -> np.ndarray:
    """Out-of-fold second-stage scores over the given folds."""
    score = np.full(len(y), np.nan)
    for fold in np.unique(folds):
        test = folds == fold
        if y[~test].sum() == 0:
            continue
        score[test] = fit(features[~test], y[~test], columns).score(features[test])
    return score


def compare(frame: pd.DataFrame, logit: np.ndarray, embeddings: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    """Cross-fitted second stage vs the logit alone (and each context feature alone) on whole patients."""
    y = frame["target"].to_numpy(int)
    features = features_by_patient(logit, embeddings, frame["group_id"])
    second = cross_fit(features, y, frame["fold"].to_numpy())
    tables = {
        "network P(melanoma)": whole_patient.patient_table(frame, logit),
        "ugly duckling (network embedding)": whole_patient.patient_table(frame, features["ud_z"].to_numpy()),
        "feature outlier (network embedding)": whole_patient.patient_table(frame, features["feat_dist"].to_numpy()),
        "second stage (cross-fitted)": whole_patient.patient_table(frame, second),
    }
    results = {name: whole_patient.bootstrap(t, n_boot, seed) for name, t in tables.items()}
    base = tables["network P(melanoma)"]
    diff = {
        m: whole_patient.paired_difference(tables["second stage (cross-fitted)"], base, m, n_boot, seed)
        for m in ("share_before", "top5", "within_auc")
    }
    better = diff["share_before"]["value"] < 0 and diff["top5"]["value"] >= 0 and diff["within_auc"]["value"] >= 0
    return {
        "rankings": results,
        "second_minus_network": diff,
        "deploy_second_stage": bool(better),
        "random_order_share": whole_patient.random_order_share(base),
        "random_order_top5": whole_patient.random_order_top(base, 5),
        "n_patients": int(frame["group_id"].nunique()),
        "n_melanoma_patients": int((base["n_melanoma"] > 0).sum()),
        "n_melanomas": int(y.sum()),
        "second_stage_scores": second,
        "tables": tables,
    }
