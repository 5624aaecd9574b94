import numpy as np
import pandas as pd
import pytest

from model.metrics import (
    at_prevalence,
    bootstrap_ci,
    calibration,
    partial_auc_above_tpr,
    rates_at_threshold,
    roc_auc,
    sensitivity_at_specificity,
    specificity_at_sensitivity,
    threshold_for_sensitivity,
)
from training.evaluate import report_from_predictions

rng = np.random.default_rng(0)
Y = rng.integers(0, 2, 2000)
P = np.clip(Y * 0.3 + rng.random(2000) * 0.7, 0, 1)


def test_pauc_range_matches_isic2024_definition():
    assert partial_auc_above_tpr(Y, Y.astype(float)) == pytest.approx(0.2)
    assert partial_auc_above_tpr(Y, 1 - Y.astype(float)) == pytest.approx(0.0, abs=1e-9)
    random_score = partial_auc_above_tpr(Y, rng.random(2000))
    assert random_score == pytest.approx(0.02, abs=0.01)  # chance: 0.2² / 2


def test_threshold_for_sensitivity_reaches_the_target():
    t = threshold_for_sensitivity(Y, P, 0.9)
    sens, spec = rates_at_threshold(Y, P, t)
    assert sens >= 0.9
    assert sens - 0.9 < 2 / Y.sum()
    assert specificity_at_sensitivity(Y, P, 0.9) == pytest.approx(spec)


def test_sensitivity_at_specificity():
    # the best sensitivity of any threshold (every score, and just above each) that keeps specificity >= 90%
    candidates = np.r_[np.unique(P), np.nextafter(np.unique(P), np.inf)]
    rates = [rates_at_threshold(Y, P, t) for t in candidates]
    best = max(sens for sens, spec in rates if spec >= 0.9)
    assert sensitivity_at_specificity(Y, P, 0.9) == best
    assert 0 < best < 1  # neither trivial end
    assert sensitivity_at_specificity(Y, Y.astype(float), 0.9) == 1.0


def test_sensitivity_at_specificity_does_not_count_a_melanoma_tied_with_the_benign_lesion_at_the_cut():
    # 10 benign lesions: 90% specificity leaves the 9 lowest unflagged, so the cut sits just above 0.9; the
    # melanoma scored 0.9 exactly is not found (flagging it would flag that benign lesion too: 80% specificity)
    y = np.r_[np.zeros(10, int), np.ones(3, int)]
    p = np.r_[np.arange(1, 11) / 10, 0.9, 0.95, 0.5]
    assert sensitivity_at_specificity(y, p, 0.9) == pytest.approx(1 / 3)
    assert rates_at_threshold(y, p, 0.9) == pytest.approx((2 / 3, 0.8))


def test_screening_figures_at_prevalence():
    out = at_prevalence(0.9, 0.8, prevalence=0.0176)
    ppv = 0.9 * 0.0176 / (0.9 * 0.0176 + 0.2 * 0.9824)
    assert out["ppv"] == pytest.approx(ppv)
    assert out["reviews_per_melanoma"] == pytest.approx(1 / ppv)
    assert out["npv"] == pytest.approx(0.8 * 0.9824 / (0.8 * 0.9824 + 0.1 * 0.0176))


def test_calibration_and_bootstrap():
    cal = calibration(Y, Y.astype(float))
    assert cal["ece"] == pytest.approx(0.0)
    lo, hi = bootstrap_ci(roc_auc, Y, P, n_boot=200)
    assert lo < roc_auc(Y, P) < hi
    # Each lesion photographed twice (identical rows): resampling lesions gives exactly the interval of the
    # lesions counted once, and resampling images would give a narrower, falsely confident one.
    y2, p2, lesion = np.repeat(Y, 2), np.repeat(P, 2), np.repeat(np.arange(len(Y)), 2)
    lo_g, hi_g = bootstrap_ci(roc_auc, y2, p2, groups=lesion, n_boot=200)
    assert (lo_g, hi_g) == (lo, hi)
    lo_i, hi_i = bootstrap_ci(roc_auc, y2, p2, n_boot=200)
    assert hi_i - lo_i < 0.85 * (hi_g - lo_g)


def test_ece_weights_each_bin_by_its_share_of_lesions():
    # three lesions at 5% (one melanoma: gap 0.05 vs 1/3) and one at 95% (a melanoma: gap 0.05)
    cal = calibration([0, 0, 1, 1], [0.05, 0.05, 0.05, 0.95])
    assert cal["count"] == [3, 1]
    assert cal["ece"] == pytest.approx(3 / 4 * (1 / 3 - 0.05) + 1 / 4 * 0.05)  # 0.225, not the bins' mean 0.167


