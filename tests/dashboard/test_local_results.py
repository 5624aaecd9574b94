"""The Model page's "In this clinic" figures: how the loaded model did on the clinic's own histology results."""

from __future__ import annotations

import math
from datetime import date

import pytest

from dashboard import local_results
from dashboard.local_results import MelanomaVisit, Proportion
from dashboard.store.records import OutcomeRow

MODEL, CHECKSUM, THRESHOLD = "melanoma-lite0", "abc123", 0.2


def row(lesion_id: int, visit_id: int, histology: str, p: float, rank: int, ranked: int, **changes) -> OutcomeRow:
    fields = {
        "patient_id": visit_id,
        "lesion_id": lesion_id,
        "lesion_number": lesion_id,
        "site": "torso",
        "body_region": None,
        "visit_id": visit_id,
        "visit_number": 1,
        "image_date": date(2026, 5, 1),
        "age_at_visit": 60,
        "sex": "female",
        "image_sha256": f"{lesion_id:064x}",
        "model_id": MODEL,
        "model_checksum": CHECKSUM,
        "p_melanoma": p,
        "p_spread": 0.01,
        "tta_views": 2,
        "ugly_duckling": None,
        "outlier": None,
        "rank": rank,
        "histology": histology,
        "reported_on": date(2026, 5, 20),
        "latest_image": True,
        "ranked_in_visit": ranked,
    }
    fields.update(changes)
    return OutcomeRow(**fields)


def this_model(model_id: str, checksum: str) -> bool:
    return (model_id, checksum) == (MODEL, CHECKSUM)


def test_a_clinics_results_are_counted_per_lesion_and_per_visit():
    rows = [
        # visit 1: 10 lesions ranked, the melanoma 3rd and flagged; an excised benign lesion 1st, flagged
        row(1, 1, "melanoma", 0.35, rank=3, ranked=10),
        row(2, 1, "benign", 0.50, rank=1, ranked=10),
        # visit 2: 20 ranked, the melanoma 8th and below the threshold
        row(3, 2, "melanoma", 0.10, rank=8, ranked=20),
        row(4, 2, "other_malignant", 0.05, rank=12, ranked=20),
        # the threshold itself flags (P(melanoma) >= threshold, as the review page says)
        row(5, 3, "benign", THRESHOLD, rank=2, ranked=4),
    ]
    results = local_results.local_results(rows, this_model, THRESHOLD)
    assert (results.lesions, results.melanomas, results.other_models) == (5, 2, 0)
    assert results.melanomas_flagged == Proportion(1, 2)
    assert results.others_flagged == Proportion(2, 3)  # benign 0.50 and the one at the threshold; not 0.05
    assert results.visits == (MelanomaVisit(3, 10, 1), MelanomaVisit(8, 20, 1))
    assert results.share_before == pytest.approx((2 / 9 + 7 / 19) / 2)
    assert results.top_k == Proportion(1, 2)
    # a random order: half the other lesions before a lone melanoma; top 5 finds it with chance 5/n
    assert results.random_share_before == pytest.approx(0.5)
    assert results.random_top_k == pytest.approx((5 / 10 + 5 / 20) / 2)
    # AUC among excised: melanomas 0.35, 0.10 against 0.50, 0.05, 0.20 -> pairs won: 2 + 1 of 6
    assert results.auc == pytest.approx(3 / 6)
    assert not results.enough
    assert "too few to judge" in local_results.summary_sentence(results)


def test_only_the_loaded_models_last_image_with_a_result_counts():
    rows = [
        row(1, 1, "melanoma", 0.9, rank=1, ranked=5),
        # the same lesion six months earlier: not the visit that led to the excision
        row(1, 0, "melanoma", 0.01, rank=5, ranked=5, latest_image=False),
        # scored by another model version (its own threshold): counted apart, never mixed in
        row(2, 2, "melanoma", 0.01, rank=9, ranked=9, model_checksum="older"),
        row(3, 2, "benign", 0.01, rank=3, ranked=9, model_id="melanoma-v1"),
        # no specimen: no label
        row(4, 1, "not_done", 0.8, rank=2, ranked=5),
    ]
    results = local_results.local_results(rows, this_model, THRESHOLD)
    assert (results.lesions, results.melanomas, results.other_models) == (1, 1, 2)
    assert results.melanomas_flagged == Proportion(1, 1)
    assert results.others_flagged == Proportion(0, 0)
    assert results.visits == (MelanomaVisit(1, 5, 1),)
    assert math.isnan(results.auc)  # one kind only
    assert "2 results of lesions scored by another model version are left out" in local_results.summary_sentence(
        results
    )


def test_a_visit_with_two_melanomas_is_found_at_the_first():
    rows = [row(1, 1, "melanoma", 0.3, rank=4, ranked=6), row(2, 1, "melanoma", 0.6, rank=2, ranked=6)]
    results = local_results.local_results(rows, this_model, THRESHOLD)
    assert results.visits == (MelanomaVisit(first_rank=2, ranked=6, melanomas=2),)
    assert results.visits[0].share_before == pytest.approx(1 / 5)
    assert results.random_share_before == pytest.approx(((6 + 1) / (2 + 1) - 1) / 5)


