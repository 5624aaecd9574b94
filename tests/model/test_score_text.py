"""One interval format for the model card (training/card_lines.py) and the dashboard's evidence pages
(dashboard/model_evidence.py, local_results.py, lesion_likeness.py): model.score_text.ci_text. The expected
strings are what each caller's own copy gave before they shared one function."""

from __future__ import annotations

import pytest

from dashboard.lesion_likeness import evidence_text
from dashboard.model_evidence import whole_patient_table
from model.score_text import ci_text
from training.card_lines import lesion_matching_lines, whole_patient_section

NAN = float("nan")
ENTRIES = {
    "none": None,
    "empty": {},
    "value None": {"value": None, "ci": [0.1, 0.2]},
    "nan value": {"value": NAN, "ci": [0.1, 0.2]},
    "no ci": {"value": 0.8},
    "ci None": {"value": 0.8, "ci": None},
    "one bound": {"value": 0.8, "ci": [0.7]},
    "nan bound": {"value": 0.8, "ci": [NAN, 0.88]},
    "None bound": {"value": 0.8, "ci": [None, 0.88]},
    "normal": {"value": 0.8, "ci": [0.7, 0.88]},
    "difference": {"value": -0.0312, "ci": [-0.0615, 0.0042]},
}
# entry -> (card, 3 digits; card, 2 digits; dashboard ".2f"; dashboard ".0%")
EXPECTED = {
    "none": ("–", "–", "–", "–"),
    "empty": ("–", "–", "–", "–"),
    "value None": ("–", "–", "–", "–"),
    "nan value": ("–", "–", "–", "–"),
    "no ci": ("0.800", "0.80", "0.80", "80%"),
    "ci None": ("0.800", "0.80", "0.80", "80%"),
    "one bound": ("0.800", "0.80", "0.80", "80%"),
    "nan bound": ("0.800", "0.80", "0.80", "80%"),
    "None bound": ("0.800", "0.80", "0.80", "80%"),
    "normal": ("0.800 (0.700–0.880)", "0.80 (0.70–0.88)", "0.80 (0.70–0.88)", "80% (70%–88%)"),
    "difference": ("-0.031 (-0.061–0.004)", "-0.03 (-0.06–0.00)", "-0.03 (-0.06–0.00)", "-3% (-6%–0%)"),
}
SPECS = (".3f", ".2f", ".2f", ".0%")  # as the callers ask: the card's 3 and 2 digits, the dashboard's specs


@pytest.mark.parametrize("name", list(ENTRIES))
def test_one_interval_format_gives_what_each_caller_gave(name):
    assert tuple(ci_text(ENTRIES[name], spec) for spec in SPECS) == EXPECTED[name]


def test_the_default_is_two_decimals_and_a_bare_number_reads_without_an_interval():
    assert ci_text(ENTRIES["normal"]) == "0.80 (0.70–0.88)"
    assert ci_text(0.5) == "0.50" and ci_text("n/a") == "–"


WHOLE_PATIENT = {
    "n_patients": 10,
    "n_melanoma_patients": 3,
    "n_melanomas": 4,
    "random_order_share": 0.5,
    "rankings": {
        "network P(melanoma)": {
            "share_before": {"value": 0.16, "ci": [0.08, 0.25]},
            "top1": {"value": 0.5, "ci": [0.3, 0.7]},
            "top5": {"value": 0.9},
            "within_auc": None,
            "top15_retrieval": {"value": NAN, "ci": [NAN, NAN]},
        }
    },
    "second_minus_network": {
        "share_before": {"value": -0.02, "ci": [-0.05, 0.01]},
        "top5": {"value": 0.0, "ci": [NAN, 0.1]},
    },
}


def test_the_model_cards_whole_patient_lines_are_unchanged():
    lines = whole_patient_section(WHOLE_PATIENT)
    assert "| network P(melanoma) | 0.160 (0.080–0.250) | 0.50 (0.30–0.70) | 0.90 | – | – |" in lines
    assert (
        "Second stage minus the network alone, paired over the same patients: share reviewed -0.020 (-0.050–0.010), "
        "top-5 0.00, within-patient AUC –. Deployed:" in "\n".join(lines)
    )


def test_the_dashboards_whole_patient_table_is_unchanged():
    row = whole_patient_table({"whole_patient": WHOLE_PATIENT}).to_dict("records")[0]
    assert row == {
        "ranking": "network P(melanoma)",
        "share of other lesions reviewed before the first melanoma": "0.16 (0.08–0.25)",
        "melanoma ranked first": "0.50 (0.30–0.70)",
        "melanoma in the top 5": "0.90",
        "within-patient AUC": "–",
        "melanomas in the top 15": "–",
    }


MATCH = {
    "data": "HAM10000",
    "lesions": 480,
    "candidates": 40,
    "first": {"value": 0.6, "ci": [0.55, 0.65]},
    "top3": {"value": 0.75},
    "random_first": 0.025,
    "random_top3": 0.075,
    "copies_left_out": 2,
}


def test_both_lesion_matching_texts_are_unchanged():
    card = " ".join(lesion_matching_lines(MATCH))
    assert "came first in 0.60 (0.55–0.65) (random order 0.03) and among the first three in 0.75 (random" in card
    page = evidence_text({"lesion_matching": MATCH})
    assert "first in 60% (55%–65%) and among the first three in 75% (a random" in page
