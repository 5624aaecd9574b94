"""Re-photograph noise: pairs of images of one lesion, their odds ratios, and what a margin would flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.rephotograph_noise import calibrated, ordered_pairs, summarise


def frame(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    """(dataset, group, target, logit) per image; both TTA views equal, so the spread is 0."""
    out = pd.DataFrame(rows, columns=["dataset", "group_id", "target", "logit_v0"])
    return out.assign(logit_v1=out["logit_v0"], image_id=[f"I{i}" for i in range(len(out))])


def test_pairs_are_ordered_within_a_lesion_and_only_for_the_named_dataset():
    scored = calibrated(
        frame(
            [
                ("ham10000", "ham10000:L1", 0, 0.0),
                ("ham10000", "ham10000:L1", 0, np.log(3.0)),  # odds x3 between the two photos
                ("ham10000", "ham10000:L2", 1, 1.0),  # one image: no pair
                ("isic2020", "isic2020:P1", 0, 0.0),  # a patient, not a lesion: never paired
                ("isic2020", "isic2020:P1", 0, 2.0),
            ]
        ),
        scale=1.0,
        bias=0.0,
    )
    pairs = ordered_pairs(scored)
    assert len(pairs) == 2 and set(pairs["target"]) == {0}
    summary = summarise(pairs)
    assert set(summary) == {"benign"}
    benign = summary["benign"]
    assert benign["ordered_pairs"] == 2
    assert benign["odds_ratio_quantiles"]["0.5"] == pytest.approx(3.0)
    # one direction rises x3, the other falls: half the ordered pairs pass x2, none pass x4
    assert benign["flagged_share"]["2.0"] == pytest.approx(0.5)
    assert benign["flagged_share"]["4.0"] == 0.0
    assert benign["x2_flags_called_noise_by_spread"] == 0.0  # no spread: a x3 rise is never within it
