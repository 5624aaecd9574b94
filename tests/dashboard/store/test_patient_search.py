"""Finding a patient by identifier: case folded beyond ASCII on every backend, and the exact lookup the
new-patient form uses."""

from __future__ import annotations

import unicodedata

import pytest

from dashboard.store.models import identifier_search_key

UNICODE_ID = "Zoë Müller-Ørsted 日本"


@pytest.fixture
def unicode_patient(store, sample_images, make_lesion, make_review):
    store.save_review(make_review([make_lesion(sample_images[0])], patient_identifier=UNICODE_ID))
    store.save_review(make_review([make_lesion(sample_images[1])], patient_identifier="ØRSTED-2"))
    return store


@pytest.mark.parametrize("typed", [UNICODE_ID, "Ørsted", "øRSTED", "zoë", "ZOË MÜLLER", "日本"])
def test_search_folds_case_beyond_ascii(unicode_patient, typed):
    found = [p.identifier for p in unicode_patient.search_patients(typed)]
    assert UNICODE_ID in found


def test_search_matches_decomposed_accents(unicode_patient):
    decomposed = unicodedata.normalize("NFD", "Zoë")
    assert decomposed != "Zoë"
    assert [p.identifier for p in unicode_patient.search_patients(decomposed)] == [UNICODE_ID]


def test_search_still_matches_only_what_contains_the_text(unicode_patient):
    assert [p.identifier for p in unicode_patient.search_patients("ørsted")] == sorted([UNICODE_ID, "ØRSTED-2"])
    assert unicode_patient.search_patients("Ørstedx") == []
    assert unicode_patient.search_patients("%") == []  # a LIKE wildcard typed by the user is literal


def test_exact_lookup_finds_only_the_identifier_itself(unicode_patient):
    [summary] = unicode_patient.search_patients(UNICODE_ID)
    assert unicode_patient.find_patient_id(UNICODE_ID) == summary.id
    assert unicode_patient.find_patient_id(f"  {UNICODE_ID} ") == summary.id
    assert unicode_patient.find_patient_id(UNICODE_ID.upper()) is None  # identifiers are unique as typed
    assert unicode_patient.find_patient_id("Ørsted") is None
    assert unicode_patient.find_patient_id("   ") is None


def test_the_search_key_follows_the_identifier():
    assert identifier_search_key("ØRSTED") == identifier_search_key("ørsted") == "ørsted"
    assert identifier_search_key("STRASSE") == identifier_search_key("Straße")


def test_search_counts_only_the_found_patients_visits(unicode_patient, sample_images, make_lesion, make_review):
    """Visit counts and dates come from the found patients' visits, not a GROUP BY over every visit of the
    clinic (scale audit); the figures are the same."""
    import sqlalchemy as sa

    store = unicode_patient
    store.save_review(make_review([make_lesion(sample_images[2])], patient_identifier="ØRSTED-2"))
    sent: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda _c, _k, sql, *_: sent.append(sql))
    found = {p.identifier: p for p in store.search_patients("ørsted")}
    assert not [sql for sql in sent if "GROUP BY" in sql.upper()], sent
    assert (found[UNICODE_ID].visit_count, found["ØRSTED-2"].visit_count) == (1, 2)
    second = found["ØRSTED-2"]
    assert second.last_visit_date == second.last_visit_time.astimezone().date()
