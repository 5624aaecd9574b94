"""The uncertainty check: a signal that marks the wrong scores is told apart from one that only tracks the score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.uncertainty_signals import evaluate, signals, spread_summary, within_bins


def test_a_signal_that_marks_errors_scores_high_and_one_that_only_tracks_the_score_does_not():
    rng = np.random.default_rng(0)
    n = 4000
    score = rng.random(n)
    y = (rng.random(n) < score).astype(int)  # errors happen at every score level
    wrong = ((score >= 0.5) != (y == 1)).astype(int)
    informative = wrong + 0.1 * rng.random(n)
    tracks_score = score + 1e-3 * rng.random(n)
    assert within_bins(wrong, informative, score) == pytest.approx(1.0)
    assert within_bins(wrong, tracks_score, score) == pytest.approx(0.5, abs=0.08)


def test_the_second_member_is_recovered_from_the_ensemble_mean_and_spreads_are_zero_when_views_agree():
    ensemble = pd.DataFrame({"logit_v0": [0.0, 1.0, -2.0], "logit_v1": [0.0, 1.0, -2.0]})
    member = pd.DataFrame({"logit_v0": [0.0, 3.0, -2.0], "logit_v1": [0.0, 3.0, -2.0]})
    values = signals(ensemble, member, scale=1.0, bias=0.0, threshold=0.5)
    assert np.allclose(values["tta_spread"], 0.0)
    # members (0, 0), (3, -1), (-2, -2): only the second lesion's tails disagree
    expected = abs(1 / (1 + np.exp(-3)) - 1 / (1 + np.exp(1)))
    assert np.allclose(values["tail_disagreement"], [0.0, expected, 0.0])
    table = evaluate(np.array([0, 1, 0]), values, threshold=0.5)
    assert set(table.index) == {"tta_spread", "tail_disagreement", "closeness_to_threshold", "random"}


def test_the_checkpoints_spread_summary_tells_a_spread_that_marks_errors_from_one_that_does_not():
    rng = np.random.default_rng(1)
    n = 3000
    centre = rng.normal(0, 2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-centre))).astype(int)
    wrong = (centre >= 0) != (y == 1)
    for half_width, expect_high in ((np.where(wrong, 0.4, 0.01), True), (np.full(n, 0.2), False)):
        oof = pd.DataFrame({"target": y, "logit_v0": centre + half_width, "logit_v1": centre - half_width})
        found = spread_summary(oof, scale=1.0, bias=0.0, threshold=0.5)
        assert found["images"] == n and found["wrong_side_of_threshold"] == int(wrong.sum())
        assert (found["tta_spread_error_auc_equal_score"] > 0.9) is expect_high
        assert found["closeness_to_threshold_error_auc"] > 0.6  # errors sit near the threshold here
