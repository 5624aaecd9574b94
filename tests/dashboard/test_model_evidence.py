"""The Model page's evidence tables and figure, from a validation.json like the assembler writes."""

from __future__ import annotations

from dashboard.model_evidence import (
    deployed_ranking,
    is_calibrated,
    melanoma_mix_text,
    mole_check_sentence,
    new_source_note,
    rephotograph_note,
    run_to_run_note,
    source_audit_table,
    spread_note,
    whole_patient_figure,
    whole_patient_table,
)

VALIDATION = {
    "per_dataset": {
        "ham10000": {
            "n": 100,
            "n_melanoma": 10,
            "auc": 0.9,
            "auc_ci": [0.85, 0.95],
            "benign_above_threshold": 0.12,
            "benign_median_p": 0.01,
            "melanoma_median_p": 0.2,
            "sensitivity": 0.7,
        }
    },
    "external": {
        "derm7pt": {
            "n": 50,
            "n_melanoma": 12,
            "auc": 0.8,
            "auc_ci": [0.7, 0.9],
            "benign_above_threshold": 0.3,
            "benign_median_p": 0.02,
            "melanoma_median_p": 0.1,
        }
    },
    "whole_patient": {
        "n_patients": 80,
        "n_melanoma_patients": 17,
        "random_order_share": 0.43,
        "rankings": {
            "network P(melanoma)": {"share_before": {"value": 0.2, "ci": [0.1, 0.3]}, "top5": {"value": 0.7, "ci": []}},
            "second stage (cross-fitted)": {"share_before": {"value": 0.15, "ci": [0.08, 0.25]}},
        },
    },
}


def test_whole_patient_table_reads_values_with_intervals():
    table = whole_patient_table(VALIDATION)
    assert table["ranking"].tolist() == ["network P(melanoma)", "second stage (cross-fitted)"]
    column = "share of other lesions reviewed before the first melanoma"
    assert table.loc[0, column] == "0.20 (0.10–0.30)"
    assert table.loc[0, "melanoma in the top 5"] == "0.70"
    assert table.loc[1, "melanoma in the top 5"] == "–"


def test_whole_patient_figure_marks_the_deployed_ranking_and_random_order():
    fig = whole_patient_figure(VALIDATION, "second stage (cross-fitted)")
    bar = fig.data[0]
    assert list(bar.y) == ["network P(melanoma)", "second stage (cross-fitted)"]
    assert list(bar.x) == [0.2, 0.15]
    assert bar.marker.color[1] != bar.marker.color[0]
    assert [round(v, 6) for v in bar.error_x.array] == [0.1, 0.1]
    assert any(shape.x0 == 0.43 for shape in fig.layout.shapes)


def test_missing_sections_give_nothing_not_errors():
    assert whole_patient_figure({}, None) is None
    assert whole_patient_table(None).empty
    assert source_audit_table({"per_dataset": {"x": {"auc": 0.8}}}).empty


def test_source_audit_lists_training_sources_then_the_external_set():
    table = source_audit_table(VALIDATION)
    assert table["source"].tolist() == ["ham10000", "derm7pt (external, never trained on)"]
    assert table.loc[0, "benign above threshold"] == "12%"
    assert table.loc[0, "melanomas above threshold"] == "70% (7 of 10)"
    assert table.loc[1, "melanomas above threshold"] == "–"  # not recorded: not invented
    assert table.loc[1, "ROC AUC (95% CI)"] == "0.800 (0.700–0.900)"


def test_calibration_and_ranking_are_read_from_the_config():
    assert not is_calibrated({"network": {}})
    assert is_calibrated({"network": {"logit_scale": 0.8, "logit_bias": -2.0}})
    assert deployed_ranking({"triage": {"method": "patient_context"}}) == "second stage (cross-fitted)"
    assert deployed_ranking({}) == "network P(melanoma)"


def test_the_run_to_run_note_gives_a_rerun_s_figures_and_their_change():
    rerun = {"ranking": {"share_before": {"a": 0.262, "diff": 0.018}, "top5": {"a": 0.529, "diff": -0.118}}}
    note = run_to_run_note({**VALIDATION, "rerun": {"rerun_seed43": rerun}})
    assert note.startswith("Run to run: the same training recipe with another seed gave share reviewed 0.26 (+0.02), ")
    assert "top-5 0.53 (-0.12)" in note
    assert run_to_run_note(VALIDATION) is None and run_to_run_note({"rerun": {"x": {"ranking": {}}}}) is None


def test_the_spread_note_quotes_the_checkpoints_own_check_and_says_so_when_there_is_none():
    informative = {"score_stability": {"uncertainty": {"tta_spread_error_auc_equal_score": 0.71}}}
    useless = {
        "score_stability": {
            "uncertainty": {"tta_spread_error_auc_equal_score": 0.49, "closeness_to_threshold_error_auc": 0.74}
        }
    }
    assert "a wider spread marked the scores on the wrong side of the threshold (error AUC 0.71" in spread_note(
        informative
    )
    assert "closeness to the threshold" not in spread_note(informative)  # not measured: not claimed
    text = spread_note(useless)
    assert "did not mark" in text and "(error AUC 0.49; chance 0.50)" in text and "did better (0.74)" in text
    for missing in (None, {}, {"score_stability": {}}):
        assert "was not measured for this model" in spread_note(missing)


