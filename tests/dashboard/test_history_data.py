"""Case history without Streamlit: a saved visit's lesion image resolved for the saliency page."""

from __future__ import annotations

import pytest

from dashboard.history_data import StoredImageError, export_filename, stored_lesion_image, visit_choice_label
from dashboard.uploads import DISPLAY_PX
from data.hashing import sha256_bytes as sha256_of


def test_a_saved_lesion_image_resolves_for_the_saliency_page(tmp_path, patient_lesions):
    import datetime as dt

    from dashboard.store import CaseStore, LesionReview, ReviewToSave

    first, second = patient_lesions[:2]
    with CaseStore.from_url(f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "images") as store:
        visit_id = store.save_review(
            ReviewToSave(
                patient_identifier="PT-SALIENCY",
                birth_year=1960,
                sex="male",
                clinician="Dr A",
                visit_time=dt.datetime(2021, 5, 4, 10, 30, tzinfo=dt.UTC),
                model_version="old-model-v1",
                model_checksum="abc",
                lesions=[
                    LesionReview(
                        image_bytes=f.data,
                        original_filename=f.name,
                        site=site,
                        lesion_label=label,
                        p_melanoma=p,
                        triage_score=p,
                        rank=rank,
                    )
                    for f, site, label, p, rank in (
                        (first, "torso", "left scapula", 0.8, 1),
                        (second, "lower extremity", "right shin", 0.1, 2),
                    )
                ],
            )
        )
        sha = sha256_of(first.data)

        stored = stored_lesion_image(store, str(visit_id), sha[:16])  # as the link's query string gives it
        assert stored.sha256 == sha and stored.key == sha[:16]
        assert (stored.site, stored.lesion.label) == ("torso", "left scapula")
        assert (stored.patient.sex, stored.patient.age) == ("male", 61.0)  # age at the visit, not today
        assert stored.scored_by == stored.lesion.prediction.model_id
        assert stored.image.mode == "RGB" and max(stored.image.size) <= DISPLAY_PX
        assert f"visit {visit_id} · 2021-05-0" in stored.source_line() and "left scapula" in stored.source_line()
        assert stored_lesion_image(store, visit_id, sha).sha256 == sha  # the full hash works too

        with pytest.raises(StoredImageError, match="not a saved visit number"):
            stored_lesion_image(store, "abc", sha[:16])
        with pytest.raises(StoredImageError, match="not in the case database"):
            stored_lesion_image(store, visit_id + 99, sha[:16])
        with pytest.raises(StoredImageError, match="has no lesion image"):
            stored_lesion_image(store, visit_id, "0" * 16)
        with pytest.raises(StoredImageError, match="has no lesion image"):
            stored_lesion_image(store, visit_id, "")

        # The file altered on disk: refused by its checksum, not shown as if it were the saved image.
        path = store.image_path(sha)
        original = path.read_bytes()
        path.write_bytes(original[: len(original) // 2])
        with pytest.raises(StoredImageError, match="corrupt.*checksum"):
            stored_lesion_image(store, visit_id, sha[:16])

        # The file gone: a readable reason naming the lesion and the visit, not an OSError.
        path.unlink()
        with pytest.raises(StoredImageError, match=rf"lesion #\d+ “left scapula” \(visit {visit_id}\) cannot be read"):
            stored_lesion_image(store, visit_id, sha[:16])
        # The other lesion of that visit is unaffected.
        assert stored_lesion_image(store, visit_id, sha256_of(second.data)[:16]).site == "lower extremity"


def test_a_stored_image_is_given_the_age_on_the_day_its_images_were_taken(tmp_path, patient_lesions):
    """Images taken in December 2019 and saved in March 2021: the saliency page scores them at the age of 2019
    (the visit's date by the store's rule), not at the age on the day they were saved."""
    import datetime as dt

    from dashboard.store import CaseStore, LesionReview, ReviewToSave

    (first,) = patient_lesions[:1]
    with CaseStore.from_url(f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "images") as store:
        visit_id = store.save_review(
            ReviewToSave(
                patient_identifier="PT-TAKEN",
                birth_year=1960,
                sex="male",
                clinician="Dr A",
                visit_time=dt.datetime(2021, 3, 4, 10, 30, tzinfo=dt.UTC),
                taken_on=dt.date(2019, 12, 20),
                model_version="m1",
                model_checksum="abc",
                lesions=[
                    LesionReview(
                        image_bytes=first.data,
                        original_filename=first.name,
                        site="torso",
                        lesion_label="left scapula",
                        p_melanoma=0.4,
                        triage_score=0.4,
                        rank=1,
                    )
                ],
            )
        )
        stored = stored_lesion_image(store, visit_id, sha256_of(first.data))
        assert stored.patient.age == 59.0  # 2019 - 1960, not 2021 - 1960
        # Named by the day the images were taken, as the visit picker names the visit.
        assert "visit 1 · images taken 2019-12-20 (saved 2021-03-0" in stored.source_line()
        assert visit_choice_label(stored.visit).startswith("Visit 1 · images taken 2019-12-20 (saved 2021-03-0")


def test_the_export_file_name_carries_the_database_id_not_the_identifier():
    import datetime as dt

    assert export_filename(17, "csv", dt.date(2026, 12, 7)) == "case-history_patient-17_2026-12-07.csv"
