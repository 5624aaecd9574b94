"""How scores are put into words: one percentage format, bands that respect uncertainty, reason lines."""

from __future__ import annotations

from dashboard.wording import pct, reason_lines, score_band


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
