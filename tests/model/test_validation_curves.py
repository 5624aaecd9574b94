"""The validation figures (model/figures.py) that the Model page and the evaluation report share: what each
one draws, where, and on which axes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model import figures
from model.metrics import SCREENING_PREVALENCE, at_prevalence

POOLED = {
    "roc": {"fpr": [0, 0.2, 1], "tpr": [0, 0.8, 1]},
    "pr": {"recall": [0, 0.8, 1], "precision": [1, 0.7, 0.5]},
    "calibration": {"mean_predicted": [0.1, 0.5, 0.9], "fraction_positive": [0.05, 0.5, 0.8], "count": [50, 20, 10]},
}
SITE_B = {
    "roc": {"fpr": [0, 0.4, 1], "tpr": [0, 0.6, 1]},
    "pr": {"recall": [0, 0.6, 1], "precision": [1, 0.6, 0.4]},
    "calibration": {"mean_predicted": [0.2, 0.7], "fraction_positive": [0.3, 0.6], "count": [5, 5]},
}


@dataclass
class Point:
    threshold: float
    sensitivity: float | None
    specificity: float | None

    @property
    def ppv(self) -> float | None:
        return at_prevalence(self.sensitivity, self.specificity, SCREENING_PREVALENCE)["ppv"]


def traces(fig) -> dict:
    return {t.name: t for t in fig.data}


def test_roc_draws_each_set_the_chance_line_and_the_operating_point_on_labelled_axes():
    calls = []

    def percent(p, digits=None):
        calls.append((p, digits))
        return f"<{p}>"

    fig = figures.roc_figure({"pooled": POOLED, "b": SITE_B}, Point(0.02, 0.9, 0.6), percent=percent)
    drawn = traces(fig)
    assert list(drawn) == ["chance", "pooled", "b", "operating point"]
    assert (list(drawn["chance"].x), list(drawn["chance"].y)) == ([0, 1], [0, 1])
    assert (list(drawn["pooled"].x), list(drawn["pooled"].y)) == ([0, 0.2, 1], [0, 0.8, 1])
    assert (list(drawn["b"].x), list(drawn["b"].y)) == ([0, 0.4, 1], [0, 0.6, 1])
    assert drawn["pooled"].line.color != drawn["b"].line.color
    np.testing.assert_allclose([drawn["operating point"].x[0], drawn["operating point"].y[0]], [0.4, 0.9])
    assert "threshold <0.02>" in drawn["operating point"].hovertemplate  # the caller's percentage format
    assert calls == [(0.02, None), (0.6, 1)]
    assert fig.layout.xaxis.title.text == "1 − specificity (benign lesions flagged)"
    assert fig.layout.yaxis.title.text == "sensitivity (melanomas found)"
    assert tuple(fig.layout.xaxis.range) == (0, 1)
    assert fig.layout.title.text == "ROC curve"


def test_roc_without_curves_or_without_validation_figures():
    assert figures.roc_figure({"model": None}) is None
    assert figures.roc_figure({"model": {"roc": {"fpr": [], "tpr": []}}}) is None
    fig = figures.roc_figure({"empty": {}, "model": POOLED}, Point(0.5, None, None))
    assert list(traces(fig)) == ["chance", "model"]  # a set without a ROC and a point without figures: not drawn


def test_precision_recall_at_validation_and_at_screening_prevalence():
    p = 0.02
    fig = figures.pr_figure({"validation set": POOLED, "b": SITE_B}, Point(0.1, 0.8, 0.7), prevalence=p)
    drawn = traces(fig)
    assert list(drawn) == ["validation set", "b", "at 2.00% screening prevalence", "operating point"]
    assert (list(drawn["b"].x), list(drawn["b"].y)) == ([0, 0.6, 1], [1, 0.6, 0.4])
    screening = drawn["at 2.00% screening prevalence"]  # the FIRST set's ROC re-weighted; tpr = 0 dropped
    np.testing.assert_allclose(screening.x, [0.8, 1])
    np.testing.assert_allclose(screening.y, [0.8 * p / (0.8 * p + 0.2 * (1 - p)), p])
    np.testing.assert_allclose(
        [drawn["operating point"].x[0], drawn["operating point"].y[0]], [0.8, Point(0.1, 0.8, 0.7).ppv]
    )
    assert [shape.y0 for shape in fig.layout.shapes] == [p]  # chance at screening prevalence
    assert fig.layout.xaxis.title.text == "recall = sensitivity"
    assert fig.layout.yaxis.title.text == "precision = PPV"

    validation_only = figures.pr_figure({"pooled": POOLED}, prevalence=None)
    assert list(traces(validation_only)) == ["pooled"]
    assert validation_only.layout.shapes == ()


def test_calibration_bins_sized_by_their_lesions_against_the_diagonal():
    fig = figures.calibration_figure({"model": POOLED, "b": SITE_B})
    drawn = traces(fig)
    assert list(drawn) == ["perfect calibration", "model", "b"]
    assert (list(drawn["model"].x), list(drawn["model"].y)) == ([0.1, 0.5, 0.9], [0.05, 0.5, 0.8])
    sizes = list(drawn["model"].marker.size)
    assert sizes[0] > sizes[1] > sizes[2]  # 50, 20, 10 lesions
    assert list(drawn["model"].customdata) == ["50 lesions", "20 lesions", "10 lesions"]  # the hover's "in bin"
    assert fig.layout.xaxis.title.text == "mean predicted P(melanoma)"
    assert fig.layout.yaxis.title.text == "observed fraction melanoma"
    assert figures.calibration_figure({"model": {"calibration": {}}}) is None


def test_style_figure_keeps_the_title_below_the_toolbar():
    fig = figures.style_figure(figures.empty_figure("nothing"), "A title")
    assert fig.layout.title.pad.t == figures.MODEBAR_PX
    assert fig.layout.margin.t > figures.MODEBAR_PX
    assert fig.layout.annotations[0].text == "nothing"
