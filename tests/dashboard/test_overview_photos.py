"""Overview photos in the review in progress (issue 12: dermoscopic plus overview images per lesion per
visit): kept apart from the scored images, saved with their lesion, kept in the draft."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from dashboard.overview_photos import MAX_PER_LESION
from dashboard.patient_form import PatientContext
from dashboard.review_draft import draft_images, draft_of, resume_draft
from dashboard.review_record import ReviewNotReady, review_to_save
from dashboard.review_state import ReviewState
from tests.dashboard.test_review_state import _fake_result


def _review(patient_lesions) -> tuple[ReviewState, list[str]]:
    state = ReviewState(patient=PatientContext(identifier="PT-9", birth_year=1970, sex="male"))
    state.add_files([(f.name, f.data) for f in patient_lesions[:2]])
    return state, list(state.images)


def test_overview_photos_are_saved_with_their_lesion_and_never_scored(patient_lesions, other_lesions):
    state, (a, b) = _review(patient_lesions)
    state.run_triage(None, triage_fn=lambda *args, **kw: _fake_result(state, [0.2, 0.7], [float("nan")] * 2))
    fingerprint = state.input_fingerprint()
    assert state.add_overview(a, "back_wide.jpg", other_lesions[0].data) is None
    assert state.add_overview(a, "back_closer.jpg", other_lesions[1].data) is None
    assert list(state.images) == [a, b]  # not a lesion image: not scored, not compared
    assert state.input_fingerprint() == fingerprint and not state.result_is_stale  # the triage still stands
    review = review_to_save(state, "Dr A", "m1", "abc")
    by_file = {les.original_filename: les for les in review.lesions}
    saved = [o.original_filename for o in by_file[state.images[a].filename].overviews]
    assert saved == ["back_wide.jpg", "back_closer.jpg"]
    assert by_file[state.images[b].filename].overviews == ()


def test_a_bad_or_repeated_photo_is_refused_with_a_reason_and_nothing_else_changes(patient_lesions, other_lesions):
    state, (a, _) = _review(patient_lesions)
    problem = state.add_overview(a, "notes.txt", b"not an image")
    assert problem is not None and "not an image" in problem.reason
    assert state.add_overview(a, "wide.jpg", other_lesions[0].data) is None
    again = state.add_overview(a, "copy.jpg", other_lesions[0].data)
    assert again is not None and again.kind == "duplicate"
    assert [p.filename for p in state.overviews.of(a)] == ["wide.jpg"]
    with pytest.raises(KeyError):
        state.add_overview("no-such-image", "x.jpg", other_lesions[1].data)


def test_at_most_a_few_photos_per_lesion(patient_lesions, other_lesions):
    from PIL import Image

    from dashboard.uploads import png_bytes

    state, (a, _) = _review(patient_lesions)
    photos = [png_bytes(Image.new("RGB", (64, 48), (i * 40, 90, 90))) for i in range(MAX_PER_LESION + 1)]
    results = [state.add_overview(a, f"o{i}.png", data) for i, data in enumerate(photos)]
    assert results[:MAX_PER_LESION] == [None] * MAX_PER_LESION
    assert f"at most {MAX_PER_LESION}" in results[-1].reason


def test_removing_a_lesion_image_removes_its_photos_and_a_saved_review_takes_none(patient_lesions, other_lesions):
    state, (a, b) = _review(patient_lesions)
    state.add_overview(a, "wide.jpg", other_lesions[0].data)
    state.add_overview(b, "leg.jpg", other_lesions[1].data)
    state.remove_overview(b, state.overviews.of(b)[0].sha256)
    assert state.overviews.of(b) == []
    state.remove_image(a)
    assert state.overviews.of(a) == [] and state.overviews.total_bytes == 0
    state.saved_visit_id = 12
    with pytest.raises(ReviewNotReady, match="read-only"):
        state.add_overview(b, "late.jpg", other_lesions[2].data)


def test_a_draft_brings_back_each_lesion_s_overview_photos_and_not_as_lesions(patient_lesions, other_lesions):
    state, (_, b) = _review(patient_lesions)
    state.add_overview(b, "leg_wide.jpg", other_lesions[0].data)
    draft = SimpleNamespace(
        state=draft_of(state),
        updated_at=dt.datetime.now(dt.UTC),
        images=[SimpleNamespace(upload_sha256=s, filename=n, data=d) for s, n, d in draft_images(state)],
    )
    resumed = resume_draft(draft)
    assert len(resumed.images) == 2
    (leg,) = [k for k, i in resumed.images.items() if i.filename == state.images[b].filename]
    assert [p.filename for p in resumed.overviews.of(leg)] == ["leg_wide.jpg"]
    (other,) = set(resumed.images) - {leg}
    assert resumed.overviews.of(other) == []
