"""A within-patient ranking loss: a patient's melanoma should score above the same patient's benign moles.

The product ranks one patient's lesions, so what matters is the order inside a patient, not the level of a
patient's scores against another patient's. The pointwise loss (BCE) learns both; this term learns only the
first. Pairs (melanoma, benign lesion of the same patient) come from the sources with patient ids (both ISIC
2020 datasets; HAM10000's groups are lesions, ISIC 2017 has none). Both lesions of a pair went through one
imaging pipeline (training data are de-duplicated so a patient's images come from one dataset), so the
pair's difference cannot be the codec.

Each melanoma gets the same share of draws, its partner drawn uniformly from the patient's benign lesions,
so a patient with 60 moles does not outweigh one with 5.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from data.datasets import population_of


def within_patient_pairs(records: pd.DataFrame, populations: tuple[str, ...] = ("isic2020",)) -> np.ndarray:
    """(n_pairs, 2) positional indices into `records`: (melanoma, benign lesion of the same patient).

    Only the groups of `populations` (data.datasets.population_of) are patients; other sources' groups are
    lesions or single images."""
    group = records["group_id"].astype(str).to_numpy()
    target = records["target"].astype("Int64").fillna(-1).astype(int).to_numpy()
    is_patient = records["dataset"].map(population_of).isin(populations).to_numpy()
    pairs = []
    frame = pd.DataFrame({"group": group, "target": target, "pos": np.arange(len(records))})[is_patient]
    for _, rows in frame.groupby("group", sort=True):
        melanomas = rows.loc[rows["target"] == 1, "pos"].to_numpy()
        benign = rows.loc[rows["target"] == 0, "pos"].to_numpy()
        pairs += [(m, b) for m in melanomas for b in benign]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def pair_draw_weights(pairs: np.ndarray) -> np.ndarray:
    """Draw probabilities over pairs: every melanoma equally often, its benign partner uniform."""
    if len(pairs) == 0:
        return np.zeros(0)
    _, inverse, counts = np.unique(pairs[:, 0], return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse]
    return weights / weights.sum()


def pairwise_ranking_loss(melanoma_logits: torch.Tensor, benign_logits: torch.Tensor) -> torch.Tensor:
    """RankNet's logistic loss, log(1 + exp(benign - melanoma)), averaged over pairs."""
    return F.softplus(benign_logits - melanoma_logits).mean()


def ranking_loss_after(logits: torch.Tensor, n_draws: int) -> torch.Tensor:
    """The ranking loss of a batch whose rows after its `n_draws` draws are pairs, laid out as both trainers
    append them: the pairs' melanomas, then their benign partners in the same order."""
    melanoma, benign = logits[n_draws:].chunk(2)
    return pairwise_ranking_loss(melanoma, benign)
