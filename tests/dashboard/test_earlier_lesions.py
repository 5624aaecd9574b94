"""At a follow-up the patient's earlier lesions are embedded as references, and uploads are checked for a
different image source (real ISIC images, the fresh test checkpoint)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.earlier_lesions import embed_earlier, lesions_to_compare, upload_caveats
from dashboard.follow_up import LesionHistory, LesionVisit
from dashboard.store.records import ImageView
from dashboard.uploads import UploadedImage, check_image
from data.hashing import sha256_bytes
from model.triage import LesionInput, triage_patient


def history(lesion_id: int, path: Path | None, width: int = 384, height: int = 384) -> LesionHistory:
    image = (
        None
        if path is None
        else ImageView(lesion_id, sha256_bytes(path.read_bytes()), path.name, path, "JPEG", width, height, 0, path.name)
    )
    visit = LesionVisit(1, 1, dt.datetime(2026, 5, 1, tzinfo=dt.UTC), image, 0.1, 0.01, None, "m")
    return LesionHistory(lesion_id, lesion_id, f"lesion {lesion_id}", "torso", (visit,))


@pytest.fixture(scope="module")
def patient_paths(datasets_dir) -> list[Path]:
    frame = pd.read_csv(datasets_dir / "isic2020_patients" / "train.csv")
    names = frame[frame.patient_id == frame.patient_id.value_counts().index[0]].image_name.sort_values()[:6]
    return [datasets_dir / "isic2020_patients" / "train" / f"{n}.jpg" for n in names]


def upload(path: Path) -> UploadedImage:
    data = path.read_bytes()
    facts, thumb = check_image(path.name, data)
    return UploadedImage(filename=path.name, data=data, thumbnail=thumb, **facts)


def test_lesions_imaged_again_or_without_a_stored_image_are_not_references(patient_paths):
    known = [history(1, patient_paths[0]), history(2, patient_paths[1]), history(3, None)]
    assert [h.lesion_id for h in lesions_to_compare(known, followed_up=[2, None])] == [1]


def test_references_are_embedded_like_the_reviews_own_lesions(predictor, patient_paths):
    known = [history(i, p) for i, p in enumerate(patient_paths[:3], start=1)]
    earlier = embed_earlier(predictor, known)
    direct = triage_patient(predictor, [LesionInput(str(i), p, "torso") for i, p in enumerate(patient_paths[:3])])
    assert earlier.lesion_ids == (1, 2, 3) and earlier.unreadable == 0
    np.testing.assert_allclose(earlier.embeddings, direct.embeddings, atol=1e-5)
    assert [s.width for s in earlier.sources] == [384, 384, 384]
    assert embed_earlier(predictor, known) is earlier  # asked again (e.g. the triage rerun): not embedded again


def test_an_unreadable_stored_image_is_left_out_and_counted(predictor, patient_paths, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    earlier = embed_earlier(predictor, [history(1, patient_paths[0]), history(2, broken)])
    assert earlier.lesion_ids == (1,) and earlier.unreadable == 1 and earlier.embeddings.shape[0] == 1


def test_a_small_photo_among_the_patients_images_gets_a_caveat(predictor, patient_paths, datasets_dir):
    small = sorted((datasets_dir / "ham10000" / "images").glob("*.jpg"))[0]
    uploads = {p.name: upload(p) for p in [patient_paths[0], small]}
    assert upload_caveats(uploads) == {}  # two images alone: no usual source to differ from
    earlier = embed_earlier(predictor, [history(i, p) for i, p in enumerate(patient_paths[1:4], start=1)])
    caveats = upload_caveats(uploads, earlier)
    assert list(caveats) == [small.name] and "200×150 px" in caveats[small.name]


def test_a_follow_up_review_compares_with_the_earlier_lesions_and_names_an_odd_source(
    predictor, patient_paths, datasets_dir
):
    """ReviewState.run_triage: earlier lesions not imaged again are references; the one linked as a follow-up
    is not (its new image stands for it); a 200×150 upload among 384 px images gets its caveat."""
    from dashboard.patient_form import PatientContext
    from dashboard.review_state import ReviewState

    small = sorted((datasets_dir / "ham10000" / "images").glob("*.jpg"))[0]
    state = ReviewState(patient=PatientContext("P-0001"))
    state.add_files([(p.name, p.read_bytes()) for p in [patient_paths[0], patient_paths[1], small]])
    known = [history(i, p) for i, p in enumerate(patient_paths[2:6], start=1)]
    next(iter(state.images.values())).existing_lesion_id = 4  # a follow-up of known lesion 4
    result = state.run_triage(predictor, known_lesions=known)
    assert len(result.table) == 3 and result.reference_xy.shape == (3, 2)  # lesions 1-3; 4 is imaged again
    assert any("includes 3 lesions known from earlier visits" in note for note in result.notes)
    small_sha = next(sha for sha, image in state.images.items() if image.filename == small.name)
    assert list(state.source_caveats) == [small_sha] and "200×150 px" in state.source_caveats[small_sha]


def test_a_lesions_new_latest_image_is_embedded_anew_not_read_from_the_cache(predictor, patient_paths):
    """After a follow-up is saved, the lesion's latest image is the new one: the next review's reference must be
    that image, not the embedding kept for the same lesion id and site."""
    first = embed_earlier(predictor, [history(1, patient_paths[4])])
    again = embed_earlier(predictor, [history(1, patient_paths[5])])
    direct = triage_patient(predictor, [LesionInput("new", patient_paths[5], "torso")])
    np.testing.assert_allclose(again.embeddings, direct.embeddings, atol=1e-5)
    assert not np.allclose(again.embeddings, first.embeddings, atol=1e-5)
