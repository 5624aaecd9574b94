"""Every date the store gives for a visit follows the one rule, ``records.visit_date`` (the day the images
were taken when entered, else the visit time's local day), never the day of the save: the patient search's
latest visit, a lesion's first and last seen, and the outcome rows' image date. Run in Sydney, where a
morning visit is the previous day in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dashboard.patient_form import search_choice_label

MORNING = datetime(2025, 12, 6, 22, 30, tzinfo=UTC)  # 09:30 on 7 December in Sydney
LATER_SAVE = datetime(2025, 12, 8, 3, 0, tzinfo=UTC)  # 14:00 on 8 December in Sydney
TAKEN_EARLIER = date(2025, 11, 1)  # the later save's images were taken on 1 November


@pytest.fixture
def followed_lesion(sydney, store, sample_images, make_lesion, make_review):
    """A visit on the morning of 7 December (local), then a save on the 8th of images of the same lesion
    taken on 1 November: the latest visit is the one of the 7th, the latest save the one of the 8th."""
    morning = store.save_review(make_review([make_lesion(sample_images[0])], visit_time=MORNING))
    (first,) = store.load_visit(morning).lesions
    entered_later = store.save_review(
        make_review(
            [make_lesion(sample_images[1], existing_lesion_id=first.lesion_id)],
            visit_time=LATER_SAVE,
            taken_on=TAKEN_EARLIER,
        )
    )
    return store.load_visit(morning).patient_id, first.lesion_id, morning, entered_later


def test_the_patient_search_gives_the_latest_visit_s_date_not_the_latest_save_s(store, followed_lesion):
    (found,) = store.search_patients("PSEUDO")
    assert found.last_visit_time == LATER_SAVE  # kept: the latest save
    assert found.last_visit_date == date(2025, 12, 7)  # the local day of the morning visit
    assert search_choice_label(found).endswith("2 visits, last 2025-12-07")


def test_a_patient_without_visits_has_no_last_visit_date(store):
    store.find_or_create_patient("PSEUDO-EMPTY", 1970, "male", actor="t")
    (found,) = store.search_patients("PSEUDO-EMPTY")
    assert (found.visit_count, found.last_visit_time, found.last_visit_date) == (0, None, None)
    assert search_choice_label(found).endswith("0 visits")


def test_a_lesion_is_first_and_last_seen_on_its_visits_dates(store, followed_lesion):
    pid, lesion_id, _, _ = followed_lesion
    (lesion,) = [les for les in store.list_lesions(pid) if les.id == lesion_id]
    # First seen on 1 November (the images entered later), last seen on the local 7 December; not the saves
    # (the UTC 6 December and 8 December).
    assert (lesion.visit_count, lesion.first_seen, lesion.last_seen) == (2, TAKEN_EARLIER, date(2025, 12, 7))


def test_outcome_rows_date_images_by_the_visit_s_local_day(
    store, followed_lesion, sample_images, make_lesion, make_review
):
    _, lesion_id, morning, entered_later = followed_lesion
    store.record_histology(lesion_id, "benign", actor="dr.ada", reported_on=date(2025, 12, 10))
    # New Year's morning in Sydney is still 31 December in UTC: the image date, and the age from it, is 2026's.
    new_year = store.save_review(
        make_review(
            [make_lesion(sample_images[2])],
            patient_identifier="PSEUDO-NY",
            birth_year=1968,
            visit_time=datetime(2025, 12, 31, 20, 0, tzinfo=UTC),
        )
    )
    (ny_lesion,) = store.load_visit(new_year).lesions
    store.record_histology(ny_lesion.lesion_id, "benign", actor="dr.ada", reported_on=date(2026, 1, 5))

    rows = {r.visit_id: r for r in store.outcomes()}
    assert (rows[entered_later].visit_number, rows[entered_later].image_date) == (1, TAKEN_EARLIER)
    assert (rows[morning].visit_number, rows[morning].image_date) == (2, date(2025, 12, 7))
    assert (rows[new_year].image_date, rows[new_year].age_at_visit) == (date(2026, 1, 1), 2026 - 1968)
