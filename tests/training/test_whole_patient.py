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


def one_melanoma_at(ranks, n):
    """A frame and scores: one patient per rank, ``n`` lesions each, its melanoma (listed first) ranked there."""
    groups, targets, scores = [], [], []
    for i, rank in enumerate(ranks):
        benign = np.arange(n - 1, 0, -1, dtype=float)  # n - 1, ..., 1
        groups += [f"p{i:02d}"] * n
        targets += [1] + [0] * (n - 1)
        scores += [n - 0.5 - rank + 1, *benign]  # rank - 1 benign lesions score above the melanoma
    return frame(groups, targets), np.array(scores)


def test_a_melanoma_ranked_fifth_is_in_the_top_five_and_sixth_is_not():
    f, score = one_melanoma_at([5, 6], n=8)
    table = whole_patient.patient_table(f, score)
    assert list(table["first_rank"]) == [5, 6]
    assert whole_patient.summarise(table)["top5"] == 0.5


def test_a_melanoma_ranked_fifteenth_is_retrieved_in_the_top_fifteen():
    # one patient, 20 lesions, melanomas at ranks 15 and 16: one of the two is within the top 15
    f = frame(["a"] * 20, [0] * 14 + [1, 1] + [0] * 4)
    table = whole_patient.patient_table(f, np.arange(20, 0, -1, dtype=float))
    assert table["first_rank"].iloc[0] == 15 and table["hits15"].iloc[0] == 1
    assert whole_patient.summarise(table)["top15_retrieval"] == 0.5


def test_a_melanoma_tied_with_a_benign_lesion_counts_half_a_pair():
    f = frame(["a", "a", "b", "b", "b"], [1, 0, 1, 0, 0])
    table = whole_patient.patient_table(f, np.array([0.5, 0.5, 0.5, 0.5, 0.1])).set_index("patient")
    assert table.loc["a", "within_auc"] == 0.5
    assert table.loc["b", "within_auc"] == 0.75  # the tie half, the lesion below it whole


def test_bootstrap_intervals_are_95_percent_percentile_intervals_over_melanoma_patients():
    ranks = np.random.default_rng(4).integers(1, 11, 25)
    f, score = one_melanoma_at(ranks, n=10)
    table = whole_patient.patient_table(f, score)
    result = whole_patient.bootstrap(table, n_boot=300, seed=5)
    rng = np.random.default_rng(5)  # by hand: patients drawn with replacement, 2.5% and 97.5% quantiles
    draws = [whole_patient.summarise(table.iloc[rng.integers(0, 25, 25)]) for _ in range(300)]
    for m in ("share_before", "top5"):
        assert result[m]["ci"] == pytest.approx(list(np.quantile([d[m] for d in draws], [0.025, 0.975])))
    assert result["share_before"]["ci"][1] - result["share_before"]["ci"][0] > 0.1


def test_a_ranking_against_itself_differs_by_exactly_nothing():
    f, score = one_melanoma_at(np.random.default_rng(6).integers(1, 11, 25), n=10)
    table = whole_patient.patient_table(f, score)
    diff = whole_patient.paired_difference(table, table, n_boot=200)
    assert diff == {"value": 0.0, "ci": [0.0, 0.0]}


def test_the_difference_interval_resamples_the_same_patients_for_both_rankings():
    # Patients differ widely in how hard their melanoma is to find (rank 1 to 10 of 11), but ranking a finds
    # it exactly one place earlier than b in every one of them: share_before differs by 0.1 in each patient.
    ranks = np.random.default_rng(7).integers(1, 11, 30)
    f, score_a = one_melanoma_at(ranks, n=11)
    _, score_b = one_melanoma_at(ranks + 1, n=11)
    table_a, table_b = whole_patient.patient_table(f, score_a), whole_patient.patient_table(f, score_b)
    diff = whole_patient.paired_difference(table_a, table_b, n_boot=200)
    assert diff["value"] == pytest.approx(-0.1)
    assert diff["ci"] == pytest.approx([-0.1, -0.1], abs=1e-9)  # resampled apart, the interval would be wide


def test_the_difference_interval_is_a_95_percent_percentile_interval():
    rng = np.random.default_rng(8)
    ranks_a, ranks_b = rng.integers(1, 11, 30), rng.integers(1, 11, 30)
    f, score_a = one_melanoma_at(ranks_a, n=11)
    _, score_b = one_melanoma_at(ranks_b, n=11)
    table_a, table_b = whole_patient.patient_table(f, score_a), whole_patient.patient_table(f, score_b)
    diff = whole_patient.paired_difference(table_a, table_b, n_boot=300, seed=9)
    pick = np.random.default_rng(9)  # by hand: one draw of patients for both rankings, 2.5% and 97.5% quantiles
    draws = []
    for _ in range(300):
        drawn = pick.integers(0, 30, 30)
        draws.append(((ranks_a[drawn] - 1) / 10).mean() - ((ranks_b[drawn] - 1) / 10).mean())
    assert diff["value"] == pytest.approx(((ranks_a - ranks_b) / 10).mean())
    assert diff["ci"] == pytest.approx(list(np.quantile(draws, [0.025, 0.975])))


def test_a_folds_calibrated_scores_do_not_depend_on_its_own_labels():
    rng = np.random.default_rng(10)
    n = 1000
    logit = rng.normal(0, 2, n)
    f = pd.DataFrame(
        {
            "dataset": np.where(np.arange(n) % 2, "a", "b"),
            "target": (rng.random(n) < 1 / (1 + np.exp(-(logit - 1)))).astype(int),
        }
    )
    views = np.stack([logit, logit + rng.normal(0, 0.3, n)], axis=1)
    folds = np.arange(n) % 5
    before = calibration.cross_fitted(f, views, folds)
    flipped = f.assign(target=np.where(folds == 2, 1 - f["target"], f["target"]))
    after = calibration.cross_fitted(flipped, views, folds)
    np.testing.assert_allclose(after[folds == 2], before[folds == 2])
    assert not np.allclose(after[folds != 2], before[folds != 2])  # fold 2's labels do calibrate the others


def test_reliability_ece_weights_each_bin_by_its_share_of_the_weight():
    # quantile bins put the four lesions at 10% in one bin and the two above in the other (4 vs 2 lesions)
    p = np.array([0.1, 0.1, 0.1, 0.1, 0.5, 0.9])
    y = np.array([1, 0, 0, 0, 0, 1])
    even = calibration.weighted_reliability(p, y, np.ones(6), bins=3)
    assert even["weight"] == pytest.approx([4 / 6, 2 / 6])
    assert even["ece"] == pytest.approx(4 / 6 * 0.15 + 2 / 6 * 0.2)  # 0.167, not the bins' mean 0.175
    # the melanoma at 10% weighs twice: its bin reads 2 of 5, and holds 5 of the 7 units of weight
    double = calibration.weighted_reliability(p, y, np.array([2.0, 1, 1, 1, 1, 1]), bins=3)
    assert double["ece"] == pytest.approx(5 / 7 * 0.3 + 2 / 7 * 0.2)
