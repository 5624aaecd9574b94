"""The Worklist page: its tables (dashboard/worklist.py) and the page itself, on a real store."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from test_app_pages import start

from dashboard import worklist as wl

pytestmark = pytest.mark.timeout(300)

TODAY = dt.date(2026, 12, 7)


def _item(action, due=None, decided=dt.date(2026, 9, 1), patient_id=1, label="back", reimaged_on=None):
    return SimpleNamespace(
        reimaged_on=reimaged_on,
        action=action,
        due=due,
        visit_day=decided,
        identifier=f"PT-{patient_id}",
        lesion_number=2,
        lesion_id=9,
        label=label,
        site="torso",
        visit_number=1,
        clinician="dr.ada",
        patient_id=patient_id,
    )


def test_statuses_say_how_late_or_how_soon():
    assert wl.repeat_status(dt.date(2026, 12, 1), TODAY) == "overdue by 6 days"
    assert wl.repeat_status(dt.date(2026, 12, 6), TODAY) == "overdue by 1 day"
    assert wl.repeat_status(TODAY, TODAY) == "due today"
    assert wl.repeat_status(dt.date(2026, 12, 8), TODAY) == "due in 1 day"
    assert wl.repeat_status(None, TODAY) == "no interval set"
    assert wl.result_status(dt.date(2026, 11, 30), TODAY) == "waiting 7 days"
    assert wl.result_status(dt.date(2026, 11, 1), TODAY) == "waiting 36 days — chase the result"


def test_tables_and_counts_split_repeat_imaging_from_results():
    items = [
        _item("monitor", due=dt.date(2026, 12, 1), label="scapula"),
        _item("monitor", due=dt.date(2027, 3, 1), label="shin"),
        _item("monitor", due=None, label="arm"),
        _item("biopsy", decided=dt.date(2026, 11, 30), patient_id=2),
        _item("excise", decided=dt.date(2026, 10, 1), patient_id=3),
    ]
    repeat = wl.repeat_imaging_table(items, TODAY)
    assert [lesion.split(" ")[1] for lesion in repeat["lesion"]] == ["scapula", "shin", "arm"]
    assert list(repeat["status"]) == ["overdue by 6 days", "due in 84 days", "no interval set"]
    soon = wl.repeat_imaging_table(items, TODAY, within_days=30)
    assert list(soon["status"]) == ["overdue by 6 days"]
    results = wl.results_table(items, TODAY)
    assert list(results["decision"]) == ["Excise", "Biopsy"]  # longest waiting first
    assert list(results["patient_id"]) == [3, 2]
    assert wl.counts(items, TODAY) == {
        "monitored": 3,
        "undecided": 0,
        "overdue": 1,
        "due_soon": 0,
        "no_interval": 1,
        "results": 2,
        "chase": 1,
    }


def test_a_monitored_lesion_imaged_again_without_a_decision_stays_listed_first():
    items = [
        _item("monitor", due=dt.date(2026, 12, 1), label="scapula"),
        _item("monitor", due=dt.date(2027, 6, 1), label="shin", reimaged_on=dt.date(2026, 12, 2)),
    ]
    table = wl.repeat_imaging_table(items, TODAY, within_days=30)  # listed whatever its due day
    assert list(table["status"]) == ["overdue by 6 days", "imaged again 2026-12-02, no decision yet"]
    counts = wl.counts(items, TODAY)
    assert (counts["undecided"], counts["overdue"]) == (1, 1)


def test_no_interval_counts_the_rows_that_say_so():
    """A lesion imaged again without an interval needs a decision, not an interval: it is not counted."""
    items = [
        _item("monitor", due=None, label="arm"),
        _item("monitor", due=None, label="shin", reimaged_on=dt.date(2026, 12, 2)),
        _item("monitor", due=dt.date(2027, 1, 1), label="back"),
    ]
    table = wl.repeat_imaging_table(items, TODAY)
    assert wl.counts(items, TODAY)["no_interval"] == list(table["status"]).count("no interval set") == 1


def test_the_page_lists_what_is_waiting_audits_the_read_and_opens_a_patient(app_env, patient_lesions):
    from dashboard.store import LesionReview, ReviewToSave

    def lesion(i, action, months=None):
        f = patient_lesions[i]
        return LesionReview(
            image_bytes=f.data,
            original_filename=f.name,
            site=f.site,
            lesion_label=f"L{i}",
            p_melanoma=0.3,
            triage_score=0.3,
            rank=i + 1,
            decision_action=action,
            decision_review_months=months,
        )

    with app_env.store() as store:
        store.save_review(
            ReviewToSave(
                patient_identifier="PT-WORK-9",
                birth_year=1970,
                sex="female",
                clinician="dr.seed",
                model_version="m",
                model_checksum="sha256:" + "0" * 64,
                visit_time=dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC),
                lesions=[lesion(0, "monitor", 3), lesion(1, "biopsy"), lesion(2, "reassure")],
            )
        )
        patient_id = store.find_patient_id("PT-WORK-9")
    at = start()
    at.switch_page("views/worklist.py").run()
    assert not at.exception, at.exception
    repeat, results = (d.value for d in at.dataframe)
    assert list(repeat["lesion"].str.split(" ").str[1]) == ["L0"] and list(repeat["due"]) == ["2026-04-05"]
    assert repeat["status"][0].startswith("overdue by")
    assert list(results["decision"]) == ["Biopsy"] and results["status"][0].endswith("chase the result")
    assert [m.value for m in at.metric] == ["1", "0", "1", "0", "1"]  # monitored, undecided, overdue, soon, results
    with app_env.store() as store:
        [event] = [e for e in store.audit_events(actor="dr.test") if e.action == "worklist.view"]
    assert event.detail == {"page": "worklist", "patient_ids": [patient_id]}

    # The history page opens the linked patient, even after another search in this session.
    at.switch_page("views/history.py").run()
    at.text_input(key="history_search").input("PT-NOBODY").run()
    at.query_params["patient_id"] = str(patient_id)
    at.switch_page("views/history.py").run()
    assert not at.exception, at.exception
    assert at.text_input(key="history_search").value == "PT-WORK-9"
    assert at.selectbox(key="history_patient").value.identifier == "PT-WORK-9"
    at.switch_page("views/worklist.py").run()  # back to the list, and the same patient's row again
    at.query_params["patient_id"] = str(patient_id)
    at.switch_page("views/history.py").run()
    assert at.text_input(key="history_search").value == "PT-WORK-9"
    at.text_input(key="history_search").input("PT-OTHER").run()  # a search typed here is kept
    assert at.text_input(key="history_search").value == "PT-OTHER"


def test_day_boundaries_of_due_soon_overdue_and_chase():
    """Due today counts as due soon (not overdue); due in exactly DUE_SOON_DAYS is still within the filter; a
    result is chased only once RESULT_CHASE_DAYS have passed; a lesion imaged again is undecided, not overdue."""
    at_limit = TODAY + dt.timedelta(days=wl.DUE_SOON_DAYS)
    items = [
        _item("monitor", due=TODAY, label="today"),
        _item("monitor", due=at_limit, label="limit"),
        _item("monitor", due=at_limit + dt.timedelta(days=1), label="later"),
        _item("monitor", due=dt.date(2026, 1, 1), label="seen", reimaged_on=dt.date(2026, 12, 1)),
        _item("biopsy", decided=TODAY - dt.timedelta(days=wl.RESULT_CHASE_DAYS)),
        _item("excise", decided=TODAY - dt.timedelta(days=wl.RESULT_CHASE_DAYS + 1)),
    ]
    soon = wl.repeat_imaging_table(items, TODAY, within_days=wl.DUE_SOON_DAYS)
    assert [lesion.split(" ")[1] for lesion in soon["lesion"]] == ["today", "limit", "seen"]
    n = wl.counts(items, TODAY)
    assert (n["due_soon"], n["overdue"], n["undecided"], n["chase"]) == (2, 0, 1, 1)
    assert list(wl.results_table(items, TODAY)["status"]) == [
        f"waiting {wl.RESULT_CHASE_DAYS + 1} days — chase the result",
        f"waiting {wl.RESULT_CHASE_DAYS} days",
    ]
