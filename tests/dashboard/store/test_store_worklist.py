"""The worklist across patients (dashboard/store/worklist.py): monitored lesions due for repeat imaging, and
biopsies/excisions without a histology result; and the monitor decision's repeat-imaging interval it reads."""

from __future__ import annotations

import dataclasses
import datetime as dt
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dashboard.store.worklist import add_months

JAN = datetime(2026, 1, 31, 10, tzinfo=UTC)
JUN = datetime(2026, 6, 10, 10, tzinfo=UTC)


def _save(store, make_review, lesions, when, identifier="PT-WORK-1"):
    return store.save_review(make_review(lesions, patient_identifier=identifier, visit_time=when))


def _lesion_ids(store, identifier="PT-WORK-1"):
    patient_id = store.find_patient_id(identifier)
    return {les.label: les.id for les in store.list_lesions(patient_id)}


def test_add_months_keeps_the_day_or_takes_the_months_last():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 3, 15), 12) == date(2027, 3, 15)


def test_monitored_lesions_are_due_at_their_interval_until_a_later_visit_decides(
    store, sample_images, make_lesion, make_review
):
    _save(
        store,
        make_review,
        [
            make_lesion(sample_images[0], lesion_label="scapula", decision_action="monitor", decision_review_months=3),
            make_lesion(sample_images[1], lesion_label="shin", site="lower extremity", decision_action="monitor"),
            make_lesion(sample_images[2], lesion_label="arm", site="upper extremity", decision_action="reassure"),
        ],
        JAN,
    )
    items = store.worklist()
    assert [(i.label, i.action, i.review_in_months, i.due) for i in items] == [
        ("scapula", "monitor", 3, add_months(JAN.astimezone().date(), 3)),
        ("shin", "monitor", None, None),  # no interval: listed, after those with a due day
    ]
    assert items[0].identifier == "PT-WORK-1" and items[0].visit_number == 1 and items[0].lesion_number == 1
    ids = _lesion_ids(store)
    again = make_lesion(sample_images[3], lesion_label="scapula", existing_lesion_id=ids["scapula"])
    _save(store, make_review, [again], JUN)  # imaged again, saved without a decision: it must not drop out
    assert [(i.label, i.reimaged_on) for i in store.worklist()] == [
        ("scapula", JUN.astimezone().date()),
        ("shin", None),
    ]
    decided = make_lesion(sample_images[4], lesion_label="scapula", existing_lesion_id=ids["scapula"])
    _save(store, make_review, [dataclasses.replace(decided, decision_action="reassure")], JUN + dt.timedelta(days=1))
    assert [i.label for i in store.worklist()] == ["shin"]  # a later visit decided on it


def test_biopsies_wait_for_their_histology_result(store, sample_images, make_lesion, make_review):
    _save(
        store,
        make_review,
        [
            make_lesion(sample_images[0], lesion_label="back", decision_action="biopsy"),
            make_lesion(sample_images[1], lesion_label="calf", site="lower extremity", decision_action="excise"),
        ],
        JAN,
    )
    assert [(i.label, i.action, i.due) for i in store.worklist()] == [
        ("back", "biopsy", None),
        ("calf", "excise", None),
    ]
    ids = _lesion_ids(store)
    store.record_histology(ids["back"], "benign", actor="Dr. Ada", reported_on=date(2026, 2, 14))
    assert [i.label for i in store.worklist()] == ["calf"]


def test_an_amended_decision_is_read_as_amended(store, sample_images, make_lesion, make_review):
    _save(store, make_review, [make_lesion(sample_images[0], lesion_label="back", decision_action="monitor")], JAN)
    ids = _lesion_ids(store)
    [decision] = store.decision_history(ids["back"])
    store.amend_decision(decision.id, "monitor", "", reason="interval agreed", actor="Dr. Bo", review_in_months=6)
    [item] = store.worklist()
    assert (item.review_in_months, item.due, item.clinician) == (6, add_months(JAN.astimezone().date(), 6), "Dr. Bo")
    [_, current] = store.decision_history(ids["back"])
    store.amend_decision(current.id, "reassure", "", reason="stable on review", actor="Dr. Bo")
    assert store.worklist() == []


def test_the_interval_belongs_to_a_monitor_decision_and_is_bounded(store, sample_images, make_lesion, make_review):
    for action, months, message in (
        ("biopsy", 3, "belongs to a monitor decision"),
        (None, 3, "belongs to a monitor decision"),
        ("monitor", 0, "1 to 24 months"),
        ("monitor", 25, "1 to 24 months"),
        ("monitor", True, "1 to 24 months"),
    ):
        lesion = make_lesion(sample_images[0], decision_action=action, decision_review_months=months)
        with pytest.raises(ValueError, match=message):
            _save(store, make_review, [lesion], JAN)
    _save(
        store, make_review, [make_lesion(sample_images[0], decision_action="monitor", decision_review_months=12)], JAN
    )
    with store._write.begin() as session, pytest.raises(IntegrityError):  # the database checks it too
        session.execute(sa.text("UPDATE decision SET review_in_months = 12, action = 'biopsy'"))


def test_the_worklist_spans_patients(store, sample_images, make_lesion, make_review):
    _save(store, make_review, [make_lesion(sample_images[0], decision_action="biopsy")], JUN, identifier="PT-A")
    _save(
        store,
        make_review,
        [make_lesion(sample_images[1], decision_action="monitor", decision_review_months=1)],
        JAN,
        identifier="PT-B",
    )
    assert [(i.identifier, i.action) for i in store.worklist()] == [("PT-B", "monitor"), ("PT-A", "biopsy")]


