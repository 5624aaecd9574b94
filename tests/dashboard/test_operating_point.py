"""The operating point read at screening prevalence, and the sentence shown next to the scores."""

from __future__ import annotations

import pytest

from dashboard.operating_point import (
    SCREENING_PREVALENCE,
    OperatingPoint,
    operating_point,
    performance_sentence,
    pooled_curve_point,
    whole_counts,
)


def test_operating_point_at_screening_prevalence():
    op = OperatingPoint(threshold=0.3, sensitivity=0.9, specificity=0.8, prevalence=SCREENING_PREVALENCE)
    tp, fp = 0.9 * SCREENING_PREVALENCE, 0.2 * (1 - SCREENING_PREVALENCE)
    assert op.ppv == pytest.approx(tp / (tp + fp))
    assert op.npv == pytest.approx(
        0.8 * (1 - SCREENING_PREVALENCE) / (0.8 * (1 - SCREENING_PREVALENCE) + 0.1 * SCREENING_PREVALENCE)
    )
    assert op.reviews_per_melanoma == pytest.approx(1 / op.ppv)
    per = op.per_1000()
    assert per["melanomas"] == pytest.approx(17.6, abs=0.05) and per["found"] + per["missed"] == per["melanomas"]
    assert "1 in 13 flagged" in performance_sentence(op)
    assert "unvalidated" in performance_sentence(operating_point({"operating_point": {"threshold": 0.5}}))


def test_the_printed_counts_add_up():
    op = OperatingPoint(threshold=0.016, sensitivity=0.804, specificity=0.713, prevalence=SCREENING_PREVALENCE)
    counts = whole_counts(op.per_1000())  # 17.6 melanomas, 14.2 found, 3.5 missed: rounded alone, 14 + 3 = 18
    assert counts["found"] + counts["missed"] == counts["melanomas"] == 18
    assert counts["found"] + counts["false_alarms"] == counts["flagged"]


def test_the_marker_on_the_pooled_curves_uses_the_unweighted_figures_when_recorded():
    weighted = {"threshold": 0.016, "sensitivity": 0.804, "specificity": 0.713}
    point = pooled_curve_point(
        {"operating_point": {**weighted, "unweighted_sensitivity": 0.818, "unweighted_specificity": 0.714}}
    )
    assert (point.threshold, point.sensitivity, point.specificity) == (0.016, 0.818, 0.714)
    assert operating_point({"operating_point": weighted}).sensitivity == 0.804  # the page's figures stay weighted
    older = pooled_curve_point({"operating_point": weighted})  # a checkpoint that records only one pair
    assert (older.sensitivity, older.specificity) == (0.804, 0.713)


def test_a_checkpoints_operating_point_is_read_at_the_screening_prevalence_by_default():
    op = operating_point({"operating_point": {"threshold": 0.2, "sensitivity": 0.8, "specificity": 0.7}})
    assert op.prevalence == SCREENING_PREVALENCE == pytest.approx(0.0176, abs=1e-4)
    assert op.per_1000()["melanomas"] == pytest.approx(17.6, abs=0.05)
