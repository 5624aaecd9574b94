"""One visit order everywhere: the store's visit numbers, a lesion's score trend and the follow-up views
(dashboard/follow_up.py) sort by the same key, visit_order_key (the images' day: taken_on if entered,
else the visit time's local date; then visit time; then id)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from dashboard.follow_up import lesion_histories
from dashboard.score_rise import RiseMargin, lesion_rise
from dashboard.store.core import visit_order_key
from dashboard.store.records import visit_date


def _clinic_east_of_utc(store, make_lesion, make_review, images):
    """The audit's scenario: a Sydney visit at 09:30 on 7 December (22:30 UTC on the 6th) scores 1%; a
    later save follows the lesion up with images entered as taken on the local 6th, scoring 20%."""
    morning = store.save_review(
        make_review(
            [make_lesion(images[0], p_melanoma=0.01, triage_score=0.01)],
            visit_time=datetime(2025, 12, 6, 22, 30, tzinfo=UTC),
        )
    )
    (first,) = store.load_visit(morning).lesions
    earlier_images = store.save_review(
        make_review(
            [make_lesion(images[1], p_melanoma=0.20, triage_score=0.20, existing_lesion_id=first.lesion_id)],
            visit_time=datetime(2025, 12, 7, 3, 0, tzinfo=UTC),
            taken_on=date(2025, 12, 6),
        )
    )
    return store.load_visit(morning).patient_id, first.lesion_id, morning, earlier_images


def test_a_visit_date_is_the_local_day_of_its_time_unless_the_images_day_was_entered(sydney):
    assert visit_date(None, datetime(2025, 12, 6, 22, 30, tzinfo=UTC)) == date(2025, 12, 7)
    assert visit_date(date(2025, 12, 1), datetime(2025, 12, 6, 22, 30, tzinfo=UTC)) == date(2025, 12, 1)
    early, late = datetime(2025, 12, 7, 1, tzinfo=UTC), datetime(2025, 12, 7, 2, tzinfo=UTC)
    assert sorted([(None, late, 1), (None, early, 2)], key=lambda k: visit_order_key(*k))[0][2] == 2
    assert visit_order_key(None, early, 5) < visit_order_key(None, early, 6)  # ties by id


def test_store_numbers_trend_and_lesion_history_agree_east_of_utc(
    sydney, store, sample_images, make_lesion, make_review
):
    pid, lesion_id, morning, earlier_images = _clinic_east_of_utc(store, make_lesion, make_review, sample_images)

    numbers = {v.id: v.number for v in store.patient_timeline(pid).visits}
    # The images taken on the 6th come before the visit of the 7th (local days).
    assert numbers == {earlier_images: 1, morning: 2}
    assert [p.visit_number for p in store.lesion_score_trend(lesion_id)] == [1, 2]
    assert [p.p_melanoma for p in store.lesion_score_trend(lesion_id)] == [0.20, 0.01]

    (history,) = lesion_histories(store.patient_timeline(pid))
    assert [(v.visit_number, v.date, v.p_melanoma) for v in history.visits] == [
        (1, "2025-12-06", 0.20),
        (2, "2025-12-07", 0.01),
    ]
    assert lesion_rise(history, RiseMargin()) is None  # the score fell: no rise runs backwards


def test_without_a_time_zone_offset_the_same_key_orders_both(store, sample_images, make_lesion, make_review):
    pid, lesion_id, _, _ = _clinic_east_of_utc(store, make_lesion, make_review, sample_images)
    timeline = store.patient_timeline(pid)
    (history,) = lesion_histories(timeline)
    assert [v.visit_number for v in history.visits] == [p.visit_number for p in store.lesion_score_trend(lesion_id)]
    assert [v.visit_number for v in history.visits] == sorted(v.number for v in timeline.visits)
