"""How scores are put into words: one percentage format, bands that respect uncertainty, reason lines."""

from __future__ import annotations

import pytest

from dashboard.components import score_bar_html
from dashboard.wording import pct, reason_lines, score_band, uncertainty_interval


def test_score_bands_respect_uncertainty():
    assert score_band(0.8, 0.5, 0.01).name == "above"
    assert score_band(0.52, 0.5, 0.05).title == "Above threshold (borderline)"
    assert score_band(0.45, 0.5, 0.05).name == "near"
    assert score_band(0.1, 0.5, 0.01).name == "below"


def test_reason_lines():
    assert reason_lines("a is high; b is odd") == ["a is high.", "b is odd."]
    assert reason_lines(float("nan")) == []


def test_probabilities_have_one_format_one_decimal_below_ten_per_cent():

    assert [pct(p) for p in (0.024, 0.0176, 0.86, 0.15, 0.0, 1.0, None)] == [
        "2.4%",
        "1.8%",
        "86%",
        "15%",
        "0.0%",
        "100%",
        "–",
    ]
    assert pct(0.0176, 2) == "1.76%"
    assert "2.4% is below the 3.1% threshold" in score_band(0.024, 0.031, 0.0).explanation


def test_a_score_well_below_a_low_threshold_is_below_it():
    # The shipped threshold sits at a few per cent: a fixed margin of points would call every score borderline.
    assert score_band(0.001, 0.0164, 0.0).name == "below"
    assert score_band(0.008, 0.0164, 0.0002).name == "below"
    assert score_band(0.012, 0.0164, 0.003).name == "near"  # 1.2% + 2 × 0.3 reaches 1.64%
    assert score_band(0.02, 0.0164, 0.001).title == "Above threshold"


def test_the_band_words_the_interval_the_bar_draws():
    band = score_band(0.012, 0.0164, 0.003)
    low, high = uncertainty_interval(0.012, 0.003)
    assert (low, high) == pytest.approx((0.006, 0.018))
    assert f"({pct(low)}–{pct(high)})" in band.explanation
    assert f"({pct(low)}–{pct(high)} across orientations)" in score_bar_html(0.012, 0.0164, 0.003)


def test_a_score_and_threshold_that_round_alike_get_more_decimals():
    assert score_band(0.0156, 0.0164, 0.0).explanation == "1.56% is below the 1.64% threshold."
    assert score_band(0.024, 0.031, 0.0).explanation == "2.4% is below the 3.1% threshold."


def test_a_scores_uncertainty_is_worded_one_way_as_the_interval_the_bars_draw():
    from dashboard.wording import score_interval

    low, high = uncertainty_interval(0.03, 0.002)
    assert (
        score_interval(0.03, 0.002) == f"{pct(low)}–{pct(high)} across orientations" == "2.6%–3.4% across orientations"
    )
    assert score_interval(0.86, 0.012, 8) == "84%–88% across 8 orientations"
    assert score_interval(0.015, 0.0) == "the same across orientations"  # never "± 0.0", read as certain
    assert score_interval(0.015, None) == "no uncertainty recorded with this score"


def test_a_score_exactly_at_the_threshold_is_above_it():
    # The metrics count P >= threshold as flagged: the band agrees, certain or not.
    assert score_band(0.016, 0.016).name == "above"
    assert score_band(0.016, 0.016).title == "Above threshold"
    assert score_band(0.5, 0.5, 0.01).title == "Above threshold (borderline)"


def test_a_score_below_whose_interval_just_reaches_the_threshold_is_near_it():
    # 0.375 + 2 * 0.0625 = 0.5 exactly: the interval touches the threshold
    assert uncertainty_interval(0.375, 0.0625) == (0.25, 0.5)
    assert score_band(0.375, 0.5, 0.0625).name == "near"
    assert score_band(0.375, 0.5, 0.0624).name == "below"


def test_the_uncertainty_interval_stays_inside_zero_and_one():
    assert uncertainty_interval(0.005, 0.01) == pytest.approx((0.0, 0.025))
    assert uncertainty_interval(0.995, 0.01) == pytest.approx((0.975, 1.0))
    assert uncertainty_interval(0.3, None) == (0.3, 0.3)


def test_a_score_that_rounds_to_ten_per_cent_reads_as_ten_without_a_decimal():
    assert pct(0.0996) == "10%"  # not "10.0%": from 10% no decimal, after rounding
    assert pct(0.0994) == "9.9%"
