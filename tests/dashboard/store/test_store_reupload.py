"""An image already stored for the patient, uploaded again by a review that does not know it (another
clinician saved it after this page loaded the patient): the store links it to that lesion instead of
creating a second lesion for the identical file, or refuses where the link would be ambiguous."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.store.models import Lesion, LesionImage
from dashboard.store.records import OverviewImage
from data.hashing import sha256_bytes

FIRST = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)


def _lesions(store, visit_id):
    return {les.image.original_filename: les for les in store.load_visit(visit_id).lesions}


def test_an_unlinked_reupload_of_a_stored_image_follows_up_its_lesion(store, sample_images, make_lesion, make_review):
    a, b = sample_images[:2]
    v1 = store.save_review(
        make_review(
            [make_lesion(a, original_filename="a.jpg", site="torso", lesion_label="left shoulder", body_region=None)],
            clinician="dr.a",
            visit_time=FIRST,
        )
    )
    (first,) = store.load_visit(v1).lesions
    # dr.b's page loaded the patient before dr.a saved: it uploads the same file as a "new lesion", with
    # the default label from the file name and another site, plus a genuinely new image.
    v2 = store.save_review(
        make_review(
            [
                make_lesion(a, original_filename="a.jpg", site="upper extremity", lesion_label="a"),
                make_lesion(b, original_filename="b.jpg", site="torso", lesion_label="new one", rank=2),
            ],
            clinician="dr.b",
            visit_time=FIRST + timedelta(hours=1),
        )
    )
    pid = store.load_visit(v1).patient_id
    lesions = store.list_lesions(pid)
    assert len(lesions) == 2  # the identical file did not make a third lesion
    second = _lesions(store, v2)
    assert second["a.jpg"].lesion_id == first.lesion_id
    assert second["b.jpg"].lesion_id != first.lesion_id
    kept = next(les for les in lesions if les.id == first.lesion_id)
    assert (kept.label, kept.site, kept.visit_count) == ("left shoulder", "torso", 2)  # not renamed or moved
    (event,) = [e for e in store.audit_events(pid, action="review.save") if e.detail["visit_id"] == v2]
    assert event.detail["auto_linked_lesions"] == [first.lesion_id] and event.detail["new_lesions"] == 1


def test_a_reupload_of_another_patient_s_image_is_a_new_lesion(store, sample_images, make_lesion, make_review):
    a = sample_images[0]
    store.save_review(make_review([make_lesion(a)], patient_identifier="PSEUDO-A"))
    v2 = store.save_review(make_review([make_lesion(a)], patient_identifier="PSEUDO-B"))
    assert len(store.list_lesions(store.load_visit(v2).patient_id)) == 1


def test_a_file_stored_under_two_lesions_is_refused_not_guessed(store, sample_images, make_lesion, make_review):
    a, b = sample_images[:2]
    v1 = store.save_review(make_review([make_lesion(a, original_filename="a.jpg")]))
    pid = store.load_visit(v1).patient_id
    # An older database may hold the same file under two lesions (saved before this check existed).
    with store._write.begin() as session:
        row = session.query(LesionImage).one()
        other = Lesion(patient_id=pid, site="torso", label="copy")
        session.add(other)
        session.flush()
        session.add(
            LesionImage(
                lesion_id=other.id,
                visit_id=row.visit_id,
                sha256=row.sha256,
                relpath=row.relpath,
                image_format=row.image_format,
                width=row.width,
                height=row.height,
                byte_size=row.byte_size,
                source_sha256=row.source_sha256,
                original_filename="a.jpg",
            )
        )
    before = len(store.patient_timeline(pid).visits)
    with pytest.raises(ValueError, match=r"lesion 1 \(a\.jpg\): this exact image is already saved .* under lesions"):
        store.save_review(make_review([make_lesion(a, original_filename="a.jpg"), make_lesion(b, rank=2)]))
    assert len(store.patient_timeline(pid).visits) == before  # nothing written


def test_a_reupload_whose_lesion_the_review_already_links_is_refused(store, sample_images, make_lesion, make_review):
    a, b = sample_images[:2]
    v1 = store.save_review(make_review([make_lesion(a, original_filename="a.jpg")]))
    (first,) = store.load_visit(v1).lesions
    follow_up = make_lesion(b, original_filename="b.jpg", existing_lesion_id=first.lesion_id)
    with pytest.raises(ValueError, match=r"already saved for this patient as lesion .* remove the duplicate"):
        store.save_review(make_review([follow_up, make_lesion(a, original_filename="a.jpg", rank=2)]))
    assert len(store.patient_timeline(store.load_visit(v1).patient_id).visits) == 1


def test_a_review_that_links_the_reupload_itself_is_unchanged(store, sample_images, make_lesion, make_review):
    a = sample_images[0]
    v1 = store.save_review(make_review([make_lesion(a, lesion_label="L1")]))
    (first,) = store.load_visit(v1).lesions
    v2 = store.save_review(make_review([make_lesion(a, lesion_label="L1 renamed", existing_lesion_id=first.lesion_id)]))
    (again,) = store.load_visit(v2).lesions
    assert again.lesion_id == first.lesion_id and again.label == "L1 renamed"
    event = store.audit_events(store.load_visit(v1).patient_id, action="review.save")[-1]
    assert "auto_linked_lesions" not in event.detail


def test_an_overview_photo_uploaded_again_is_not_linked_but_is_flagged_for_another_patient(
    store, sample_images, make_lesion, make_review
):
    """The link and the wrong-patient warning share one query (patients.images_by_digest) with their own
    conditions: a re-upload links only to a lesion's dermoscopic image, while any saved photo is another
    patient's."""
    a, overview = sample_images[:2]
    v1 = store.save_review(
        make_review([make_lesion(a, overviews=[OverviewImage(image_bytes=overview, original_filename="body.jpg")])])
    )
    pid = store.load_visit(v1).patient_id
    v2 = store.save_review(make_review([make_lesion(overview, original_filename="body.jpg", lesion_label="new")]))
    assert len(store.list_lesions(pid)) == 2  # not linked to the lesion whose overview it was
    event = store.audit_events(pid, action="review.save")[-1]
    assert event.detail["visit_id"] == v2 and "auto_linked_lesions" not in event.detail
    digest = sha256_bytes(overview)
    assert store.images_saved_for_other_patients([digest, "0" * 64], pid + 1) == {digest}
    assert store.images_saved_for_other_patients([digest], pid) == set()