def _by_hand_percentile_bootstrap(metric, y, p, groups, n_boot, seed):
    """95% percentile bootstrap, whole groups drawn with replacement, as many groups as there are."""
    rng = np.random.default_rng(seed)
    names = np.unique(groups)
    values = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(names), len(names))
        rows = np.concatenate([np.flatnonzero(groups == names[g]) for g in drawn])
        values.append(metric(y[rows], p[rows]))
    return tuple(np.quantile(values, [0.025, 0.975]))


def test_bootstrap_interval_is_a_95_percent_percentile_bootstrap_of_whole_groups():
    small = np.random.default_rng(3)
    y = small.integers(0, 2, 120)
    p = np.clip(y * 0.2 + small.random(120) * 0.8, 0, 1)
    patients = small.integers(0, 30, 120)
    ours = bootstrap_ci(roc_auc, y, p, groups=patients, n_boot=300, seed=7)
    assert ours == pytest.approx(_by_hand_percentile_bootstrap(roc_auc, y, p, patients, 300, 7))
    assert ours[1] - ours[0] > 0.05
    alone = bootstrap_ci(roc_auc, y, p, n_boot=300, seed=7)
    assert alone == pytest.approx(_by_hand_percentile_bootstrap(roc_auc, y, p, np.arange(120), 300, 7))


def test_report_from_predictions_has_pooled_and_per_dataset():
    preds = pd.DataFrame(
        {
            "image_id": [str(i) for i in range(2000)],
            "dataset": np.where(np.arange(2000) < 1000, "a", "b"),
            "group_id": [str(i // 2) for i in range(2000)],
            "target": Y,
            "p_melanoma": P,
        }
    )
    report = report_from_predictions(preds, n_boot=50)
    assert set(report["per_dataset"]) == {"a", "b"}
    assert report["operating_point"]["sensitivity"] >= 0.9
    assert report["pooled"]["screening"]["reviews_per_melanoma"] > 1
    assert len(report["curves"]["pooled"]["roc"]["fpr"]) <= 300


def test_a_dataset_with_one_class_gets_its_figures_but_no_curves():
    import warnings

    from model.metrics import curves

    assert curves(np.zeros(50, int), rng.random(50)) is None
    preds = pd.DataFrame(
        {
            "image_id": [str(i) for i in range(2100)],
            "dataset": ["a"] * 2000 + ["benign only"] * 100,
            "group_id": [str(i) for i in range(2100)],
            "target": np.r_[Y, np.zeros(100, int)],
            "p_melanoma": np.r_[P, rng.random(100)],
        }
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*(positive|empty).*")  # no ROC of a one-class set
        report = report_from_predictions(preds, n_boot=20)
    assert set(report["curves"]) == {"pooled", "a"}
    assert "benign only" in report["per_dataset"]


def test_proportion_interval_is_wilsons_and_stays_inside_zero_one():
    from model.metrics import proportion_ci

    low, high = proportion_ci(13, 25)  # Wilson by hand: centre 0.5173, half-width 0.1824
    assert low == pytest.approx(0.3350, abs=1e-4) and high == pytest.approx(0.6997, abs=1e-4)
    assert proportion_ci(0, 5)[0] == pytest.approx(0.0, abs=1e-12)
    assert proportion_ci(5, 5)[1] == pytest.approx(1.0, abs=1e-12)
    assert all(np.isnan(proportion_ci(0, 0)))
    # one lesion: Wilson's bounds are 1 / (1 + z²) and z² / (1 + z²), z = 1.95996
    z2 = 1.959963984540054**2
    assert proportion_ci(1, 1) == pytest.approx((1 / (1 + z2), 1.0))
    assert proportion_ci(0, 1) == pytest.approx((0.0, z2 / (1 + z2)))
    assert proportion_ci(1, 1)[0] == pytest.approx(0.2065, abs=1e-4)


def test_random_order_expectations():
    from model.metrics import random_order_share, random_order_top

    # one melanoma among 10: half the other 9 before it; the top 5 holds it half the time
    assert random_order_share([10], [1]) == pytest.approx(0.5)
    assert random_order_top([10], [1], 5) == pytest.approx(0.5)
    # a patient with 5 lesions or fewer is found by any top 5; no patient: NaN
    assert random_order_top([4, 10], [1, 1], 5) == pytest.approx(0.75)
    assert np.isnan(random_order_share([], [])) and np.isnan(random_order_top([], [], 5))