def test_the_rephotograph_note_reads_the_share_at_the_deployed_odds_margin_only():
    validation = {
        "score_stability": {
            "rephotograph": {"benign": {"ordered_pairs": 5160, "flagged_share": {"2.0": 0.205, "6.0": 0.023}}}
        }
    }
    text = rephotograph_note(validation, "odds_ratio", 6.0)
    assert "more than ×6 since" in text and "5,160 ordered pairs" in text and "in 2.3% of pairs" in text
    assert "in 20.5% of pairs" in rephotograph_note(validation, "odds_ratio", 2)
    assert rephotograph_note(validation, "odds_ratio", 5.0) is None  # a margin the check did not measure
    assert rephotograph_note(validation, "points", 6.0) is None  # a points margin is not an odds ratio
    assert rephotograph_note(None, "odds_ratio", 6.0) is None


def test_the_new_source_ranking_is_shown_when_the_checkpoint_has_it():
    assert new_source_note(VALIDATION) is None  # no such run: nothing claimed
    loso = {
        "ham10000": {"auc": 0.75},  # no whole-patient figures: skipped
        "isic2020_patients": {
            "held_out": ["isic2020", "isic2020_patients"],
            "whole_patient": {
                "share_before": {"value": 0.39, "ci": [0.21, 0.59]},
                "top5": {"value": 0.65, "ci": [0.41, 0.88]},
                "random_order_share": 0.43,
            },
        },
    }
    note = new_source_note({**VALIDATION, "leave_one_source_out": loso})
    assert "isic2020, isic2020_patients left out" in note
    assert "share of 0.39 (0.21–0.59)" in note and "random order 0.43" in note and "top-5 0.65" in note


def test_the_scores_caption_says_what_the_threshold_and_ranking_did_on_complete_patients():
    assert mole_check_sentence(VALIDATION) is None  # no complete patients in the evidence: nothing claimed
    validation = {
        **VALIDATION,
        "per_dataset": {"isic2020_patients": {"n_melanoma": 25, "sensitivity": 0.52}},
        "whole_patient": {"rankings": {"network P(melanoma)": {"top5": {"value": 0.76}}}},
    }
    sentence = mole_check_sentence(validation, {})
    assert "flagged 52% of melanomas (13 of 25)" in sentence
    assert "top 5 for 76% of patients who had one." in sentence
    unseen = {"isic2020_patients": {"whole_patient": {"share_before": {"value": 0.39}, "top5": {"value": 0.65}}}}
    with_unseen = mole_check_sentence({**validation, "leave_one_source_out": unseen}, {})
    assert with_unseen.endswith("top 5 for 76% of patients who had one (65% when trained without their source).")
    # The share reviewed, beside a random order's: how much the ranking helps, and how little on an unseen source.
    ranked = {
        **validation,
        "whole_patient": {
            "rankings": {"network P(melanoma)": {"top5": {"value": 0.76}, "share_before": {"value": 0.16}}},
            "random_order_share": 0.43,
        },
    }
    unseen["isic2020_patients"]["whole_patient"]["random_order_share"] = 0.43
    full = mole_check_sentence({**ranked, "leave_one_source_out": unseen}, {})
    assert full.endswith(
        "; following it, a clinician looked at 16% of a patient's moles before the first melanoma, against 43% in "
        "a random order (39% against 43% when trained without their source)."
    )


def test_the_threshold_at_complete_patients_and_the_calibration_shown():
    from dashboard.model_evidence import calibration_caption, mole_check_point, screening_calibration
    from dashboard.operating_point import SCREENING_PREVALENCE, OperatingPoint

    pooled = OperatingPoint(0.016, 0.80, 0.71, SCREENING_PREVALENCE)
    assert mole_check_point(VALIDATION, pooled) is None  # no complete patients in this evidence
    complete = {"n_melanoma": 25, "sensitivity": 0.52, "specificity": 0.86}
    point, n = mole_check_point({"per_dataset": {"isic2020_patients": complete}}, pooled)
    assert (point.threshold, point.sensitivity, point.specificity, n) == (0.016, 0.52, 0.86, 25)
    per = point.per_1000()
    assert round(per["found"], 1) == round(1000 * SCREENING_PREVALENCE * 0.52, 1)
    assert round(per["false_alarms"]) == round((1000 - 1000 * SCREENING_PREVALENCE) * 0.14)
    assert screening_calibration(VALIDATION) is None
    assert "sits below the diagonal" in calibration_caption(None)
    curve = {"mean_predicted": [0.01], "fraction_positive": [0.012], "weight": [1.0], "ece": 0.00107}
    validation = {"calibration_at_screening_prevalence": {"cross_fitted": curve}}
    assert screening_calibration(validation) is curve
    assert calibration_caption(curve).endswith("(calibration error 0.0011).")


def test_melanoma_mix_names_the_source_holding_most_melanomas():
    per = {"ham10000": {"n_melanoma": 1113}, "isic2017": {"n_melanoma": 404}, "isic2020": {"n_melanoma": 383}}
    assert melanoma_mix_text({"per_dataset": per}) == "; 59% of its melanomas are ham10000's"
    assert melanoma_mix_text({"per_dataset": {}}) == "" and melanoma_mix_text(None) == ""
