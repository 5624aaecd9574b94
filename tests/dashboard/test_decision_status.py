"""The Decisions table and the amend form agree with the store's decisions in force
(store.patients.decisions_in_force, by visit): a later visit's decision on a lesion supersedes an earlier
visit's, even when the earlier one is amended afterwards."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image

from dashboard import outcomes
from dashboard.store import CaseStore, LesionReview, ReviewToSave

FIRST = dt.datetime(2025, 4, 2, 10, 30, tzinfo=dt.UTC)


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 32), (seed * 40 % 256, 90, 200 - seed)).save(buf, format="PNG")
    return buf.getvalue()


def _save(store, when, lesions, taken_on=None):
    return store.save_review(
        ReviewToSave(
            patient_identifier="PT-DECISIONS",
            birth_year=1970,
            sex="female",
            clinician="dr.ada",
            visit_time=when,
            taken_on=taken_on,
            model_version="m-1",
            model_checksum="c",
            lesions=[
                LesionReview(
                    image_bytes=_png(seed),
                    site="torso",
                    lesion_label=label,
                    p_melanoma=0.3,
                    triage_score=0.3,
                    rank=k + 1,
                    decision_action=action,
                    existing_lesion_id=existing,
                )
                for k, (seed, label, action, existing) in enumerate(lesions)
            ],
        )
    )


@pytest.fixture
def store(tmp_path):
    with CaseStore.from_url(f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "images") as store:
        yield store


def test_a_later_visit_s_decision_supersedes_an_earlier_visit_s_in_the_table_and_the_amend_form(store):
    v1 = _save(store, FIRST, [(1, "back", "monitor", None), (2, "chest", "reassure", None)])
    pid = store.load_visit(v1).patient_id
    back = next(les for les in store.list_lesions(pid) if les.label == "back")
    _save(store, FIRST + dt.timedelta(days=90), [(3, "back", "excise", back.id)])
    # The first visit's "monitor" is amended after the second visit: still superseded by visit 2.
    monitor = next(d for d in store.decision_history(pid) if d.action == "monitor")
    store.amend_decision(monitor.id, "biopsy", "", reason="second opinion", actor="dr.bo")

    decisions = store.decision_history(pid)
    visits = store.patient_timeline(pid).visits
    table = outcomes.decision_record_table(decisions, visits)
    rows = {(r.lesion, r.decision): r.status for r in table.itertuples()}
    assert rows == {
        ("#1 back", "Excise"): "in force",
        ("#1 back", "Biopsy"): "superseded by visit 2",
        ("#1 back", "Monitor"): "replaced",
        ("#2 chest", "Reassure"): "in force",
    }
    offered = outcomes.amendable(decisions, visits)
    assert sorted((d.lesion_label, d.action) for d in offered) == [("back", "excise"), ("chest", "reassure")]
    # The same decisions the store holds in force (each lesion's latest action).
    in_force = {les.label: les.latest_action for les in store.list_lesions(pid)}
    assert in_force == {d.lesion_label: d.action for d in offered}


def test_the_visit_order_is_the_store_s_not_the_save_time(store):
    # Images taken before the first visit, entered later: that visit is visit 1, and the first-saved
    # visit's decision supersedes its decision.
    v1 = _save(store, FIRST, [(1, "back", "monitor", None)])
    pid = store.load_visit(v1).patient_id
    back = store.list_lesions(pid)[0]
    _save(store, FIRST + dt.timedelta(days=5), [(2, "back", "excise", back.id)], taken_on=dt.date(2025, 1, 10))

    decisions = store.decision_history(pid)
    table = outcomes.decision_record_table(decisions, store.patient_timeline(pid).visits)
    status = {r.decision: r.status for r in table.itertuples()}
    assert status == {"Monitor": "in force", "Excise": "superseded by visit 2"}
    assert store.list_lesions(pid)[0].latest_action == "monitor"


def test_decisions_are_dated_by_their_visit_s_date_not_the_save_time(store):
    # Images taken on 10 January, saved (and decided) on 2 April; a second lesion left undecided.
    v1 = _save(
        store,
        FIRST,
        [(1, "back", "monitor", None), (2, "chest", None, None)],
        taken_on=dt.date(2025, 1, 10),
    )
    pid = store.load_visit(v1).patient_id
    decisions = store.decision_history(pid)
    visits = store.patient_timeline(pid).visits

    assert [d.visit_date for d in decisions] == [dt.date(2025, 1, 10)]
    table = outcomes.decision_record_table(decisions, visits)
    assert list(table["visit date"]) == ["2025-01-10"]
    (offered,) = outcomes.amendable(decisions, visits)
    assert outcomes.decision_choice_label(offered) == "#1 back · Monitor · visit of 2025-01-10"
    (open_lesion,) = outcomes.undecided(visits)
    assert outcomes.undecided_choice_label(open_lesion).startswith("#2 chest · visit of 2025-01-10")

    # Amended on another day: the amendment is dated by the same visit.
    store.amend_decision(offered.id, "excise", "", reason="grew", actor="dr.bo")
    decisions = store.decision_history(pid)
    table = outcomes.decision_record_table(decisions, visits)
    assert list(table["visit date"]) == ["2025-01-10", "2025-01-10"]
    (amended,) = outcomes.amendable(decisions, visits)
    assert outcomes.decision_choice_label(amended) == "#1 back · Excise · visit of 2025-01-10 (amended)"


def test_undecided_lesions_list_the_latest_visit_by_the_visit_order_first(store):
    # The visit saved second holds images taken before the first: it is the earlier visit.
    v1 = _save(store, FIRST, [(1, "back", None, None)])
    pid = store.load_visit(v1).patient_id
    back = store.list_lesions(pid)[0]
    v2 = _save(store, FIRST + dt.timedelta(days=5), [(2, "back", None, back.id)], taken_on=dt.date(2025, 1, 10))
    assert [item.visit_id for item in outcomes.undecided(store.patient_timeline(pid).visits)] == [v1, v2]
