"""The score-change rules shared by the follow-up pages and their measurement on re-photographed lesions."""

from __future__ import annotations

import numpy as np
import pytest

from model import score_change


def test_odds_ratio_is_the_growth_of_the_odds_and_survives_certain_scores():
    assert score_change.odds_ratio(0.2, 0.5) == pytest.approx(4.0)  # odds 1/4 -> 1
    assert score_change.odds_ratio(0.5, 0.2) == pytest.approx(0.25)
    assert np.isfinite(score_change.odds_ratio(0.0, 1.0)) and score_change.odds_ratio(0.0, 1.0) > 1e10
    np.testing.assert_allclose(score_change.odds_ratio(np.array([0.1, 0.3]), np.array([0.1, 0.6])), [1.0, 3.5])


def test_a_rise_within_twice_the_combined_spread_may_be_noise():
    # spreads 0.03 and 0.04 combine to 0.05, so rises up to 0.10 are within
    assert score_change.within_spread(0.20, 0.30, 0.03, 0.04)
    assert not score_change.within_spread(0.20, 0.31, 0.03, 0.04)
    assert score_change.within_spread(0.5, 0.4, 0.0, 0.0)  # a fall is never a rise beyond the spread
    np.testing.assert_array_equal(
        score_change.within_spread(np.array([0.2, 0.2]), np.array([0.25, 0.5]), np.array([0.03, 0.03]), 0.04),
        [True, False],
    )
