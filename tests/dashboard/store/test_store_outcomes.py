"""After saving (issue 12): the date images were taken, overview photos, body regions, decision
amendments, histology, and the outcomes as labelled data; each change role-checked and audited."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest

from dashboard import local_results
from dashboard.accounts import Accounts
from dashboard.auth import AccessDenied
from dashboard.local_results import MelanomaVisit, Proportion
from dashboard.store import OverviewImage
from dashboard.user_store import UserStore

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)


def _two_visits(store, sample_images, make_lesion, make_review):
    """Visit 1: two lesions (one decided "monitor"); visit 2 follows the first with a new image."""
    v1 = store.save_review(
        make_review(
            [
                make_lesion(sample_images[0], lesion_label="back", p_melanoma=0.3, decision_action="monitor"),
                make_lesion(sample_images[1], lesion_label="arm", site="upper extremity", rank=2, p_melanoma=0.1),
            ],
            visit_time=T0,
        )
    )
    pid = store.load_visit(v1).patient_id
    back = next(les for les in store.list_lesions(pid) if les.label == "back")
    v2 = store.save_review(
        make_review(
            [
                make_lesion(
                    sample_images[2],
                    lesion_label="back",
                    existing_lesion_id=back.id,
                    p_melanoma=0.6,
                    p_spread=0.04,
                    tta_views=4,
                    outlier=True,
                    ugly_duckling=1.7,
                    decision_action="excise",
                )
            ],
            visit_time=T0 + timedelta(days=90),
        )
    )
    return pid, back.id, v1, v2


def test_taken_on_is_kept_and_orders_the_visits(store, sample_images, make_lesion, make_review):
    late = store.save_review(make_review([make_lesion(sample_images[0])], visit_time=T0))
    pid = store.load_visit(late).patient_id
    [lesion] = store.list_lesions(pid)
    # Entered afterwards: images taken a year before the first saved visit.
    early = store.save_review(
        make_review(
            [make_lesion(sample_images[1], existing_lesion_id=lesion.id, p_melanoma=0.2)],
            visit_time=T0 + timedelta(days=1),
            taken_on=date(2024, 3, 1),
        )
    )
    timeline = store.patient_timeline(pid)
    assert [v.id for v in timeline.visits] == [early, late]
    assert [(v.number, v.image_date) for v in timeline.visits] == [(1, date(2024, 3, 1)), (2, T0.date())]
    assert timeline.visits[0].taken_on == date(2024, 3, 1) and timeline.visits[1].taken_on is None
    trend = store.lesion_score_trend(lesion.id)
    assert [(p.visit_id, p.taken_on) for p in trend] == [(early, date(2024, 3, 1)), (late, None)]
    [event] = [e for e in store.audit_events(pid, action="review.save") if e.detail["visit_id"] == early]
    assert event.detail["taken_on"] == "2024-03-01"


@pytest.mark.parametrize(
    ("taken_on", "message"),
    [
        (date.today() + timedelta(days=3), "in the future"),
        (date(1960, 5, 1), "before the patient's birth year 1968"),
        (datetime(2024, 1, 1, tzinfo=UTC), "calendar date"),
    ],
)
def test_bad_taken_on_is_refused_and_saves_nothing(store, sample_images, make_lesion, make_review, taken_on, message):
    with pytest.raises(ValueError, match=message):
        store.save_review(make_review([make_lesion(sample_images[0])], taken_on=taken_on))
    assert store.search_patients("PSEUDO") == []


def test_taken_on_is_checked_against_the_stored_birth_year(store, sample_images, make_lesion, make_review):
    store.save_review(make_review([make_lesion(sample_images[0])]))  # birth year 1968 recorded
    with pytest.raises(ValueError, match="birth year 1968"):
        store.save_review(make_review([make_lesion(sample_images[1])], birth_year=None, taken_on=date(1967, 1, 1)))


def test_overview_photos_are_stored_with_the_lesion_and_never_scored(
    store, sample_images, make_lesion, make_review, make_image
):
    visit_id = store.save_review(
        make_review(
            [
                make_lesion(
                    sample_images[0],
                    lesion_label="back",
                    overviews=[OverviewImage(image_bytes=make_image(7), original_filename="overview.png")],
                ),
                make_lesion(sample_images[1], lesion_label="leg", rank=2),
            ]
        )
    )
    visit = store.load_visit(visit_id)
    assert [les.label for les in visit.lesions] == ["back", "leg"]  # one entry per lesion, not per image
    back, leg = visit.lesions
    assert back.image.kind == "dermoscopic" and back.prediction is not None
    [overview] = back.overviews
    assert (overview.kind, overview.original_filename, overview.path.is_file()) == ("overview", "overview.png", True)
    assert leg.overviews == ()
    [event] = store.audit_events(visit.patient_id, action="review.save")
    assert event.detail["overview_images"] == 1 and len(event.detail["lesion_ids"]) == 2
    # The history export still has one row per scored image.
    assert len(store.export_patient_history(visit.patient_id).splitlines()) == 3


def test_a_broken_overview_photo_names_itself(store, sample_images, make_lesion, make_review):
    bad = OverviewImage(image_bytes=b"not an image", original_filename="x.jpg")
    with pytest.raises(ValueError, match="lesion 1: overview photo 1"):
        store.save_review(make_review([make_lesion(sample_images[0], overviews=[bad])]))


def test_body_region_is_validated_against_the_site(store, sample_images, make_lesion, make_review):
    visit_id = store.save_review(make_review([make_lesion(sample_images[0], site="unknown", body_region="upper_back")]))
    [lesion] = store.load_visit(visit_id).lesions
    assert (lesion.site, lesion.body_region) == ("torso", "upper_back")  # an unknown site takes the region's
    with pytest.raises(ValueError, match="lies on the torso, not on the lower extremity"):
        store.save_review(make_review([make_lesion(sample_images[1], site="lower extremity", body_region="chest")]))
    with pytest.raises(ValueError, match="unknown body region 'elbow_pit'"):
        store.save_review(make_review([make_lesion(sample_images[1], body_region="elbow_pit")]))


def test_set_body_region_on_a_saved_lesion_is_audited(store, sample_images, make_lesion, make_review):
    visit_id = store.save_review(make_review([make_lesion(sample_images[0])]))
    [lesion] = store.load_visit(visit_id).lesions
    assert store.set_body_region(lesion.lesion_id, "chest", actor="dr.ada") == "chest"
    with pytest.raises(ValueError, match="not on the torso"):
        store.set_body_region(lesion.lesion_id, "face", actor="dr.ada")
    [summary] = store.list_lesions(store.load_visit(visit_id).patient_id)
    assert summary.body_region == "chest"
    [event] = store.audit_events(summary.patient_id, action="lesion.region")
    assert (event.actor, event.detail["old"], event.detail["new"]) == ("dr.ada", None, "chest")


def test_amending_a_decision_keeps_the_original(store, sample_images, make_lesion, make_review):
    pid, back_id, v1, _ = _two_visits(store, sample_images, make_lesion, make_review)
    [original] = [d for d in store.decision_history(pid) if d.visit_id == v1]
    new_id = store.amend_decision(original.id, "biopsy", "irregular border", reason="second look", actor="dr.bo")

    history = {d.id: d for d in store.decision_history(pid)}
    assert history[original.id].superseded and (history[original.id].action, history[original.id].comment) == (
        "monitor",
        "",
    )
    amended = history[new_id]
    assert (amended.action, amended.comment, amended.amends_id, amended.amend_reason, amended.clinician) == (
        "biopsy",
        "irregular border",
        original.id,
        "second look",
        "dr.bo",
    )
    assert not amended.superseded
    # The visit shows the decision in force, and keeps both.
    [item] = [les for les in store.load_visit(v1).lesions if les.lesion_id == back_id]
    assert [d.action for d in item.decisions] == ["monitor", "biopsy"] and item.decision.id == new_id
    # Amending visit 1 does not override visit 2's later decision as the lesion's latest.
    back = next(les for les in store.list_lesions(pid) if les.id == back_id)
    assert back.latest_action == "excise"
    [event] = store.audit_events(pid, action="decision.amend")
    assert event.actor == "dr.bo"
    assert {k: event.detail[k] for k in ("amends", "decision_id", "old_action", "new_action", "comment_changed")} == {
        "amends": original.id,
        "decision_id": new_id,
        "old_action": "monitor",
        "new_action": "biopsy",
        "comment_changed": True,
    }
    assert "irregular border" not in str(event.detail) and "second look" not in str(event.detail)


def test_amendments_are_checked(store, sample_images, make_lesion, make_review):
    pid, _, v1, _ = _two_visits(store, sample_images, make_lesion, make_review)
    [original] = [d for d in store.decision_history(pid) if d.visit_id == v1]
    with pytest.raises(ValueError, match="reason for the amendment must not be empty"):
        store.amend_decision(original.id, "biopsy", reason="  ", actor="dr.bo")
    with pytest.raises(ValueError, match="changes neither"):
        store.amend_decision(original.id, "monitor", "", reason="typo", actor="dr.bo")
    with pytest.raises(ValueError, match="unknown decision action"):
        store.amend_decision(original.id, "burn", reason="x", actor="dr.bo")
    store.amend_decision(original.id, "refer", reason="x", actor="dr.bo")
    with pytest.raises(ValueError, match="already amended by dr.bo"):
        store.amend_decision(original.id, "excise", reason="y", actor="dr.cy")
    assert len(store.decision_history(pid)) == 3  # the refused ones wrote nothing
    assert len(store.audit_events(pid, action="decision.amend")) == 1


def test_a_lesion_saved_undecided_gets_its_decision_later(store, sample_images, make_lesion, make_review):
    pid, back_id, v1, v2 = _two_visits(store, sample_images, make_lesion, make_review)
    arm = next(les for les in store.list_lesions(pid) if les.label == "arm")
    assert arm.latest_action is None  # saved without a decision at visit 1
    viewer = UserStore(store, Accounts(store).add("kim", "correct horse battery staple", "viewer", "", actor="test"))
    with pytest.raises(AccessDenied):
        viewer.record_decision(v1, arm.id, "monitor")
    clinician = UserStore(
        store, Accounts(store).add("dr.bo", "correct horse battery staple", "clinician", "", actor="test")
    )
    new_id = clinician.record_decision(v1, arm.id, "biopsy", "colleague advised")
    [item] = [les for les in store.load_visit(v1).lesions if les.lesion_id == arm.id]
    assert (item.decision.id, item.decision.action, item.decision.comment, item.decision.clinician) == (
        new_id,
        "biopsy",
        "colleague advised",
        "dr.bo",
    )
    assert item.decision.amends_id is None
    assert next(les for les in store.list_lesions(pid) if les.id == arm.id).latest_action == "biopsy"
    [event] = [e for e in store.audit_events(pid, action="decision.record") if e.detail.get("after_saving")]
    assert (event.actor, event.detail) == (
        "dr.bo",
        {
            "visit_id": v1,
            "lesion_id": arm.id,
            "decision_id": new_id,
            "action": "biopsy",
            "model_id": store.load_visit(v1).model_version,
            "p_melanoma": 0.1,
            "after_saving": True,
        },
    )
    assert "colleague advised" not in str(event.detail)
    # Once decided, it is amended, not decided twice; a decided lesion and a lesion not seen at a visit refuse.
    with pytest.raises(ValueError, match=r"already has a decision for that visit \(biopsy, dr.bo\); amend it"):
        store.record_decision(v1, arm.id, "monitor", actor="dr.cy")
    with pytest.raises(ValueError, match=r"already has a decision for that visit \(monitor"):
        store.record_decision(v1, back_id, "excise", actor="dr.cy")
    with pytest.raises(ValueError, match=f"lesion {arm.id} was not reviewed at visit {v2}"):
        store.record_decision(v2, arm.id, "monitor", actor="dr.cy")
    with pytest.raises(ValueError, match="unknown decision action"):
        store.record_decision(v1, arm.id, "burn", actor="dr.cy")
    assert len(store.audit_events(pid, action="decision.record")) == 3  # 2 saved with the visits; refusals: none


def test_undecided_lesions_are_listed_newest_visit_first_in_triage_order(
    store, sample_images, make_lesion, make_review
):
    from dashboard.outcomes import undecided

    pid, back_id, v1, v2 = _two_visits(store, sample_images, make_lesion, make_review)
    v3 = store.save_review(
        make_review(
            [
                make_lesion(sample_images[0], lesion_label="back", existing_lesion_id=back_id, rank=2, p_melanoma=0.2),
                make_lesion(sample_images[3], lesion_label="calf", site="lower extremity", rank=1, p_melanoma=0.4),
            ],
            visit_time=T0 + timedelta(days=200),
        )
    )
    items = undecided(store.patient_timeline(pid).visits)
    assert [(i.visit_id, i.label, i.p_melanoma) for i in items] == [
        (v3, "calf", 0.4),
        (v3, "back", 0.2),
        (v1, "arm", 0.1),
    ]
    assert v2 not in {i.visit_id for i in items}  # decided at saving


def test_histology_is_recorded_amended_and_audited(store, sample_images, make_lesion, make_review):
    pid, back_id, _, _ = _two_visits(store, sample_images, make_lesion, make_review)
    first = store.record_histology(back_id, "benign", actor="dr.ada", reported_on=date(2025, 6, 2))
    assert (first.result, first.reported_on, first.recorded_by) == ("benign", date(2025, 6, 2), "dr.ada")
    store.record_histology(back_id, "melanoma", actor="dr.bo", reported_on=date(2025, 6, 9), note="revised")
    history = store.histology_history(back_id)
    assert [(h.result, h.recorded_by) for h in history] == [("benign", "dr.ada"), ("melanoma", "dr.bo")]
    back = next(les for les in store.list_lesions(pid) if les.id == back_id)
    assert back.histology.result == "melanoma"
    events = store.audit_events(pid, action="histology.")
    assert [(e.action, e.actor, e.detail["old"], e.detail["new"]) for e in events] == [
        ("histology.record", "dr.ada", None, "benign"),
        ("histology.amend", "dr.bo", "benign", "melanoma"),
    ]
    assert events[1].detail["old_reported_on"] == "2025-06-02" and "revised" not in str(events[1].detail)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"result": "nevus", "reported_on": date(2025, 1, 1)}, "unknown histology result"),
        ({"result": "benign"}, "needs the date of the report"),
        ({"result": "benign", "reported_on": date.today() + timedelta(days=5)}, "in the future"),
        ({"result": "benign", "reported_on": date(1950, 1, 1)}, "before the patient's birth year"),
    ],
)
def test_bad_histology_is_refused(store, sample_images, make_lesion, make_review, kwargs, message):
    visit_id = store.save_review(make_review([make_lesion(sample_images[0])]))
    [lesion] = store.load_visit(visit_id).lesions
    with pytest.raises(ValueError, match=message):
        store.record_histology(lesion.lesion_id, actor="dr.ada", **kwargs)
    assert store.histology_history(lesion.lesion_id) == []
    store.record_histology(lesion.lesion_id, "not_done", actor="dr.ada")  # no report, no date needed


def test_outcomes_are_labelled_pseudonymous_rows(store, sample_images, make_lesion, make_review):
    pid, back_id, v1, v2 = _two_visits(store, sample_images, make_lesion, make_review)
    arm_id = next(les.id for les in store.list_lesions(pid) if les.label == "arm")
    assert store.outcomes() == []
    store.record_histology(back_id, "melanoma", actor="dr.ada", reported_on=date(2025, 6, 2))
    store.record_histology(arm_id, "not_done", actor="dr.ada")

    rows = store.outcomes()
    assert [(r.lesion_id, r.visit_id, r.latest_image) for r in rows] == [(back_id, v1, False), (back_id, v2, True)]
    # each rank is out of the lesions its visit ranked: two in the first visit, one in the follow-up
    assert [(r.rank, r.ranked_in_visit) for r in rows] == [(1, 2), (1, 1)]
    last = rows[-1]
    assert (last.p_melanoma, last.p_spread, last.tta_views, last.outlier, last.ugly_duckling) == (
        0.6,
        0.04,
        4,
        True,
        1.7,
    )
    assert (last.age_at_visit, last.sex, last.site, last.histology, last.visit_number) == (
        2025 - 1968,
        "female",
        "torso",
        "melanoma",
        2,
    )
    assert {r.lesion_id for r in store.outcomes(include_not_done=True)} == {back_id, arm_id}

    text = store.export_outcomes(actor="dr.ada")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [(r["lesion_id"], r["melanoma"], r["latest_image"], r["ranked_in_visit"]) for r in table] == [
        (str(back_id), "1", "no", "2"),
        (str(back_id), "1", "yes", "1"),
    ]
    assert "PSEUDO-0001" not in text and "upload.jpg" not in text  # ids and hashes, no identifier or file name
    [event] = store.audit_events(action="outcomes.export")
    assert (event.actor, event.patient_id, event.detail["scope"], event.detail["rows"]) == ("dr.ada", None, "all", 2)


def test_roles_viewer_reads_outcomes_but_cannot_change_them(store, sample_images, make_lesion, make_review):
    pid, back_id, v1, _ = _two_visits(store, sample_images, make_lesion, make_review)
    [original] = [d for d in store.decision_history(pid) if d.visit_id == v1]
    viewer = UserStore(store, Accounts(store).add("kim", "correct horse battery staple", "viewer", "", actor="test"))
    clinician = UserStore(
        store, Accounts(store).add("dr.ada", "correct horse battery staple", "clinician", "", actor="test")
    )
    for attempt in (
        lambda: viewer.amend_decision(original.id, "biopsy", reason="x"),
        lambda: viewer.record_histology(back_id, "benign", reported_on=date(2025, 6, 1)),
        lambda: viewer.set_body_region(back_id, "chest"),
        lambda: viewer.export_outcomes(),
    ):
        with pytest.raises(AccessDenied):
            attempt()
    clinician.record_histology(back_id, "benign", reported_on=date(2025, 6, 1))
    clinician.amend_decision(original.id, "biopsy", reason="x")
    assert [r.histology for r in viewer.outcomes(pid)] == ["benign", "benign"]
    assert viewer.histology_history(back_id)[0].recorded_by == "dr.ada"
    actors = {(e.action, e.actor) for e in store.audit_events(pid)}
    assert {("histology.record", "dr.ada"), ("decision.amend", "dr.ada")} <= actors


def test_history_export_carries_the_date_taken_region_overviews_and_amendments(
    store, sample_images, make_lesion, make_review, make_image
):
    import json

    visit_id = store.save_review(
        make_review(
            [
                make_lesion(
                    sample_images[0],
                    body_region="chest",
                    decision_action="monitor",
                    overviews=[OverviewImage(image_bytes=make_image(3))],
                )
            ],
            taken_on=date(2024, 2, 29),
        )
    )
    visit = store.load_visit(visit_id)
    [item] = visit.lesions
    new_id = store.amend_decision(item.decision.id, "excise", reason="grew", actor="dr.bo")
    [row] = list(csv.DictReader(io.StringIO(store.export_patient_history(visit.patient_id, "csv"))))
    assert (row["taken_on"], row["body_region"], row["decision_action"]) == ("2024-02-29", "chest", "excise")
    assert row["decision_amends"] == str(item.decision.id) and row["overview_images"] == item.overviews[0].sha256
    data = json.loads(store.export_patient_history(visit.patient_id, "json"))
    [lesion] = data["visits"][0]["lesions"]
    assert data["visits"][0]["taken_on"] == "2024-02-29" and lesion["body_region"] == "chest"
    assert [(d["id"], d["superseded"], d["amends"]) for d in lesion["decisions"]] == [
        (item.decision.id, True, None),
        (new_id, False, item.decision.id),
    ]
    assert len(lesion["overview_images"]) == 1 and lesion["image"]["kind"] == "dermoscopic"


def test_the_store_gives_each_rank_its_visits_count(store, sample_images, make_lesion, make_review):
    """End to end through the case store: a saved 3-lesion visit, histology recorded afterwards."""
    visit = store.save_review(
        make_review(
            [
                make_lesion(sample_images[0], lesion_label="a", rank=1, p_melanoma=0.7),
                make_lesion(sample_images[1], lesion_label="b", rank=2, p_melanoma=0.4),
                make_lesion(sample_images[2], lesion_label="c", rank=3, p_melanoma=0.1),
            ],
            visit_time=T0,
        )
    )
    lesions = {les.label: les.lesion_id for les in store.load_visit(visit).lesions}
    store.record_histology(lesions["b"], "melanoma", actor="dr.ada", reported_on=date(2025, 3, 20))
    store.record_histology(lesions["a"], "benign", actor="dr.ada", reported_on=date(2025, 3, 20))
    saved = make_review([])  # the model id and checksum every review above was saved with
    results = local_results.local_results(
        store.outcomes(), lambda m, c: (m, c) == (saved.model_version, saved.model_checksum), 0.5
    )
    assert results.visits == (MelanomaVisit(first_rank=2, ranked=3, melanomas=1),)
    assert results.share_before == pytest.approx(0.5)
    assert (results.melanomas_flagged, results.others_flagged) == (Proportion(0, 1), Proportion(1, 1))
    assert results.auc == 0.0  # the excised benign lesion scored above the melanoma


def test_the_image_a_result_labels_is_the_last_one_before_the_report(store, sample_images, make_lesion, make_review):
    """A follow-up photographed after the excision shows the scar: the result labels the image before it."""
    _, back_id, v1, v2 = _two_visits(store, sample_images, make_lesion, make_review)  # v2 is 90 days after v1
    store.record_histology(back_id, "melanoma", actor="dr.ada", reported_on=(T0 + timedelta(days=20)).date())
    rows = store.outcomes()
    assert [(r.visit_id, r.latest_image) for r in rows] == [(v1, True), (v2, False)]
    results = local_results.local_results(rows, lambda m, c: True, 0.5)
    assert results.visits == (MelanomaVisit(first_rank=1, ranked=2, melanomas=1),)  # visit 1's ranking, not v2's
    # a result dated before every scored image labels none of them
    store.record_histology(back_id, "melanoma", actor="dr.ada", reported_on=(T0 - timedelta(days=1)).date())
    assert not any(r.latest_image for r in store.outcomes())


def test_a_wound_check_photo_before_the_report_is_not_the_labelled_image(
    store, sample_images, make_lesion, make_review
):
    """A report comes 1-3 weeks after the excision; a photo taken in between shows the wound: the result labels
    the image of the visit that decided the excision (an amended-away decision does not count)."""
    _, back_id, _v1, v2 = _two_visits(store, sample_images, make_lesion, make_review)  # v2 decided "excise"
    v3 = store.save_review(
        make_review(
            [make_lesion(sample_images[3], lesion_label="back", existing_lesion_id=back_id, p_melanoma=0.01)],
            visit_time=T0 + timedelta(days=97),
        )
    )
    store.record_histology(back_id, "melanoma", actor="dr.ada", reported_on=(T0 + timedelta(days=110)).date())
    assert [(r.visit_id, r.latest_image) for r in store.outcomes()][-2:] == [(v2, True), (v3, False)]
    [excise] = [d for d in store.decision_history(store.load_visit(v2).patient_id) if d.action == "excise"]
    store.amend_decision(excise.id, "monitor", reason="entered on the wrong lesion", actor="dr.ada")
    # no biopsy or excision in force: the last image on or before the report's day
    assert [(r.visit_id, r.latest_image) for r in store.outcomes()][-2:] == [(v2, False), (v3, True)]