def test_the_interval_is_exported_with_the_decision(store, sample_images, make_lesion, make_review):
    import json

    _save(store, make_review, [make_lesion(sample_images[0], decision_action="monitor", decision_review_months=6)], JAN)
    patient_id = store.find_patient_id("PT-WORK-1")
    csv = store.export_patient_history(patient_id, "csv")
    header, row = csv.splitlines()[:2]
    assert row.split(",")[header.split(",").index("decision_review_months")] == "6"
    exported = json.loads(store.export_patient_history(patient_id, "json"))
    assert "'review_in_months': 6" in str(exported)


def test_a_lesions_summary_carries_its_repeat_imaging_due_day(store, sample_images, make_lesion, make_review):
    _save(store, make_review, [make_lesion(sample_images[0], decision_action="monitor", decision_review_months=3)], JAN)
    [summary] = store.list_lesions(store.find_patient_id("PT-WORK-1"))
    assert summary.review_due == add_months(JAN.astimezone().date(), 3)


def _statements(store, run):
    """How many SQL statements ``run()`` sends."""
    sent = []

    def count(*_args):
        sent.append(1)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        run()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    return len(sent)


def test_cross_patient_lists_do_not_query_per_patient(store, sample_images, make_lesion, make_review):
    """The Worklist and the labelled outcomes number visits and lesions for every patient listed: in a fixed
    number of statements, not two more per patient (a clinic's list runs to thousands)."""

    def add_patient(n):
        lesion = make_lesion(sample_images[n % len(sample_images)], decision_action="biopsy")
        _save(store, make_review, [lesion], JAN, identifier=f"PT-MANY-{n}")
        lesion_id = next(iter(_lesion_ids(store, f"PT-MANY-{n}").values()))
        if n % 2:
            store.record_histology(lesion_id, "benign", actor="dr.ada", reported_on=date(2026, 2, 10))

    for n in range(2):
        add_patient(n)
    few = (_statements(store, store.worklist), _statements(store, store.outcomes))
    for n in range(2, 8):
        add_patient(n)
    assert len(store.worklist()) == 4
    assert (_statements(store, store.worklist), _statements(store, store.outcomes)) == few


def test_long_id_lists_are_sent_in_batches(store, sample_images, make_lesion, make_review, monkeypatch):
    """A clinic's Worklist outgrows one ``IN (...)`` list (psycopg refuses over 65,535 parameters): the ids go
    in batches of IN_LIST_MAX, and the lists come out the same whatever the batch size."""
    from dashboard.store import core

    for n in range(5):
        lesions = [
            make_lesion(
                sample_images[n], lesion_label=f"mole {n}", decision_action="monitor", decision_review_months=6
            ),
            make_lesion(sample_images[n + 1], lesion_label=f"scar {n}", decision_action="excise"),
        ]
        _save(store, make_review, lesions, JAN, identifier=f"PT-BATCH-{n}")
        if n % 2:  # results for some: the labelled outcomes have rows, numbered across patients
            scar = _lesion_ids(store, f"PT-BATCH-{n}")[f"scar {n}"]
            store.record_histology(scar, "benign", actor="dr.ada", reported_on=date(2026, 2, 10))
    whole = (store.worklist(), store.outcomes(), store.search_patients("PT-BATCH"))
    assert len(whole[0]) == 8 and len(whole[1]) == 2 and len(whole[2]) == 5
    monkeypatch.setattr(core, "IN_LIST_MAX", 2)
    sent = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda _c, _k, sql, params, *_: sent.append(params))
    assert (store.worklist(), store.outcomes(), store.search_patients("PT-BATCH")) == whole
    longest = max(len(p) if isinstance(p, list | tuple | dict) else 0 for p in sent)
    assert longest <= 2 + 2  # the batch and a statement's own few parameters


def test_a_new_tissue_decision_waits_for_its_own_result_not_an_earlier_one(
    store, sample_images, make_lesion, make_review
):
    """A biopsy's result is in; a later visit decides to excise the same lesion: the excision waits for its own
    result (the biopsy's, recorded before the decision, does not answer it)."""
    _save(store, make_review, [make_lesion(sample_images[0], lesion_label="back", decision_action="biopsy")], JAN)
    back = _lesion_ids(store)["back"]
    store.record_histology(back, "benign", actor="Dr. Ada", reported_on=date(2026, 2, 14))
    assert store.worklist() == []
    again = make_lesion(sample_images[1], lesion_label="back", existing_lesion_id=back, decision_action="excise")
    _save(store, make_review, [again], JUN)
    assert [(i.label, i.action, i.visit_number) for i in store.worklist()] == [("back", "excise", 2)]


def test_a_lesion_imaged_again_comes_before_those_due_earlier(store, sample_images, make_lesion, make_review):
    """Imaged again without a decision, a lesion heads the list whatever its due day: the clinician has seen it
    and owes it a decision."""
    _save(
        store,
        make_review,
        [
            make_lesion(sample_images[0], lesion_label="soon", decision_action="monitor", decision_review_months=1),
            make_lesion(sample_images[1], lesion_label="late", decision_action="monitor", decision_review_months=12),
        ],
        JAN,
    )
    late = _lesion_ids(store)["late"]
    _save(store, make_review, [make_lesion(sample_images[2], lesion_label="late", existing_lesion_id=late)], JUN)
    assert [(i.label, i.reimaged_on) for i in store.worklist()] == [
        ("late", JUN.astimezone().date()),
        ("soon", None),
    ]
