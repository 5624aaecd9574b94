"""The Model page's evidence tables and figure, from a validation.json like the assembler writes."""

from __future__ import annotations

from dashboard.model_evidence import (
    deployed_ranking,
    is_calibrated,
    run_to_run_note,
    source_audit_table,
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
