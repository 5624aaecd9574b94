"""The ugly-duckling maths: how unlike the patient's other lesions each lesion is, and rank helpers.

Pure numpy (scikit-learn for LOF): no network, no images. Used by the triage flow (model/triage.py), the
patient-context second stage (model/patient_context.py) and the evaluations in training/.

Ugly-duckling (UD) score
    A lesion's outlyingness among the patient's OTHER lesions in the model's embedding space: the cosine
    distance between its (L2-normalised) embedding and the mean of the patient's other lesions
    (leave-one-out), turned into a robust z-score within the patient:
        z_i = (d_i - median(d)) / max(1.4826 * MAD(d), scale_floor * median(d))
    The floor keeps a patient whose lesions are all equally far apart (MAD ~ 0, common with 3-4 lesions)
    from producing huge z-scores out of noise (0.25 ~ the median MAD/median ratio seen on real ISIC 2020
    patients; with it ~6% of lesions reach z >= 2.5 instead of ~10% with 0.1). With fewer than
    `min_lesions` (3) lesions there is no "rest of the patient" to compare with: the score is NaN and a
    note says so; nothing is invented. At a follow-up the patient's earlier lesions (not imaged again) join
    the comparison as references: they are part of "the patient's other lesions" but are not scored.
    Per-patient LOF (as some ISIC 2024 solutions used) is available as
    ud_method="lof". On the real ISIC 2020 patients (out-of-fold, default model) neither separates
    melanomas from the same patient's benign lesions (within-patient concordance 0.43 and 0.48, see
    training/evaluate_triage.py): in that enriched subset a patient's melanoma is rarely the odd one out.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def z_text(z: float) -> str:
    """An ugly-duckling z to one decimal, never "-0.0" (a z of -0.04 is typical, not "minus zero"): the one
    wording of the reasons, the cards and the PDF."""
    text = f"{float(z):.1f}"
    return "0.0" if text == "-0.0" else text


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (a zero row stays zero), float64."""
    e = np.asarray(embeddings, dtype=np.float64)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def loo_cosine_distance(embeddings: np.ndarray) -> np.ndarray:
    """Cosine distance of each lesion to the mean of the patient's other lesions."""
    e = unit_rows(embeddings)
    n = len(e)
    if n < 2:
        return np.full(n, np.nan)
    others = (e.sum(0, keepdims=True) - e) / (n - 1)
    others = others / np.maximum(np.linalg.norm(others, axis=1, keepdims=True), 1e-12)
    return 1.0 - np.sum(e * others, axis=1)


def lof_score(embeddings: np.ndarray, n_neighbors: int = 5) -> np.ndarray:
    """Local outlier factor (cosine metric) within the patient; ~1 for inliers, larger for outliers."""
    from sklearn.neighbors import LocalOutlierFactor

    e = unit_rows(embeddings)
    n = len(e)
    if n < 3:
        return np.full(n, np.nan)
    lof = LocalOutlierFactor(n_neighbors=min(n_neighbors, n - 1), metric="cosine")
    lof.fit(e)
    return -lof.negative_outlier_factor_


UD_METHODS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "loo_cosine": loo_cosine_distance,
    "lof": lof_score,
}


def robust_z(values: np.ndarray, scale_floor: float = 0.25) -> np.ndarray:
    """(v - median) / max(1.4826 MAD, scale_floor * |median|, 1e-9) within one patient."""
    v = np.asarray(values, dtype=np.float64)
    med = float(np.median(v))
    mad = float(np.median(np.abs(v - med)))
    scale = max(1.4826 * mad, scale_floor * abs(med), 1e-9)
    return (v - med) / scale


# Cosine distance below which two images are taken for one photo (one lesion uploaded twice: a JPEG and its
# PNG export, a re-sized copy). Measured with the shipped model (2026-12-07): the same ISIC 2020 photos at
# 384 px and at 512 px, other encodings: median 0.019, at most 0.053 (30 photos); different images of one
# complete patient: at the least 0.116, then 0.123 and 0.148 (31,966 pairs, 80 patients; the closest pair may
# be one mole photographed twice). 0.08 is about the geometric middle of 0.053 and 0.116. Two separate photos
# of one lesion mostly differ more (HAM10000: median 0.42) and are not caught: only copies are.
NEAR_COPY_DISTANCE = 0.08


