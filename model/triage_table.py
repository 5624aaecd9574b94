"""The predict CLI's output table: Kaggle's image_name,target, plus the whole-patient columns (ugly-duckling
z, triage score, rank within the patient) when the input says which images belong to which patient."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from model.triage_scoring import score_patient
from model.triage_settings import triage_settings


def has_patient_ids(records: pd.DataFrame) -> bool:
    """Readers set group_id = image_id when no patient id is known (folders, CSVs without patient_id); a CSV
    with a patient_id column leaves group_id empty (None) on a row whose patient id is blank."""
    if "group_id" not in records:
        return False
    groups = records["group_id"]
    return bool((groups.notna() & (groups.astype(str) != records["image_id"].astype(str))).any())


def patient_rows(groups: pd.Series):
    """Positions of each patient's rows; a row without a patient (None) is one alone."""
    positions = np.arange(len(groups))
    known = groups.notna().to_numpy()
    for _, rows in pd.Series(positions[known]).groupby(groups[known].astype(str).to_numpy(), sort=False):
        yield rows.to_numpy()
    for i in positions[~known]:
        yield np.array([i])


def patient_columns(scores: pd.DataFrame, embeddings: np.ndarray, settings: dict[str, Any]) -> pd.DataFrame:
    """ugly_duckling, triage_score, patient_rank for every scored row, computed patient by patient. A row
    without a patient is scored alone: its triage score is kept, its rank left empty (it has no patient)."""
    out = pd.DataFrame(index=scores.index, columns=["ugly_duckling", "triage_score", "patient_rank"], dtype=float)
    for idx in patient_rows(scores["group_id"]):
        res = score_patient(scores["p_melanoma"].to_numpy(float)[idx], embeddings[idx], settings)
        out.iloc[idx, 0] = res["ugly_duckling"]
        out.iloc[idx, 1] = res["triage_score"]
        out.iloc[idx, 2] = res["rank"]
    out["patient_rank"] = out["patient_rank"].astype("Int64").where(scores["group_id"].notna().to_numpy(), pd.NA)
    return out


def output_table(records: pd.DataFrame, scored, predictor) -> pd.DataFrame:
    """The predict CLI's CSV: image_name,target first (Kaggle), then the patient columns when the input has
    patient ids (patient_id,ugly_duckling,triage_score,patient_rank), then tta_spread."""
    scores = scored.scores
    table = pd.DataFrame({"image_name": scores["image_id"].to_numpy(), "target": scores["p_melanoma"].round(6)})
    if has_patient_ids(records) and len(scores):
        cols = patient_columns(scores, np.asarray(scored.embeddings), triage_settings(predictor))
        table["patient_id"] = scores["group_id"].to_numpy()
        table["ugly_duckling"] = cols["ugly_duckling"].round(4).to_numpy()
        table["triage_score"] = cols["triage_score"].round(6).to_numpy()
        table["patient_rank"] = cols["patient_rank"].array  # Int64: empty for a row without a patient
    table["tta_spread"] = scores["p_spread"].round(6).to_numpy()
    return table
