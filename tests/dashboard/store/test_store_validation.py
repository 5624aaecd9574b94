"""Bad input is refused with a clear ValueError before anything is written."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from dashboard.store import CaseStore


def _nothing_written(store: CaseStore) -> bool:
    files = [p for p in store.data_dir.rglob("*") if p.is_file()]
    return not files and store.search_patients("PSEUDO") == []


@pytest.mark.parametrize(
    ("review_changes", "lesion_changes", "message"),
    [
        ({"patient_identifier": ""}, {}, "patient identifier must not be empty"),
        ({"patient_identifier": "   "}, {}, "patient identifier must not be empty"),
        ({"patient_identifier": "x" * 65}, {}, "patient identifier is 65 characters long; the limit is 64"),
        ({"patient_identifier": "ab\ncd"}, {}, "patient identifier contains control characters"),
        ({"sex": "M"}, {}, "unknown sex 'M'; expected one of: male, female, unknown"),
        ({"birth_year": 1850}, {}, "birth year 1850 is outside"),
        ({"birth_year": "1970"}, {}, "birth year must be a whole number"),
        ({"clinician": ""}, {}, "clinician must not be empty"),
        ({"model_version": ""}, {}, "model version must not be empty"),
        ({"visit_time": datetime(2025, 1, 1)}, {}, "visit time must be timezone-aware"),
        ({"lesions": []}, None, "a review must contain at least one lesion"),
        (
            {},
            {"decision_action": "burn"},
            "lesion 1: unknown decision action 'burn'; expected one of: biopsy, excise, monitor, reassure, refer",
        ),
        ({}, {"site": "knee"}, "lesion 1: unknown anatomic site 'knee'; expected one of: torso, "),
        ({}, {"lesion_label": " "}, "lesion 1: lesion label must not be empty"),
        ({}, {"p_melanoma": 1.5}, "lesion 1: p_melanoma must be between 0 and 1, got 1.5"),
        ({}, {"p_melanoma": float("nan")}, "lesion 1: p_melanoma must be finite"),
        ({}, {"triage_score": "high"}, "lesion 1: triage score must be a number"),
        ({}, {"ugly_duckling": float("inf")}, "lesion 1: ugly-duckling score must be finite"),
        ({}, {"rank": 0}, "lesion 1: rank must be a whole number ≥ 1"),
        (
            {},
            {"decision_comment": "looks fine"},
            "lesion 1: decision comment given without a decision action",
        ),
        ({}, {"image_bytes": b""}, "lesion 1: image is empty"),
        ({}, {"image_bytes": b"%PDF-1.4 not an image"}, "lesion 1: file is not a decodable image"),
        ({}, {"image_bytes": "not bytes"}, "lesion 1: image must be bytes"),
    ],
)
def test_invalid_review_is_refused(
    sqlite_store, sample_images, make_lesion, make_review, review_changes, lesion_changes, message
):
    lesions = [make_lesion(sample_images[0], **lesion_changes)] if lesion_changes is not None else []
    changes = {"lesions": lesions, **review_changes}
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        sqlite_store.save_review(make_review(**changes))
    assert _nothing_written(sqlite_store)


def test_truncated_image_is_refused(sqlite_store, sample_images, make_lesion, make_review):
    truncated = sample_images[0][: len(sample_images[0]) // 2]
    with pytest.raises(ValueError, match="could not be decoded"):
        sqlite_store.save_review(make_review([make_lesion(truncated)]))
    assert _nothing_written(sqlite_store)


def test_size_and_pixel_limits(sqlite_url, data_dir, sample_images, make_lesion, make_review):
    img = sample_images[0]
    with (
        CaseStore.from_url(sqlite_url, data_dir, max_image_bytes=len(img) - 1) as store,
        pytest.raises(ValueError, match=r"over the .* MB upload limit"),
    ):
        store.save_review(make_review([make_lesion(img)]))
    with CaseStore.from_url(sqlite_url, data_dir, max_image_pixels=100) as store:
        with pytest.raises(ValueError, match=r"pixels, over the limit of 100 pixels"):
            store.save_review(make_review([make_lesion(img)]))
        assert _nothing_written(store)


def test_default_upload_limit_is_30_mb(sqlite_store, sample_images, make_lesion, make_review):
    limit = 30 * 1024 * 1024
    img = sample_images[0]
    # The same decodable image, padded after its end marker to one byte over 30 MB: refused for its size.
    with pytest.raises(ValueError, match=r"^lesion 1: image is 30\.0 MB, over the 30\.0 MB upload limit"):
        sqlite_store.save_review(make_review([make_lesion(img + b"\0" * (limit + 1 - len(img)))]))
    assert _nothing_written(sqlite_store)
    # Padded to exactly 30 MB: within the limit, stored.
    visit = sqlite_store.save_review(make_review([make_lesion(img + b"\0" * (limit - len(img)))]))
    assert len(sqlite_store.load_visit(visit).lesions) == 1


def test_second_lesion_error_names_it(sqlite_store, sample_images, make_lesion, make_review):
    with pytest.raises(ValueError, match=r"^lesion 2: unknown anatomic site"):
        sqlite_store.save_review(make_review([make_lesion(sample_images[0]), make_lesion(sample_images[1], site="")]))


def test_existing_lesion_must_belong_to_the_patient(sqlite_store, sample_images, make_lesion, make_review):
    other = sqlite_store.save_review(
        make_review([make_lesion(sample_images[0], site="torso")], patient_identifier="OTHER-1")
    )
    other_lesion = sqlite_store.load_visit(other).lesions[0].lesion_id
    with pytest.raises(ValueError, match=f"lesion {other_lesion} does not exist or belongs to another patient"):
        sqlite_store.save_review(make_review([make_lesion(sample_images[1], existing_lesion_id=other_lesion)]))
    with pytest.raises(ValueError, match="recorded on site 'torso', not 'head/neck'"):
        sqlite_store.save_review(
            make_review(
                [make_lesion(sample_images[1], existing_lesion_id=other_lesion, site="head/neck")],
                patient_identifier="OTHER-1",
            )
        )
    with pytest.raises(ValueError, match="appears twice in this review"):
        sqlite_store.save_review(
            make_review(
                [
                    make_lesion(sample_images[1], existing_lesion_id=other_lesion),
                    make_lesion(sample_images[2], existing_lesion_id=other_lesion),
                ],
                patient_identifier="OTHER-1",
            )
        )
    assert len(sqlite_store.patient_timeline(sqlite_store.load_visit(other).patient_id).visits) == 1


def test_bad_lookups(sqlite_store):
    with pytest.raises(ValueError, match="64 lowercase hex"):
        sqlite_store.image_path("../../etc/passwd")
    with pytest.raises(ValueError, match="patient id must be an integer"):
        sqlite_store.patient_timeline("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown sex"):
        sqlite_store.find_or_create_patient("X", None, "other", "Dr. Ada")
    with pytest.raises(ValueError, match="actor must not be empty"):
        sqlite_store.find_or_create_patient("X", None, "unknown", "")
