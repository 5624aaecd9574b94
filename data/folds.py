"""Group-aware stratified folds: a patient (or HAM10000 lesion) never sits in two folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold


def assign_folds(records: pd.DataFrame, n_folds: int = 5, seed: int = 42) -> pd.Series:
    """Return a fold number per row; stratified on target (and dataset), grouped by group_id.

    Deterministic for a given (records, n_folds, seed). Unlabelled rows are stratified as their own class.
    """
    if n_folds < 2:
        raise ValueError("n_folds must be at least 2")
    target = records["target"].astype("Int64").fillna(-1).astype(int).astype(str)
    strata = records["dataset"].astype(str) + "|" + target
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.full(len(records), -1, dtype=int)
    for fold, (_, test_idx) in enumerate(splitter.split(np.zeros(len(records)), strata, records["group_id"])):
        folds[test_idx] = fold
    return pd.Series(folds, index=records.index, name="fold")
