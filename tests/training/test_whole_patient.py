"""Whole-patient ranking metrics and prevalence calibration, on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training import calibration, whole_patient


def frame(groups, targets):
    return pd.DataFrame({"group_id": groups, "target": targets})


def test_first_rank_share_and_hits_are_counted_per_patient():
    # patient a: 5 lesions, melanoma scored 3rd highest; patient b: 3 lesions, melanoma first; c: benign only
    f = frame(["a"] * 5 + ["b"] * 3 + ["c"] * 2, [0, 0, 1, 0, 0, 1, 0, 0, 0, 0])
    score = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.9, 0.1, 0.2, 0.5, 0.4])
    table = whole_patient.patient_table(f, score).set_index("patient")
    assert table.loc["a", "first_rank"] == 3
    assert table.loc["a", "share_before"] == pytest.approx(2 / 4)
    assert table.loc["a", "within_auc"] == pytest.approx(2 / 4)  # above 2 of its 4 benign lesions
    assert table.loc["b", "first_rank"] == 1 and table.loc["b", "share_before"] == 0
    assert np.isnan(table.loc["c", "first_rank"])
    summary = whole_patient.summarise(table.reset_index())
    assert summary["top1"] == 0.5 and summary["top5"] == 1.0
    assert summary["share_before"] == pytest.approx(0.25)
    assert summary["top15_retrieval"] == 1.0


def test_ties_do_not_favour_the_melanoma():
    # all equal scores: input order decides, so a melanoma listed last is found last
    f = frame(["a"] * 4, [0, 0, 0, 1])
    table = whole_patient.patient_table(f, np.zeros(4))
    assert table["first_rank"].iloc[0] == 4


def test_random_order_share_is_nan_without_a_melanoma_patient():
    import warnings

    table = pd.DataFrame({"n": [5, 8], "n_melanoma": [0, 0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" on the way
        assert np.isnan(whole_patient.random_order_share(table))


def test_random_order_share_matches_simulation():
    rng = np.random.default_rng(0)
    f = frame(["a"] * 10 + ["b"] * 30, [1, 1] + [0] * 8 + [1] + [0] * 29)
    table = whole_patient.patient_table(f, rng.random(40))
    sims = [whole_patient.summarise(whole_patient.patient_table(f, rng.random(40)))["share_before"] for _ in range(600)]
    assert whole_patient.random_order_share(table) == pytest.approx(np.mean(sims), abs=0.025)


def test_bootstrap_interval_contains_the_point_and_a_perfect_ranking_scores_perfectly():
    f = frame(np.repeat(np.arange(20), 10).astype(str), np.tile([1] + [0] * 9, 20))
    perfect = np.tile(np.r_[1.0, np.zeros(9)], 20)
    result = whole_patient.bootstrap(whole_patient.patient_table(f, perfect), n_boot=200)
    assert result["share_before"]["value"] == 0 and result["top1"]["value"] == 1
    noisy = np.random.default_rng(1).random(200)
    result = whole_patient.bootstrap(whole_patient.patient_table(f, noisy), n_boot=200)
    lo, hi = result["share_before"]["ci"]
    assert lo <= result["share_before"]["value"] <= hi and hi - lo > 0


def test_paired_difference_sign():
    f = frame(np.repeat(np.arange(10), 5).astype(str), np.tile([1, 0, 0, 0, 0], 10))
    good = np.tile([1.0, 0, 0, 0, 0], 10)
    bad = np.tile([0.0, 1, 1, 1, 1], 10)
    diff = whole_patient.paired_difference(
        whole_patient.patient_table(f, good), whole_patient.patient_table(f, bad), n_boot=50
    )
    assert diff["value"] == pytest.approx(-1.0)


def test_prevalence_weights_give_every_source_the_screening_rate():
    f = pd.DataFrame({"dataset": ["a"] * 100 + ["b"] * 50, "target": [1] * 50 + [0] * 50 + [1] * 5 + [0] * 45})
    w = calibration.prevalence_weights(f, prevalence=0.02)
    for idx in f.groupby("dataset").indices.values():
        y = f["target"].to_numpy()[idx]
        assert (w[idx] * y).sum() / w[idx].sum() == pytest.approx(0.02)
        assert w[idx].sum() == pytest.approx(len(idx))


def test_platt_recovers_a_known_mapping_and_apply_averages_views():
    rng = np.random.default_rng(0)
    logit = rng.normal(0, 2, 20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-(0.5 * logit - 1.0)))).astype(int)
    a, b = calibration.fit_platt(logit, y)
    assert a == pytest.approx(0.5, abs=0.05) and b == pytest.approx(-1.0, abs=0.06)
    views = np.array([[0.0, 2.0]])
    expected = (1 / (1 + np.exp(-(a * 0 + b))) + 1 / (1 + np.exp(-(a * 2 + b)))) / 2
    assert calibration.apply(views, a, b)[0] == pytest.approx(expected)


def test_weighted_reliability_is_zero_for_calibrated_scores():
    rng = np.random.default_rng(0)
    p = rng.random(50000) * 0.2
    y = (rng.random(50000) < p).astype(int)
    assert calibration.weighted_reliability(p, y, np.ones_like(p))["ece"] < 0.01
    assert calibration.weighted_reliability(np.clip(p * 3, 0, 1), y, np.ones_like(p))["ece"] > 0.1


def test_a_random_orders_expected_top_k():
    table = pd.DataFrame({"n": [10, 10, 5, 40], "n_melanoma": [1, 2, 1, 0]})
    # 1 melanoma of 10: top-5 holds it half the time; 2 of 10: 1 - C(8,5)/C(10,5) = 7/9; 5 lesions: always.
    assert whole_patient.random_order_top(table, 5) == pytest.approx((0.5 + 7 / 9 + 1.0) / 3)
    assert whole_patient.random_order_top(table, 1) == pytest.approx((0.1 + 0.2 + 0.2) / 3)
    assert np.isnan(whole_patient.random_order_top(table[table["n_melanoma"] == 0], 5))
