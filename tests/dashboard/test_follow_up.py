"""Known lesions by visit from a timeline, the picker's site filter and the "score rose" flag."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dashboard.follow_up import ALL_SITES, default_site_filter, filter_by_site, lesion_histories, site_filter_options
from dashboard.score_rise import RiseMargin, lesion_rise, rises_by_visit, score_rise
from dashboard.store.records import (
    ImageView,
    PatientRecord,
    PatientTimeline,
    PredictionView,
    VisitLesion,
    VisitView,
)
from data.settings import SCORE_RISE, ScoreRiseMargin

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


def _lesion(lesion_id, number, site, label, image_id, p, spread=0.01, model="m-1", rank=1) -> VisitLesion:
    image = ImageView(
        id=image_id,
        sha256=f"{image_id:064x}",
        relpath=f"x/{image_id}.png",
        path=Path(f"/nowhere/{image_id}.png"),
        image_format="PNG",
        width=600,
        height=450,
        byte_size=1000,
        original_filename=f"img{image_id}.png",
    )
    prediction = PredictionView(
        id=image_id,
        model_id=model,
        model_checksum="c",
        p_melanoma=p,
        ugly_duckling=0.5,
        triage_score=p,
        rank=rank,
        created_at=T0,
        p_spread=spread,
        tta_views=2,
        outlier=False,
    )
    return VisitLesion(
        lesion_id=lesion_id,
        site=site,
        label=label,
        image=image,
        predictions=(prediction,),
        decisions=(),
        lesion_number=number,
    )


def _visit(visit_id, number, month, lesions) -> VisitView:
    return VisitView(
        id=visit_id,
        patient_id=1,
        visit_time=T0.replace(month=month),
        clinician="dr",
        model_version="m-1",
        notes="",
        created_at=T0,
        lesions=tuple(lesions),
        number=number,
    )


@pytest.fixture
def timeline() -> PatientTimeline:
    patient = PatientRecord(id=1, identifier="P-1", birth_year=1970, sex="female", created_at=T0)
    first = _visit(
        40,
        1,
        1,
        [_lesion(7, 1, "torso", "left scapula", 100, 0.010), _lesion(9, 2, "lower extremity", "shin", 101, 0.02)],
    )
    second = _visit(
        52,
        2,
        7,
        [
            _lesion(7, 1, "torso", "left scapula", 110, 0.080),  # odds ×8.6: flagged
            _lesion(9, 2, "lower extremity", "shin", 111, 0.025),  # ×1.26: not flagged
            _lesion(12, 3, "torso", "navel", 112, 0.30),  # new at this visit: nothing to compare with
        ],
    )
    return PatientTimeline(patient=patient, visits=(first, second))


def test_each_known_lesion_has_its_visits_oldest_first_and_its_latest_image(timeline):
    lesions = lesion_histories(timeline)
    assert [les.number for les in lesions] == [1, 2, 3]
    scapula = lesions[0]
    assert [v.visit_number for v in scapula.visits] == [1, 2]
    assert scapula.latest.image.id == 110 and scapula.previous.image.id == 100
    assert scapula.latest.p_melanoma == pytest.approx(0.080) and scapula.latest.p_spread == pytest.approx(0.01)
    assert lesions[2].previous is None
    assert scapula.title() == "#1 left scapula" and scapula.where() == "torso"


def test_picker_filters_by_site_and_never_hides_the_current_link(timeline):
    lesions = lesion_histories(timeline)
    assert site_filter_options(lesions) == [ALL_SITES, "lower extremity", "torso"]
    assert [les.lesion_id for les in filter_by_site(lesions, "torso")] == [7, 12]
    assert [les.lesion_id for les in filter_by_site(lesions, ALL_SITES)] == [7, 9, 12]
    assert filter_by_site(lesions, "head/neck") == []
    # The image is linked to the shin lesion; filtering on torso still lists it.
    assert [les.lesion_id for les in filter_by_site(lesions, "torso", keep_lesion_id=9)] == [7, 9, 12]
    assert default_site_filter("torso", lesions) == "torso"
    assert default_site_filter("unknown", lesions) == ALL_SITES


def test_rise_flag_fires_above_the_margin_and_not_below(timeline):
    margin = RiseMargin.from_setting()
    assert (margin.kind, margin.value) == (SCORE_RISE.kind, SCORE_RISE.value) == ("odds_ratio", 6.0)
    scapula, shin, navel = lesion_histories(timeline)
    rise = lesion_rise(scapula, margin)
    assert rise is not None and rise.odds_ratio > 6 and rise.points == pytest.approx(7.0)
    assert lesion_rise(shin, margin) is None
    assert lesion_rise(navel, margin) is None  # one visit only
    assert set(rises_by_visit(scapula, margin)) == {52}
    # Just either side of the margin's rise in the odds.
    before = 0.10
    odds_after = margin.value * before / (1 - before)
    assert score_rise(before, odds_after / (1 + odds_after) + 1e-4, margin) is not None
    assert score_rise(before, odds_after / (1 + odds_after) - 1e-4, margin) is None
    assert score_rise(0.30, 0.10, margin) is None  # a fall is never a rise


def test_points_margin_is_the_configurable_alternative():
    margin = RiseMargin.from_setting(ScoreRiseMargin(kind="points", value=10))
    assert score_rise(0.20, 0.31, margin) is not None
    assert score_rise(0.20, 0.29, margin) is None
    assert score_rise(0.005, 0.09, margin) is None  # 18-fold, but under 10 points: why odds are the default
    assert score_rise(0.005, 0.09, RiseMargin()) is not None


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (ScoreRiseMargin(kind="percent", value=10), "unknown score-rise margin"),
        (ScoreRiseMargin(kind="points", value=-5), "positive number"),
        (ScoreRiseMargin(kind="odds_ratio", value=0.5), "above 1"),
        (ScoreRiseMargin(kind="points", value="ten"), "positive number"),
    ],
)
def test_a_bad_margin_setting_says_what_is_wrong(setting, message):
    with pytest.raises(ValueError, match=message):
        RiseMargin.from_setting(setting)


def test_a_rise_within_the_spread_or_across_models_is_called_possible_noise():
    margin = RiseMargin()
    clear = score_rise(0.02, 0.15, margin, before_spread=0.005, after_spread=0.01)
    assert clear is not None and clear.within_spread is False and not clear.may_be_noise
    noisy = score_rise(0.02, 0.15, margin, before_spread=0.05, after_spread=0.05)
    assert noisy is not None and noisy.within_spread and noisy.may_be_noise and "noise" in noisy.caveat()
    unknown = score_rise(0.02, 0.15, margin)
    assert unknown is not None and unknown.within_spread is None and "cannot be ruled out" in unknown.caveat()
    other_model = score_rise(0.02, 0.15, margin, before_spread=0.0, after_spread=0.0, same_model=False)
    assert other_model is not None and other_model.may_be_noise and "model" in other_model.caveat()


def test_a_rise_between_two_model_versions_in_a_history_says_the_rise_may_be_the_models():
    patient = PatientRecord(id=1, identifier="P-1", birth_year=1970, sex="female", created_at=T0)
    first = _visit(40, 1, 1, [_lesion(7, 1, "torso", "left scapula", 100, 0.010, spread=0.0, model="m-1")])
    second = _visit(52, 2, 7, [_lesion(7, 1, "torso", "left scapula", 110, 0.080, spread=0.0, model="m-2")])
    [scapula] = lesion_histories(PatientTimeline(patient=patient, visits=(first, second)))
    rise = lesion_rise(scapula, RiseMargin())
    assert rise is not None and rise.same_model is False and rise.within_spread is False
    assert rise.may_be_noise  # only because two models scored it
    assert "different model versions, so the rise may be the model's" in rise.caveat()
    assert rises_by_visit(scapula, RiseMargin())[52].same_model is False


def test_an_unscored_last_visit_does_not_hide_the_rise_between_the_last_two_scores():
    """The flag compares the last two visits *with a score*: a visit saved without one is skipped."""
    from dashboard.follow_up import LesionHistory, LesionVisit

    def visit(number: int, p: float | None) -> LesionVisit:
        return LesionVisit(10 + number, number, T0.replace(month=number), None, p, 0.001, None, "m-1")

    lesion = LesionHistory(3, 1, "back", "torso", (visit(1, 0.010), visit(2, 0.080), visit(3, None)))
    rise = lesion_rise(lesion, RiseMargin())
    assert rise is not None and (rise.before, rise.after) == (0.010, 0.080)
    assert set(rises_by_visit(lesion, RiseMargin())) == {12}
    # An unscored visit between two scores does not break the pair either.
    between = LesionHistory(3, 1, "back", "torso", (visit(1, 0.010), visit(2, None), visit(3, 0.080)))
    assert lesion_rise(between, RiseMargin()) is not None and set(rises_by_visit(between, RiseMargin())) == {13}


def test_the_rise_caveat_quotes_the_models_same_day_photograph_check():
    from dashboard.model_evidence import rephotograph_share

    validation = {"score_stability": {"rephotograph": {"benign": {"flagged_share": {"6.0": 0.029, "2.0": 0.2}}}}}
    assert rephotograph_share(validation, "odds_ratio", 6) == 0.029
    assert rephotograph_share(validation, "odds_ratio", 4) is None  # not measured at that margin
    assert rephotograph_share(validation, "points", 6) is None and rephotograph_share(None, "odds_ratio", 6) is None
    rise = score_rise(0.007, 0.072, RiseMargin("odds_ratio", 6.0), before_spread=0.001, after_spread=0.002)
    assert rise is not None
    margin = RiseMargin("odds_ratio", 6.0).describe()
    assert f"taken the same day differ by the flag's margin ({margin}) or more in 2.9% of pairs" in rise.caveat(0.029)
    assert "same day" not in rise.caveat() and "compare the images" in rise.caveat()


def test_the_review_in_progress_joins_the_lesion_as_an_unsaved_last_visit(timeline):
    from dashboard.follow_up import UNSAVED_VISIT_ID, with_unsaved_visit

    scapula = lesion_histories(timeline)[0]
    now = with_unsaved_visit(scapula, 0.5, 0.01, "m-1", T0.replace(month=12))
    assert len(now.visits) == 3 and now.latest.is_unsaved and now.latest.visit_id == UNSAVED_VISIT_ID
    assert now.latest.image is None and "not saved" in now.latest.name()
    assert lesion_rise(now, RiseMargin()).before == pytest.approx(0.080)  # against the last saved score
    assert len(scapula.visits) == 2  # the saved history is unchanged


def test_stored_image_is_read_upright_and_small_or_reported_unreadable(tmp_path):
    from PIL import Image

    from dashboard.follow_up import read_stored_image

    path = tmp_path / "a.png"
    Image.new("RGB", (800, 600), (120, 80, 60)).save(path)
    image = read_stored_image(path, 200)
    assert image is not None and max(image.size) == 200 and image.mode == "RGB"
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert read_stored_image(tmp_path / "broken.png", 200) is None
    assert read_stored_image(tmp_path / "missing.png", 200) is None


def test_images_taken_before_the_visit_are_dated_the_day_they_were_taken(timeline):
    import dataclasses
    import datetime as dt

    first, second = timeline.visits
    # The second visit's images were taken in December 2025, before the first visit (entered as such).
    earlier = dataclasses.replace(second, taken_on=dt.date(2025, 12, 20))
    lesions = lesion_histories(dataclasses.replace(timeline, visits=(first, earlier)))
    scapula = lesions[0]
    assert [v.visit_number for v in scapula.visits] == [2, 1]  # in the order the lesion looked like that
    assert scapula.visits[0].date == "2025-12-20"


def test_a_follow_up_card_names_the_last_saved_score_whichever_way_it_moved():
    from dashboard.follow_up import LesionHistory, LesionVisit, previous_score_line

    def visit(number: int, p: float | None, model: str = "m1") -> LesionVisit:
        when = datetime(2026, 1 + 5 * (number - 1), 10, 12, tzinfo=UTC)
        return LesionVisit(10 + number, number, when, None, p, 0.01, None, model)

    lesion = LesionHistory(3, 1, "back", "torso", (visit(1, 0.55), visit(2, None)))  # visit 2 not scored
    line = previous_score_line(lesion, 0.24, "m1")
    assert line == "Last saved score: 55% at visit 1 · 2026-01-10; now 24%."  # a fall is shown too
    assert "another model version" in previous_score_line(lesion, 0.24, "m2")
    assert previous_score_line(LesionHistory(4, 2, "arm", "torso", (visit(1, None),)), 0.1) is None


def test_a_follow_up_card_recalls_the_lesions_histology_and_last_decision():
    from datetime import date

    from dashboard.follow_up import earlier_findings
    from dashboard.store.records import HistologyView, LesionSummary

    def summary(histology: str | None, action: str | None) -> LesionSummary:
        result = None
        if histology is not None:
            result = HistologyView(1, 3, histology, date(2026, 6, 20), "dr.lee", datetime(2026, 6, 21, tzinfo=UTC))
        return LesionSummary(3, 1, "torso", "back", datetime(2026, 1, 1, tzinfo=UTC), 1, None, None, 0.5, action,
                             histology=result)  # fmt: skip

    text, malignant = earlier_findings(summary("melanoma", "excise"))
    assert text == "Recorded for this lesion: histology melanoma (reported 2026-06-20); last decision: Excise."
    assert malignant  # shown as a warning: photographed again after a melanoma result
    assert earlier_findings(summary("benign", None)) == ("Recorded for this lesion: histology benign (reported "
                                                         "2026-06-20).", False)  # fmt: skip
    assert earlier_findings(summary("not_done", None)) is None and earlier_findings(None) is None
    monitored = dataclasses.replace(summary(None, "monitor"), review_due=date(2026, 11, 29))
    assert earlier_findings(monitored) == (
        "Recorded for this lesion: last decision: Monitor, repeat imaging due 2026-11-29.",
        False,
    )


def test_a_follow_up_card_warns_after_any_malignant_histology_not_only_melanoma():
    from datetime import date

    from dashboard.follow_up import earlier_findings
    from dashboard.store.records import HistologyView, LesionSummary

    histology = HistologyView(1, 3, "other_malignant", date(2026, 6, 20), "dr.lee", datetime(2026, 6, 21, tzinfo=UTC))
    summary = LesionSummary(3, 1, "torso", "back", T0, 1, None, None, 0.5, "excise", histology=histology)
    text, malignant = earlier_findings(summary)
    assert malignant  # a lesion excised as another malignancy, photographed again: check the link
    assert text.startswith("Recorded for this lesion: histology ") and "(reported 2026-06-20)" in text
