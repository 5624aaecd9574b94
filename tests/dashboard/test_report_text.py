"""What the visit report says about each lesion, as plain text (no PDF, no poppler needed)."""

from __future__ import annotations

import datetime as dt

from dashboard.report_text import decision_lines, latin1_text, ranked, score_line, ugly_duckling_line
from dashboard.store.records import DecisionView, ImageView, PredictionView, VisitLesion

NOW = dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.UTC)


def prediction(p: float, rank: int, **extra) -> PredictionView:
    return PredictionView(1, "m", "c", p, extra.pop("ugly_duckling", None), p, rank, NOW, **extra)


def lesion(number: int, *predictions: PredictionView, decisions: tuple[DecisionView, ...] = ()) -> VisitLesion:
    image = ImageView(number, "a" * 64, "x", "/x", "jpeg", 1, 1, 1, f"{number}.jpg")
    return VisitLesion(number, "torso", f"L{number}", image, predictions, decisions, lesion_number=number)


def decision(action: str, **extra) -> DecisionView:
    return DecisionView(1, 1, "L", "torso", 1, NOW, "dr.lee", action, extra.pop("comment", ""), NOW, **extra)


def test_a_score_carries_its_stored_spread_and_views_or_says_none_was_recorded():
    assert score_line(lesion(1, prediction(0.86, 1, p_spread=0.012, tta_views=8))) == (
        "P(melanoma) 86% (84%–88% across 8 orientations)"
    )
    assert "no uncertainty recorded" in score_line(lesion(1, prediction(0.86, 1)))
    assert score_line(lesion(1)) == "Not scored at this visit."


def test_the_ugly_duckling_line_tells_flagged_typical_uncomputed_and_unrecorded_apart():
    assert ugly_duckling_line(lesion(1, prediction(0.5, 1, ugly_duckling=2.7, outlier=True))).startswith(
        "Ugly duckling: flagged (z 2.7)"
    )
    assert ugly_duckling_line(lesion(1, prediction(0.5, 1, ugly_duckling=0.3, outlier=False))) == (
        "Ugly duckling: not flagged (z 0.3)."
    )
    assert "not computed" in ugly_duckling_line(lesion(1, prediction(0.5, 1)))
    assert "flag not recorded" in ugly_duckling_line(lesion(1, prediction(0.5, 1, ugly_duckling=0.3)))
    # the image-source caveat stored with the score follows, as the review showed it
    caveat = "Image source differs from this patient's other images: camera X."
    flagged = prediction(0.5, 1, ugly_duckling=2.7, outlier=True, source_caveat=caveat)
    assert ugly_duckling_line(lesion(1, flagged)).endswith("other lesions. " + caveat)


def test_decisions_list_the_original_then_each_amendment_with_its_reason():
    lines = decision_lines(
        (
            decision("biopsy", comment="dark network", superseded=True),
            decision("excise", comment="wide margins", amends_id=1, amend_reason="surgeon's call"),
        )
    )
    assert lines[0].startswith("Decision: Biopsy - dr.lee, 2026-05-04")
    assert lines[1] == "Comment: dark network"
    assert lines[2].startswith("Amended: Excise - dr.lee") and lines[2].endswith("(reason: surgeon's call)")
    assert lines[3] == "Comment: wide margins"
    assert decision_lines(()) == ["Decision: none recorded."]
    assert decision_lines((decision("monitor", review_in_months=6),))[0].startswith(
        "Decision: Monitor, repeat imaging in 6 months - dr.lee"
    )


def test_lesions_keep_the_visit_s_ranking_with_unscored_ones_last():
    order = ranked([lesion(1), lesion(2, prediction(0.1, 2)), lesion(3, prediction(0.9, 1)), lesion(4)])
    assert [les.lesion_number for les in order] == [3, 2, 1, 4]


def test_core_font_text_spells_symbols_out_keeps_latin1_letters_and_codes_the_rest():
    # ő is not "o" and ł is not "?": a name prints as its codes rather than as another name
    assert latin1_text("≥ 6 mm – “réseau” … ½ ő ł 😀") == '>= 6 mm - "réseau" ... ½ [U+0151] [U+0142] [U+1F600]'
