"""Patient context: score each lesion relative to the same patient's other lesions (second stage).

The approach of the ISIC 2024 winners: a lesion is suspicious when it scores high *for this patient*, or
looks unlike the patient's other moles. Per lesion, from the network's logit and embedding:

    logit          the network's melanoma logit (the first stage)
    logit_z        (logit - patient mean) / patient std         0 with fewer than 3 lesions
    logit_pct      within-patient percentile of the logit (0-1)  0.5 with one lesion
    ud_z           ugly duckling: robust z of the cosine distance to the patient's other lesions (0 if < 3)
    feat_dist      distance from the patient's mean after z-normalising each embedding feature within the
                   patient, divided by sqrt(dim) (an unsupervised outlier score; 0 if < 3)
    log_n          log(number of the patient's lesions)

A logistic regression on these (weights in JSON, no pickle) gives the triage score. Whether it is deployed
is decided by training/patient_context.py on out-of-fold whole patients; the checkpoint's "triage" settings
say which ranking is used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from model.ugly_duckling import ugly_duckling

FEATURES = ("logit", "logit_z", "logit_pct", "ud_z", "feat_dist", "log_n")


def feature_outlier_distance(embeddings: np.ndarray) -> np.ndarray:
    """Distance from the patient's mean after z-normalising every feature within the patient."""
    e = np.asarray(embeddings, dtype=np.float64)
    n = len(e)
    if n < 3:
        return np.zeros(n)
    z = (e - e.mean(0)) / (e.std(0) + 1e-6)
    return np.linalg.norm(z, axis=1) / math.sqrt(e.shape[1])


def patient_features(logit: np.ndarray, embeddings: np.ndarray) -> pd.DataFrame:
    """The FEATURES of one patient's lesions (rows aligned with the inputs)."""
    logit = np.asarray(logit, dtype=np.float64)
    n = len(logit)
    if n >= 3:
        logit_z = (logit - logit.mean()) / (logit.std() + 1e-6)
        ud = np.nan_to_num(ugly_duckling(embeddings, "loo_cosine", 3, 0.25), nan=0.0)
    else:
        logit_z, ud = np.zeros(n), np.zeros(n)
    pct = pd.Series(logit).rank(pct=True).to_numpy() if n > 1 else np.full(n, 0.5)
    return pd.DataFrame(
        {
            "logit": logit,
            "logit_z": logit_z,
            "logit_pct": pct,
            "ud_z": np.clip(ud, -5, 10),
            "feat_dist": feature_outlier_distance(embeddings),
            "log_n": np.full(n, math.log(max(n, 1))),
        }
    )


def features_by_patient(logit: np.ndarray, embeddings: np.ndarray, groups: pd.Series) -> pd.DataFrame:
    out = pd.DataFrame(index=range(len(logit)), columns=list(FEATURES), dtype=float)
    for _, idx in pd.Series(np.arange(len(logit))).groupby(np.asarray(groups)).groups.items():
        idx = np.asarray(idx)
        out.iloc[idx] = patient_features(np.asarray(logit)[idx], np.asarray(embeddings)[idx]).to_numpy()
    return out


@dataclass
class ContextModel:
    """Standardise, then a linear score (a logistic regression's decision function)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def score(self, features: pd.DataFrame) -> np.ndarray:
        x = features[list(self.features)].to_numpy(dtype=np.float64)
        x = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return x @ np.asarray(self.coef) + self.intercept

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> ContextModel:
        unknown = set(data["features"]) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown patient-context features: {sorted(unknown)}")
        lengths = {len(data[k]) for k in ("features", "mean", "scale", "coef")}
        if len(lengths) != 1:
            raise ValueError("patient-context model: features, mean, scale and coef differ in length")
        return cls(
            features=tuple(data["features"]),
            mean=tuple(float(v) for v in data["mean"]),
            scale=tuple(float(v) for v in data["scale"]),
            coef=tuple(float(v) for v in data["coef"]),
            intercept=float(data["intercept"]),
        )