def copy_groups(embeddings: np.ndarray, max_distance: float = NEAR_COPY_DISTANCE) -> np.ndarray:
    """Group label per row: rows closer than ``max_distance`` (cosine), directly or through another row,
    share the label of their first member; every other row is its own group (label = its index)."""
    e = unit_rows(embeddings)
    n = len(e)
    groups = np.arange(n)
    if n < 2:
        return groups
    close = (1.0 - e @ e.T) < max_distance
    for i in range(n):  # union by smallest label; n is one patient's lesions, so O(n^2) is nothing
        for j in np.flatnonzero(close[i, i + 1 :]) + i + 1:
            a, b = groups[i], groups[j]
            if a != b:
                groups[groups == max(a, b)] = min(a, b)
    return groups


def ugly_duckling(
    embeddings: np.ndarray,
    method: str = "loo_cosine",
    min_lesions: int = 3,
    scale_floor: float = 0.25,
    references: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Robust z of each lesion's outlyingness among one patient's lesions; NaN below `min_lesions`.

    references: embeddings of the patient's other known lesions (earlier visits' latest image of each lesion
    not imaged again now). They are compared against and set the within-patient scale like any lesion, but
    get no score of their own: the result has one value per row of `embeddings`. `min_lesions` counts both.

    Copies of one photo (``copy_groups``) count once: a lesion uploaded twice would otherwise be its own
    closest peer, and eight copies would make any ninth lesion an outlier. Each copy gets its group's score.
    ``groups``: those groups of the embeddings and then the references, when the caller has them already.
    """
    n = len(embeddings)
    extra = 0 if references is None else len(references)
    if n == 0:
        return np.full(n, np.nan)
    everyone = np.asarray(embeddings) if not extra else np.vstack([embeddings, references])
    groups = copy_groups(everyone) if groups is None else np.asarray(groups)
    firsts = np.unique(groups)  # a group's label is its first row
    if len(firsts) < max(3, min_lesions):
        return np.full(n, np.nan)
    z = robust_z(UD_METHODS[method](everyone[firsts]), scale_floor)
    return z[np.searchsorted(firsts, groups)][:n]


def rank_descending(score: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """1 = highest score; ties broken by `tiebreak` (higher first), then input order.

    Always a permutation of 1..n (NaN scores rank last)."""
    score = np.nan_to_num(np.asarray(score, dtype=np.float64), nan=-np.inf)
    keys = (
        [np.arange(len(score)), -score]
        if tiebreak is None
        else [
            np.arange(len(score)),
            -np.nan_to_num(np.asarray(tiebreak, dtype=np.float64), nan=-np.inf),
            -score,
        ]
    )
    order = np.lexsort(keys)
    ranks = np.empty(len(score), dtype=int)
    ranks[order] = np.arange(1, len(score) + 1)
    return ranks


def embedding_map(embeddings: np.ndarray) -> np.ndarray:
    """2-D PCA of one patient's L2-normalised embeddings (n, 2); zeros where a dimension is undefined."""
    n = len(embeddings)
    out = np.zeros((n, 2))
    if n < 2:
        return out
    e = unit_rows(embeddings)
    e = e - e.mean(0, keepdims=True)
    # PCA through the n x n Gram matrix: n (lesions) is far smaller than d (1280), and a LAPACK SVD of the
    # n x d matrix can take most of a second on a busy 2-core CPU.
    values, vectors = np.linalg.eigh(e @ e.T)
    order = np.argsort(values)[::-1][:2]
    k = len(order)
    coords = vectors[:, order] * np.sqrt(np.clip(values[order], 0.0, None))
    # A deterministic sign: the lesion farthest along each axis is on the positive side.
    for j in range(k):
        if coords[np.argmax(np.abs(coords[:, j])), j] < 0:
            coords[:, j] = -coords[:, j]
    out[:, :k] = coords
    return out
