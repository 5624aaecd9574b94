"""The triage score and rank of one patient's lesions, from their P(melanoma) and embeddings.

Pure numpy (no network, no images): the per-patient flow (model/triage.py), the predict CLI's table
(model/triage_table.py) and training/evaluate_triage.py use these same functions, so the numbers a
clinician sees are the numbers that were evaluated.

"logit_blend" (the default method)
    triage = sigmoid(logit(P(melanoma)) + weight_ud * clip(z, ud_clip))
    i.e. each unit of ugly-duckling z (model/ugly_duckling.py) multiplies the odds by exp(weight_ud). With
    weight_ud = 0 (or a NaN UD score, fewer than 3 lesions) the triage score IS P(melanoma), so it stays
    comparable across patients.
"patient_context"
    the second stage (model/patient_context.py): a ranking score within the patient, not a probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from model.patient_context import ContextModel, patient_features
from model.ugly_duckling import copy_groups, rank_descending, ugly_duckling


def blend(
    p_melanoma: np.ndarray, ud: np.ndarray, weight_ud: float, ud_clip: Sequence[float] = (0.0, 4.0)
) -> np.ndarray:
    """logit_blend: sigmoid(logit(p) + w * clip(z)); a NaN z counts as 0 (the score stays P(melanoma))."""
    p = np.clip(np.asarray(p_melanoma, dtype=np.float64), 1e-7, 1 - 1e-7)
    z = np.nan_to_num(np.clip(np.asarray(ud, dtype=np.float64), ud_clip[0], ud_clip[1]), nan=0.0)
    if weight_ud == 0:
        return np.asarray(p_melanoma, dtype=np.float64).copy()
    return 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + weight_ud * z)))


def context_score(p_melanoma: np.ndarray, embeddings: np.ndarray, model: ContextModel) -> np.ndarray:
    """patient_context: the second stage's score of each lesion relative to the patient's other lesions
    (0-1, a ranking score within the patient, not a probability)."""
    p = np.clip(np.asarray(p_melanoma, dtype=np.float64), 1e-7, 1 - 1e-7)
    if len(p) == 0:
        return np.zeros(0)
    decision = model.score(patient_features(np.log(p / (1 - p)), embeddings))
    return 1.0 / (1.0 + np.exp(-decision))


def score_patient(
    p_melanoma: np.ndarray,
    embeddings: np.ndarray,
    settings: dict[str, Any],
    references: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """UD z, triage score and within-patient rank for one patient's lesions (settings: triage_settings()).

    references: embeddings of the patient's earlier lesions, compared against for the UD z but not ranked
    (the patient_context stage was fitted on one visit's lesions and keeps seeing only those). Also returns
    the copy groups of the lesions and then the references (``copy_groups``), which the comparison used."""
    everyone = embeddings if references is None or not len(references) else np.vstack([embeddings, references])
    groups = copy_groups(everyone) if len(embeddings) else np.zeros(0, dtype=int)
    ud = ugly_duckling(
        embeddings, settings["ud_method"], settings["min_lesions"], settings["ud_scale_floor"], references, groups
    )
    if settings["method"] == "patient_context":
        triage = context_score(p_melanoma, embeddings, settings["context"])
    else:
        triage = blend(p_melanoma, ud, settings["weight_ud"], settings["ud_clip"])
    return {
        "ugly_duckling": ud,
        "triage_score": triage,
        "rank": rank_descending(triage, p_melanoma),
        "copy_groups": groups,
    }
