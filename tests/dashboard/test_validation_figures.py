"""The review's figures and the Model page's validation figures and tables, built from data (no Streamlit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import figures
from dashboard.model_card_data import curve_sets, network_summary, per_dataset_table
from dashboard.operating_point import SCREENING_PREVALENCE, OperatingPoint


def test_figures_build_and_degrade_gracefully():
    table = pd.DataFrame(
        {
            "image_id": ["a" * 64, "b" * 64, "c" * 64],
            "label": ["one", "two", "three"],
            "rank": [2, 1, 3],
            "p_melanoma": [0.4, 0.8, 0.1],
            "p_spread": [0.02, 0.05, 0.01],
            "ugly_duckling": [0.1, 3.2, -0.5],
            "outlier": [False, True, False],
            "x": [0.0, 1.0, -1.0],
            "y": [0.0, 0.5, 0.2],
        }
    )
    ranked = figures.ranked_scores(table, 0.5)
    dots = ranked.data[0]  # highest rank drawn last = on top; whiskers ± 2 × TTA spread
    # each row says its band in words, not by colour alone (0.4 ± 0.04 is below 0.5; 0.8 above), and an outlier
    assert list(dots.y) == ["Rank 3 · three · below", "Rank 2 · one · below", "Rank 1 · two · above · ugly duckling"]
    assert list(dots.x) == [0.1, 0.4, 0.8]
    np.testing.assert_allclose(dots.error_x.array, [0.02, 0.04, 0.10])
    np.testing.assert_allclose(dots.error_x.arrayminus, [0.02, 0.04, 0.10])
    assert [shape.x0 for shape in ranked.layout.shapes] == [0.5]  # the threshold line
    assert ranked.layout.xaxis.type == "log"
    # calibrated scores of a few per cent: the axis starts just below them, not at 0-100% where they vanish
    low = figures.ranked_scores(table.assign(p_melanoma=[0.012, 0.03, 0.0012], p_spread=[0.003, 0.02, 0.0]), 0.016)
    assert low.layout.xaxis.range == (np.log10(0.0006), 0.0)
    assert list(low.data[0].y) == [
        "Rank 3 · three · below",
        "Rank 2 · one · near",
        "Rank 1 · two · above · ugly duckling",
    ]
    assert low.data[0].error_x.arrayminus[2] == pytest.approx(0.03 - 0.0006)  # cut at the axis, never below 0
    assert "0.1%" in low.layout.xaxis.ticktext and "0.0%" not in low.layout.xaxis.ticktext
    # a score below a thousandth of a per cent (seen: 0.0087%) is drawn at the axis's end, not left off
    tiny = figures.ranked_scores(table.assign(p_melanoma=[0.012, 0.03, 0.000001], p_spread=0.0), 0.016)
    assert tiny.layout.xaxis.range[0] == pytest.approx(np.log10(0.00001))
    assert min(tiny.data[0].x) == pytest.approx(0.00001)
    assert min(tiny.data[0].error_x.arrayminus) >= 0  # whiskers from the drawn dot, never negative
    assert list(tiny.layout.xaxis.ticktext)[:3] == ["0.001%", "0.003%", "0.01%"]
    assert figures.roc_figure(None, None) is None and figures.calibration_figure({}) is None
    validation = {
        "roc": {"fpr": [0, 0.2, 1], "tpr": [0, 0.8, 1]},
        "pr": {"recall": [0, 0.8, 1], "precision": [1, 0.7, 0.5]},
        "calibration": {
            "mean_predicted": [0.1, 0.5, 0.9],
            "fraction_positive": [0.05, 0.5, 0.8],
            "count": [50, 20, 10],
        },
        "per_dataset": {"isic2020": {"auc": 0.9, "auc_ci": [0.85, 0.94], "n": 150}},
    }
    op = OperatingPoint(0.5, 0.8, 0.7, SCREENING_PREVALENCE)
    roc = {t.name: t for t in figures.roc_figure(validation, op).data}
    assert set(roc) == {"chance", "model", "operating point"}
    assert (list(roc["model"].x), list(roc["model"].y)) == ([0, 0.2, 1], [0, 0.8, 1])
    np.testing.assert_allclose([roc["operating point"].x[0], roc["operating point"].y[0]], [0.3, 0.8])
    pr_figure = figures.pr_figure(validation, op)
    pr = {t.name: t for t in pr_figure.data}  # validation, re-weighted, operating point
    assert len(pr) == 3
    assert (list(pr["validation set"].x), list(pr["validation set"].y)) == ([0, 0.8, 1], [1, 0.7, 0.5])
    p = SCREENING_PREVALENCE
    screening = next(t for name, t in pr.items() if name.startswith("at "))
    # ROC points (0.2, 0.8) and (1, 1) re-weighted to screening prevalence (tpr = 0 has no precision)
    np.testing.assert_allclose(screening.x, [0.8, 1])
    np.testing.assert_allclose(screening.y, [0.8 * p / (0.8 * p + 0.2 * (1 - p)), p])
    np.testing.assert_allclose([pr["operating point"].x[0], pr["operating point"].y[0]], [0.8, op.ppv])
    assert op.ppv == pytest.approx(0.8 * p / (0.8 * p + 0.3 * (1 - p)))
    assert [shape.y0 for shape in pr_figure.layout.shapes] == [p]  # chance at screening prevalence
    calibration = {t.name: t for t in figures.calibration_figure(validation).data}
    model_bins = calibration["model"]
    assert (list(model_bins.x), list(model_bins.y)) == ([0.1, 0.5, 0.9], [0.05, 0.5, 0.8])
    sizes = list(model_bins.marker.size)
    assert sizes[0] > sizes[1] > sizes[2]  # marker area follows the lesions in each bin (50, 20, 10)
    assert per_dataset_table(validation).iloc[0]["ROC AUC 95% CI"] == "0.850–0.940"
    assert list(curve_sets(validation)) == ["validation"]
    nested = {"curves": {"isic2020": validation, "pooled": validation}, "pooled": {"auc": 0.88, "n": 900}}
    assert list(curve_sets(nested)) == ["pooled", "isic2020"]
    assert list(per_dataset_table(nested)["dataset"]) == ["all datasets (pooled)"]


def test_the_network_summary_says_when_several_tails_share_a_trunk():
    single = {"backbone": "tf_efficientnet_lite0", "image_size": 224, "architecture": "melanoma_net"}
    assert network_summary(single) == "**backbone** tf_efficientnet_lite0 at 224 px"
    assert network_summary({}) == "**backbone** ? at ? px"  # an older or hand-made config
    ensemble = {**single, "architecture": "shared_trunk_ensemble", "members": 2, "shared_trunk": "blocks.5.0"}
    text = network_summary(ensemble)
    assert text.startswith("**backbone** tf_efficientnet_lite0 at 224 px, **2 trained tails**")
    assert "`blocks.5.0`" in text and "mean of their logits" in text


def test_calibration_at_screening_prevalence_is_drawn_on_its_own_scale():
    """The re-weighted curve lives below 15%: on a 0–1 square its dots would sit in one corner, unreadable."""
    curve = {
        "mean_predicted": [0.001, 0.01, 0.12],
        "fraction_positive": [0.0009, 0.011, 0.123],
        "weight": [0.6, 0.3, 0.1],
        "ece": 0.001,
    }
    fig = figures.screening_calibration_figure(curve)
    assert fig.layout.title.text == "Calibration at screening prevalence"
    # a log scale from just below the smallest value (0.0009) to just above the largest (0.123): on linear axes
    # half the bins sat in one blob at the origin
    assert fig.layout.xaxis.type == fig.layout.yaxis.type == "log"
    assert fig.layout.xaxis.range == (pytest.approx(np.log10(0.0009 / 1.5)), pytest.approx(np.log10(0.1353)))
    assert "0.0%" not in fig.layout.xaxis.ticktext and "0.1%" in fig.layout.xaxis.ticktext
    diagonal = fig.data[0]
    assert list(diagonal.x) == list(diagonal.y) == [pytest.approx(0.0006), pytest.approx(0.1353)]
    [dots] = [t for t in fig.data if t.name == "held-out lesions at 1.76%"]
    assert list(dots.customdata) == ["60% of lesions", "30% of lesions", "10% of lesions"]
    assert list(dots.marker.size) == sorted(dots.marker.size, reverse=True)  # marker area follows the weight
    assert figures.screening_calibration_figure(None) is None


def test_the_model_page_names_the_checkpoint_folder_without_the_servers_layout(tmp_path):
    from dashboard.model_card_data import folder_label
    from data.settings import REPO_ROOT

    assert folder_label(REPO_ROOT / "model" / "weights" / "default") == "model/weights/default"
    assert folder_label(tmp_path / "srv" / "models" / "v3") == "v3"
