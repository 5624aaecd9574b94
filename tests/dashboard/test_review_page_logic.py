"""What the Patient review page decides, without Streamlit: an existing patient met by the new-patient
form, the search pick list, the draft kept per change, the names a warning lists."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from dashboard.patient_form import PatientContext, merge_form_into_existing, search_choice_label
from dashboard.review_draft import draft_fingerprint, keep_draft
from dashboard.review_state import ReviewState
from dashboard.wording import quoted_names


def test_the_form_fills_what_the_record_leaves_unknown_and_names_what_it_contradicts():
    record = PatientContext(identifier="PT-1", birth_year=None, sex="female", patient_id=3)
    assert merge_form_into_existing(record, 1961, "unknown") == []
    assert (record.birth_year, record.sex) == (1961, "female")
    assert merge_form_into_existing(record, 1970, "male") == ["birth year 1961", "sex female"]
    assert (record.birth_year, record.sex) == (1961, "female")  # a contradiction changes nothing


def test_a_form_that_contradicts_the_record_fills_nothing_not_even_what_the_record_leaves_unknown():
    record = PatientContext(identifier="PT-1", birth_year=None, sex="female", patient_id=3)
    assert merge_form_into_existing(record, 1970, "male") == ["sex female"]  # the unknown birth year is no conflict
    assert (record.birth_year, record.sex) == (None, "female")  # the form is not merged while it contradicts


def test_the_patient_banner_says_what_the_store_knows():
    assert "new patient" in PatientContext(identifier="PT-1").history_line()
    known = PatientContext(identifier="PT-1", patient_id=3, visit_count=2, known_lesions=[object()] * 4)
    assert known.history_line() == "2 earlier visits, 4 known lesions"
    one = PatientContext(identifier="PT-1", patient_id=3, visit_count=1, known_lesions=[object()])
    assert one.history_line() == "1 earlier visit, 1 known lesion"
    # A new patient just saved with this review has an id but nothing earlier: no "0 earlier visits".
    assert PatientContext(identifier="PT-1", patient_id=3).history_line() == "new patient — saved with this review"


def test_a_search_result_escapes_the_identifier():
    found = SimpleNamespace(
        identifier="**PT**",
        birth_year=None,
        sex="male",
        visit_count=1,
        last_visit_time=dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
        last_visit_date=dt.date(2025, 3, 1),
    )
    label = search_choice_label(found)
    assert label.startswith("\\*\\*PT\\*\\* · born ? · male · 1 visit, last 2025-03-01")


def test_warnings_list_five_names_then_a_count():
    assert quoted_names(["a", "b"]) == "“a”, “b”"
    assert quoted_names([str(i) for i in range(8)]) == "“0”, “1”, “2”, “3”, “4” and 3 more"


def test_the_draft_is_written_once_per_change_and_deleted_after_saving(patient_lesions):
    calls = []
    store = SimpleNamespace(
        save_draft=lambda state, images: calls.append("save"), delete_draft=lambda: calls.append("delete")
    )
    state = ReviewState(patient=PatientContext(identifier="PT-1"))
    assert keep_draft(store, state, None) is None and calls == []  # nothing to keep yet
    state.add_files([(patient_lesions[0].name, patient_lesions[0].data)])
    kept = keep_draft(store, state, None)
    assert kept == draft_fingerprint(state) and calls == ["save"]
    assert keep_draft(store, state, kept) == kept and calls == ["save"]  # unchanged: no second write
    state.notes = "itchy"
    changed = keep_draft(store, state, kept)
    assert changed != kept and calls == ["save", "save"]
    state.saved_visit_id = 4  # saved as a visit: the draft goes
    assert keep_draft(store, state, changed) is None and calls == ["save", "save", "delete"]