def test_without_a_threshold_nothing_is_called_flagged():
    results = local_results.local_results([row(1, 1, "melanoma", 0.9, rank=1, ranked=3)], this_model, None)
    assert results.melanomas_flagged is None and results.others_flagged is None
    table = local_results.comparison_table(results, None, None)
    assert table.loc[0, local_results.CLINIC] == "no threshold"


def test_enough_melanomas_are_judged_and_compared_with_the_card():
    rows = [row(i, i, "melanoma", 0.5 if i < 8 else 0.1, rank=1 + i % 7, ranked=30) for i in range(12)]
    results = local_results.local_results(rows, this_model, THRESHOLD)
    assert results.enough and "too few" not in local_results.summary_sentence(results)
    validation = {
        "per_dataset": {"isic2020_patients": {"sensitivity": 0.52, "n_melanoma": 25, "auc": 0.796}},
        "whole_patient": {
            "rankings": {
                "network P(melanoma)": {
                    "top5": {"value": 0.765, "ci": [0.53, 0.94]},
                    "share_before": {"value": 0.160, "ci": [0.08, 0.25]},
                }
            }
        },
        "leave_one_source_out": {
            "isic2020_patients": {
                "whole_patient": {"share_before": {"value": 0.39, "ci": [0.21, 0.59]}, "top5": {"value": 0.65}}
            }
        },
    }
    table = local_results.comparison_table(results, validation, {}).set_index("measure")
    clinic, random, complete, unseen = (
        local_results.CLINIC,
        local_results.RANDOM,
        local_results.COMPLETE,
        local_results.UNSEEN,
    )
    flagged = table.loc["melanomas flagged at the threshold"]
    assert flagged[clinic] == "67% (8 of 12; 39–86%)"
    assert flagged[complete] == "52% (13 of 25; 33–70%)"  # the card's figure with its count and interval too
    top5 = table.loc["melanoma in the visit's top 5"]
    # ranks 1..7 then 1..5: ten in the top 5, against 5 of 30 for a random order
    assert (top5[clinic], top5[random]) == ("83% (10 of 12; 55–95%)", "17%")
    assert top5[complete] == "76% (53%–94%)"
    assert top5[unseen] == "65%"
    share = table.loc["share of the visit's other lesions listed before the melanoma"]
    assert share[complete] == "0.16 (0.08–0.25)"
    assert share[unseen] == "0.39 (0.21–0.59)"
    # twelve melanomas and no excised non-melanoma: no AUC, rather than one from a handful of pairs
    assert table.loc["AUC, excised lesions (melanoma against not)", clinic] == "–"


def test_proportion_text_and_interval():
    assert Proportion(0, 0).text() == "–"
    assert Proportion(13, 25).text() == "52% (13 of 25; 33–70%)"  # Wilson: 0.3350–0.6997
    low, high = Proportion(0, 5).interval
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.4345, abs=1e-3)


def test_a_visit_whose_lesion_count_was_not_recorded_is_out_of_at_least_the_melanomas_rank():
    # ranked_in_visit 0: the store did not know how many lesions that visit ranked
    results = local_results.local_results([row(1, 1, "melanoma", 0.3, rank=4, ranked=0)], this_model, THRESHOLD)
    assert results.visits == (MelanomaVisit(first_rank=4, ranked=4, melanomas=1),)
    assert results.share_before == pytest.approx(1.0)  # listed after all 3 others


def test_exactly_enough_melanomas_are_judged():
    def melanomas(n: int) -> list[OutcomeRow]:
        return [row(i, i, "melanoma", 0.5, rank=1, ranked=3) for i in range(n)]

    assert local_results.local_results(melanomas(local_results.ENOUGH_MELANOMAS), this_model, THRESHOLD).enough
    assert not local_results.local_results(melanomas(local_results.ENOUGH_MELANOMAS - 1), this_model, THRESHOLD).enough


@pytest.mark.parametrize("n_mel,n_other,shown", [(5, 5, True), (8, 4, False), (4, 8, False)])
def test_the_auc_is_shown_only_with_enough_of_each_kind(n_mel, n_other, shown):
    rows = [row(i, i, "melanoma", 0.5 + i / 100, rank=1, ranked=3) for i in range(n_mel)]
    rows += [row(100 + i, 100 + i, "benign", 0.1 + i / 100, rank=2, ranked=3) for i in range(n_other)]
    results = local_results.local_results(rows, this_model, THRESHOLD)
    assert results.auc == pytest.approx(1.0)
    table = local_results.comparison_table(results, None, None).set_index("measure")
    assert (table.loc["AUC, excised lesions (melanoma against not)", local_results.CLINIC] == "1.00") == shown
