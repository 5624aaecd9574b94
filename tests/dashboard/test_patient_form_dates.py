"""The review's patient context dates a visit by its images' day (taken_on when entered), not by the time
it was saved: the re-upload notice "already saved at the visit of <date>" and the follow-up picker's
"last seen <date>"; the patient search list shows the latest visit's date by the same rule."""

from __future__ import annotations

import datetime as dt
import io
from types import SimpleNamespace

import pytest
from PIL import Image

from dashboard.patient_form import patient_from_store, search_choice_label
from dashboard.review_state import ReviewState
from dashboard.store import CaseStore, LesionReview, ReviewToSave
from data.hashing import sha256_bytes

FIRST = dt.datetime(2025, 6, 7, 10, 0, tzinfo=dt.UTC)


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 32), (seed * 40 % 256, 90, 200 - seed)).save(buf, format="PNG")
    return buf.getvalue()


def _save(store, image, when, taken_on=None, existing=None):
    return store.save_review(
        ReviewToSave(
            patient_identifier="PT-DATES",
            birth_year=1970,
            sex="female",
            clinician="dr.ada",
            visit_time=when,
            taken_on=taken_on,
            model_version="m-1",
            model_checksum="c",
            lesions=[
                LesionReview(
                    image_bytes=image,
                    site="torso",
                    lesion_label="mole A",
                    p_melanoma=0.1,
                    triage_score=0.1,
                    rank=1,
                    existing_lesion_id=existing,
                )
            ],
        )
    )


@pytest.fixture
def store(tmp_path):
    with CaseStore.from_url(f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "images") as store:
        yield store


def test_a_reupload_notice_and_last_seen_name_the_day_the_images_were_taken(store):
    first, later = _png(1), _png(2)
    v1 = _save(store, first, FIRST)
    pid = store.load_visit(v1).patient_id
    lesion_id = store.list_lesions(pid)[0].id
    # Images taken on 1 November, saved on 7 December.
    _save(store, later, dt.datetime(2025, 12, 7, 9, 0, tzinfo=dt.UTC), dt.date(2025, 11, 1), lesion_id)

    context = patient_from_store(store, pid)
    sha = store.load_visit(v1).lesions[0].image.sha256
    later_sha = next(v for v in store.patient_timeline(pid).visits if v.id != v1).lesions[0].image.sha256
    assert context.known_images[sha] == (lesion_id, "visit of 2025-06-07 (lesion “mole A”)")
    assert context.known_images[later_sha] == (lesion_id, "visit of 2025-11-01 (lesion “mole A”)")
    assert context.lesion_choice_label(lesion_id).endswith("last seen 2025-11-01")


def test_the_search_list_shows_the_latest_visit_s_date_not_the_latest_save_s(sydney):
    summary = SimpleNamespace(
        identifier="PT-1",
        birth_year=1970,
        sex="female",
        visit_count=2,
        # The latest save (09:30 on the 8th in Sydney) was of images taken earlier; the latest visit is the 7th.
        last_visit_time=dt.datetime(2025, 12, 7, 22, 30, tzinfo=dt.UTC),
        last_visit_date=dt.date(2025, 12, 7),
    )
    assert search_choice_label(summary).endswith("last 2025-12-07")


def test_a_reupload_of_a_photo_whose_stored_copy_lost_its_metadata_is_recognised(store):
    exif = Image.Exif()
    exif[0x013B] = "Jane Doe"  # Artist: stripped before the file is stored, so the stored bytes differ
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 120, 90)).save(buf, format="JPEG", exif=exif)
    upload = buf.getvalue()
    saved = store.load_visit(_save(store, upload, FIRST))
    stored = saved.lesions[0]
    assert stored.image.sha256 != sha256_bytes(upload) and stored.image.source_sha256 == sha256_bytes(upload)

    context = patient_from_store(store, saved.patient_id)
    where = (stored.lesion_id, "visit of 2025-06-07 (lesion “mole A”)")
    assert context.known_images[sha256_bytes(upload)] == where  # the upload's own bytes, as uploaded
    assert context.known_images[stored.image.sha256] == where
    # The same photo uploaded again at the next visit is recognised and linked to its lesion.
    state = ReviewState()
    state.patient = context
    report = state.add_files([("again.jpg", upload)])
    assert [p.kind for p in report.problems] == ["notice"] and "2025-06-07" in report.problems[0].reason
    assert state.images[sha256_bytes(upload)].existing_lesion_id == stored.lesion_id
