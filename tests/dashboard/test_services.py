"""The dashboard's logic without Streamlit: uploads (zips, limits, bad files, duplicates), the review
state, building the record to save, and the numbers shown next to scores."""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dashboard import figures
from dashboard.services import (
    SCREENING_PREVALENCE,
    OperatingPoint,
    ReviewNotReady,
    ReviewState,
    UploadLimits,
    UploadProblem,
    check_image,
    curve_sets,
    expand_upload,
    operating_point,
    per_dataset_table,
    performance_sentence,
    reason_lines,
    score_band,
)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height (no real pixel data): a decompression-bomb probe."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _jpeg(size=(64, 48), colour=(180, 120, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


# ---------------------------------------------------------------- single files


def test_bad_files_get_a_named_reason(patient_lesions):
    real = patient_lesions[0].data
    cases = {
        "empty.jpg": (b"", "empty"),
        "truncated.jpg": (real[: len(real) // 3], "truncated"),
        "notes.txt": (b"patient notes, not an image", "not an image"),
        "fake.jpg": (b"\xff\xd8\xff\xe0" + b"garbage" * 50, ""),
    }
    for name, (data, words) in cases.items():
        problem = check_image(name, data)
        assert isinstance(problem, UploadProblem), name
        assert problem.filename == name and problem.kind == "error"
        assert words in problem.reason.lower()


def test_huge_images_are_refused_from_the_header_alone():
    problem = check_image("scan.png", _png_header_only(20_000, 20_000))
    assert isinstance(problem, UploadProblem)
    assert "too large" in problem.reason and "400 megapixels" in problem.reason


def test_oversized_files_are_refused():
    limits = UploadLimits(max_file_bytes=1000)
    problem = check_image("big.jpg", _jpeg((400, 400), (10, 200, 30)) + b"\0" * 1000, limits)
    assert isinstance(problem, UploadProblem) and "limit" in problem.reason


def test_a_good_image_gives_facts_and_a_thumbnail(patient_lesions):
    facts, thumb = check_image("a.jpg", patient_lesions[0].data)
    assert facts["image_format"] == "JPEG" and facts["width"] == 512 and len(facts["sha256"]) == 64
    assert max(thumb.size) <= 384


# ---------------------------------------------------------------- zips


def test_zip_members_are_expanded_and_junk_skipped(other_lesions):
    data = _zip(
        {
            "visit/" + other_lesions[0].name: other_lesions[0].data,
            "visit/" + other_lesions[1].name: other_lesions[1].data,
            "__MACOSX/visit/._x.jpg": b"junk",
            ".DS_Store": b"junk",
            "visit/inner.zip": _zip({"a.jpg": other_lesions[2].data}),
        }
    )
    items = list(expand_upload("lesions.zip", data))
    files = [i for i in items if not isinstance(i, UploadProblem)]
    problems = [i for i in items if isinstance(i, UploadProblem)]
    assert [name for name, _ in files] == [
        f"lesions.zip/visit/{other_lesions[0].name}",
        f"lesions.zip/visit/{other_lesions[1].name}",
    ]
    assert len(problems) == 1 and "inside a zip" in problems[0].reason


def test_zip_bombs_and_oversized_archives_are_refused():
    bomb = _zip({"bomb.jpg": b"\0" * 5_000_000})
    (problem,) = list(expand_upload("bomb.zip", bomb))
    assert isinstance(problem, UploadProblem) and "zip-bomb" in problem.reason

    many = _zip({f"{i}.jpg": b"x" for i in range(20)}, zipfile.ZIP_STORED)
    (problem,) = list(expand_upload("many.zip", many, UploadLimits(max_zip_members=10)))
    assert "at most 10" in problem.reason

    big = _zip({"a.jpg": b"x" * 5000, "b.jpg": b"y" * 5000}, zipfile.ZIP_STORED)
    (problem,) = list(expand_upload("big.zip", big, UploadLimits(max_zip_uncompressed=6000)))
    assert "unpacks to" in problem.reason

    (problem,) = list(expand_upload("broken.zip", b"PK\x03\x04 not really a zip"))
    assert "damaged" in problem.reason


# ---------------------------------------------------------------- review state


def _state_with_patient(**patient) -> ReviewState:
    from dashboard.services import PatientContext

    state = ReviewState()
    state.patient = PatientContext(identifier="PT-1", **patient)
    return state


def test_duplicates_are_recognised_by_content(patient_lesions, other_lesions):
    state = _state_with_patient()
    first = patient_lesions[0]
    state.add_files([(first.name, first.data), (other_lesions[0].name, other_lesions[0].data)])
    report = state.add_files([("renamed-copy.jpg", first.data), (first.name, first.data)])
    assert report.added == []
    assert [p.kind for p in report.problems] == ["duplicate", "duplicate"]
    assert f"identical to “{first.name}”" in report.problems[0].reason
    assert "the same file" in report.problems[1].reason
    assert len(state.images) == 2


def test_an_image_saved_at_an_earlier_visit_is_linked_to_its_lesion(patient_lesions):
    from dashboard.services import sha256_of

    lesion = SimpleNamespace(id=7, site="torso", label="left scapula", last_seen=None)
    sha = sha256_of(patient_lesions[0].data)
    state = _state_with_patient(known_lesions=[lesion], known_images={sha: (7, "visit of 2024-01-02")})
    report = state.add_files([(patient_lesions[0].name, patient_lesions[0].data)])
    assert report.problems[0].kind == "notice" and "2024-01-02" in report.problems[0].reason
    image = state.images[sha]
    assert (image.existing_lesion_id, image.site, image.label) == (7, "torso", "left scapula")
    state.set_site(sha, "head/neck")  # a lesion does not move: a new site unlinks it
    assert image.existing_lesion_id is None


def test_limits_on_the_number_of_images(other_lesions):
    state = _state_with_patient()
    report = state.add_files([(f.name, f.data) for f in other_lesions], UploadLimits(max_images=2))
    assert len(report.added) == 2 and "at most 2" in report.problems[0].reason


def _fake_result(state: ReviewState, p: list[float], ud: list[float]) -> SimpleNamespace:
    ids = list(state.images)
    table = pd.DataFrame(
        {
            "image_id": ids,
            "p_melanoma": p,
            "p_spread": [0.01] * len(ids),
            "percentile": np.linspace(0, 100, len(ids)),
            "ugly_duckling": ud,
            "triage_score": p,
            "rank": pd.Series(p).rank(ascending=False, method="first").astype(int).to_list(),
            "suspicious": [v >= 0.5 for v in p],
            "outlier": [(not math.isnan(u)) and u >= 2.5 for u in ud],
            "reasons": ["a reason"] * len(ids),
            "x": np.arange(len(ids), dtype=float),
            "y": np.zeros(len(ids)),
        }
    )
    return SimpleNamespace(
        table=table,
        errors=pd.DataFrame(columns=["image_id", "filename", "reason"]),
        notes=[],
        settings={"ud_outlier_z": 2.5},
    )


def test_building_the_review_to_save(patient_lesions):
    state = _state_with_patient(birth_year=1960, sex="female")
    state.add_files([(f.name, f.data) for f in patient_lesions[:3]])
    shas = list(state.images)
    state.set_site(shas[0], "torso")

    with pytest.raises(ReviewNotReady, match="Run the triage"):
        state.build_review("Dr A", "m1", "abc")
    fake = _fake_result(state, [0.2, 0.9, 0.4], [float("nan"), 3.0, 0.1])
    state.run_triage(predictor=None, triage_fn=lambda *a, **k: fake)
    with pytest.raises(ReviewNotReady, match="clinician"):
        state.build_review("  ", "m1", "abc")

    state.set_decision(shas[1], "biopsy", "irregular network")
    state.set_decision(shas[2], None, "comment without a decision is dropped")
    assert state.undecided_suspicious() == []
    review = state.build_review("Dr A", "m1", "abc")
    assert (review.patient_identifier, review.birth_year, review.sex) == ("PT-1", 1960, "female")
    assert [les.rank for les in review.lesions] == [1, 2, 3]
    top = review.lesions[0]
    assert (top.p_melanoma, top.decision_action, top.decision_comment, top.ugly_duckling) == (
        0.9,
        "biopsy",
        "irregular network",
        3.0,
    )
    last = review.lesions[2]
    assert last.ugly_duckling is None and last.site == "torso" and last.decision_comment == ""

    state.set_site(shas[0], "head/neck")  # the score depended on the site: stale now
    assert state.result_is_stale
    with pytest.raises(ReviewNotReady, match="again"):
        state.build_review("Dr A", "m1", "abc")


def test_a_saved_review_is_read_only(patient_lesions):
    state = _state_with_patient()
    state.add_files([(patient_lesions[0].name, patient_lesions[0].data)])
    state.run_triage(None, triage_fn=lambda *a, **k: _fake_result(state, [0.3], [float("nan")]))

    class Store:
        def save_review(self, review):
            self.review = review
            return 42

        def load_visit(self, visit_id):
            return SimpleNamespace(patient_id=5)

    assert state.has_unsaved_work
    assert state.save(Store(), "Dr A", "m1", "abc") == 42
    assert not state.has_unsaved_work and state.patient.patient_id == 5
    with pytest.raises(ReviewNotReady, match="read-only"):
        state.set_decision(next(iter(state.images)), "monitor")


# ---------------------------------------------------------------- numbers next to the scores


def test_operating_point_at_screening_prevalence():
    op = OperatingPoint(threshold=0.3, sensitivity=0.9, specificity=0.8, prevalence=SCREENING_PREVALENCE)
    tp, fp = 0.9 * SCREENING_PREVALENCE, 0.2 * (1 - SCREENING_PREVALENCE)
    assert op.ppv == pytest.approx(tp / (tp + fp))
    assert op.npv == pytest.approx(
        0.8 * (1 - SCREENING_PREVALENCE) / (0.8 * (1 - SCREENING_PREVALENCE) + 0.1 * SCREENING_PREVALENCE)
    )
    assert op.reviews_per_melanoma == pytest.approx(1 / op.ppv)
    per = op.per_1000()
    assert per["melanomas"] == pytest.approx(17.6, abs=0.05) and per["found"] + per["missed"] == per["melanomas"]
    assert "1 in 13 flagged" in performance_sentence(op)
    assert "unvalidated" in performance_sentence(operating_point({"operating_point": {"threshold": 0.5}}))


def test_score_bands_respect_uncertainty():
    assert score_band(0.8, 0.5, 0.01).name == "above"
    assert score_band(0.52, 0.5, 0.05).title == "Above threshold (borderline)"
    assert score_band(0.45, 0.5, 0.05).name == "near"
    assert score_band(0.1, 0.5, 0.01).name == "below"


def test_reason_lines():
    assert reason_lines("a is high; b is odd") == ["a is high.", "b is odd."]
    assert reason_lines(float("nan")) == []


def test_figures_build_and_degrade_gracefully():
    table = pd.DataFrame(
        {
            "image_id": ["a" * 64, "b" * 64, "c" * 64],
            "label": ["one", "two", "three"],
            "rank": [2, 1, 3],
            "p_melanoma": [0.4, 0.8, 0.1],
            "p_spread": [0.02, 0.05, 0.01],
            "ugly_duckling": [0.1, 3.2, -0.5],
            "outlier": [False, True, False],
            "x": [0.0, 1.0, -1.0],
            "y": [0.0, 0.5, 0.2],
        }
    )
    duck = {t.name: t for t in figures.ugly_duckling_map(table, 0.5).data}
    assert set(duck) == {"typical for this patient", "ugly duckling (outlier)"}
    outlier = duck["ugly duckling (outlier)"]  # the outlier sits where its embedding puts it, labelled by rank
    assert (list(outlier.x), list(outlier.y), list(outlier.text)) == ([1.0], [0.5], ["#1"])
    assert sorted(duck["typical for this patient"].text) == ["#2", "#3"]
    ranked = figures.ranked_scores(table, 0.5)
    bars = ranked.data[0]  # highest rank drawn last = on top; bar length is the score, whiskers 2 × TTA spread
    assert list(bars.y) == ["#3 three", "#2 one", "#1 two"]
    assert list(bars.x) == [0.1, 0.4, 0.8]
    np.testing.assert_allclose(bars.error_x.array, [0.02, 0.04, 0.10])
    assert [shape.x0 for shape in ranked.layout.shapes] == [0.5]  # the threshold line
    assert figures.roc_figure(None, None) is None and figures.calibration_figure({}) is None
    assert figures.ugly_duckling_map(table.iloc[0:0], 0.5).data == ()  # no lesions: an empty message figure
    validation = {
        "roc": {"fpr": [0, 0.2, 1], "tpr": [0, 0.8, 1]},
        "pr": {"recall": [0, 0.8, 1], "precision": [1, 0.7, 0.5]},
        "calibration": {
            "mean_predicted": [0.1, 0.5, 0.9],
            "fraction_positive": [0.05, 0.5, 0.8],
            "count": [50, 20, 10],
        },
        "per_dataset": {"isic2020": {"auc": 0.9, "auc_ci": [0.85, 0.94], "n": 150}},
    }
    op = OperatingPoint(0.5, 0.8, 0.7, SCREENING_PREVALENCE)
    roc = {t.name: t for t in figures.roc_figure(validation, op).data}
    assert set(roc) == {"chance", "model", "operating point"}
    assert (list(roc["model"].x), list(roc["model"].y)) == ([0, 0.2, 1], [0, 0.8, 1])
    np.testing.assert_allclose([roc["operating point"].x[0], roc["operating point"].y[0]], [0.3, 0.8])
    pr_figure = figures.pr_figure(validation, op)
    pr = {t.name: t for t in pr_figure.data}  # validation, re-weighted, operating point
    assert len(pr) == 3
    assert (list(pr["validation set"].x), list(pr["validation set"].y)) == ([0, 0.8, 1], [1, 0.7, 0.5])
    p = SCREENING_PREVALENCE
    screening = next(t for name, t in pr.items() if name.startswith("at "))
    # ROC points (0.2, 0.8) and (1, 1) re-weighted to screening prevalence (tpr = 0 has no precision)
    np.testing.assert_allclose(screening.x, [0.8, 1])
    np.testing.assert_allclose(screening.y, [0.8 * p / (0.8 * p + 0.2 * (1 - p)), p])
    np.testing.assert_allclose([pr["operating point"].x[0], pr["operating point"].y[0]], [0.8, op.ppv])
    assert op.ppv == pytest.approx(0.8 * p / (0.8 * p + 0.3 * (1 - p)))
    assert [shape.y0 for shape in pr_figure.layout.shapes] == [p]  # chance at screening prevalence
    calibration = {t.name: t for t in figures.calibration_figure(validation).data}
    model_bins = calibration["model"]
    assert (list(model_bins.x), list(model_bins.y)) == ([0.1, 0.5, 0.9], [0.05, 0.5, 0.8])
    sizes = list(model_bins.marker.size)
    assert sizes[0] > sizes[1] > sizes[2]  # marker area follows the lesions in each bin (50, 20, 10)
    assert per_dataset_table(validation).iloc[0]["ROC AUC 95% CI"] == "0.850–0.940"
    assert list(curve_sets(validation)) == ["validation"]
    nested = {"curves": {"isic2020": validation, "pooled": validation}, "pooled": {"auc": 0.88, "n": 900}}
    assert list(curve_sets(nested)) == ["pooled", "isic2020"]
    assert list(per_dataset_table(nested)["dataset"]) == ["all datasets (pooled)"]


# ---------------------------------------------------------------- saved lesions for the saliency page


def test_a_saved_lesion_image_resolves_for_the_saliency_page(tmp_path, patient_lesions):
    import datetime as dt

    from dashboard.services import DISPLAY_PX, StoredImageError, sha256_of, stored_lesion_image
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
        assert f"visit {visit_id} of 2021-05-0" in stored.source_line() and "left scapula" in stored.source_line()
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


def test_the_review_to_save_keeps_each_score_s_spread_views_and_flag(patient_lesions):
    state = _state_with_patient()
    state.add_files([(f.name, f.data) for f in patient_lesions[:3]])
    fake = _fake_result(state, [0.2, 0.9, 0.4], [float("nan"), 3.0, 0.1])
    fake.tta = 8
    state.run_triage(predictor=None, triage_fn=lambda *a, **k: fake)
    review = state.build_review("Dr A", "m1", "abc")
    assert [(les.p_spread, les.tta_views, les.outlier) for les in review.lesions] == [
        (0.01, 8, True),
        (0.01, 8, False),
        (0.01, 8, False),
    ]


def test_the_review_s_patient_is_named_where_a_page_shows_another():
    state = _state_with_patient()  # PT-1, nothing uploaded
    assert state.other_patient_notice("PT-1") is None
    assert "another patient, PT-1 (no images yet)" in state.other_patient_notice("PT-2")
    assert state.sidebar_status(on_review_page=True) is None
    assert ReviewState().other_patient_notice("PT-2") is None


def test_probabilities_have_one_format_one_decimal_below_ten_per_cent():
    from dashboard.services import pct, score_band

    assert [pct(p) for p in (0.024, 0.0176, 0.86, 0.15, 0.0, 1.0, None)] == [
        "2.4%",
        "1.8%",
        "86%",
        "15%",
        "0.0%",
        "100%",
        "–",
    ]
    assert pct(0.0176, 2) == "1.76%"
    assert "2.4% is below the 3.1% threshold" in score_band(0.024, 0.031, 0.0).explanation


def test_a_text_file_in_a_zip_is_skipped_with_a_notice_not_an_error(patient_lesions):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("visit/notes.txt", "patient prefers morning appointments")
        archive.writestr(f"visit/{patient_lesions[0].name}", patient_lesions[0].data)
    state = _state_with_patient()
    report = state.add_files([("visit.zip", buffer.getvalue())])
    assert len(report.added) == 1
    (problem,) = report.problems
    assert problem.filename.endswith("notes.txt") and problem.kind == "skipped" and "not an image" in problem.reason


def test_saving_clears_the_upload_messages(patient_lesions):
    state = _state_with_patient()
    state.add_files([(patient_lesions[0].name, patient_lesions[0].data), ("broken.jpg", b"\xff\xd8 nope")])
    assert [p.kind for p in state.problems] == ["error"]
    state.run_triage(None, triage_fn=lambda *a, **k: _fake_result(state, [0.3], [float("nan")]))

    class Store:
        def save_review(self, review):
            return 1

        def load_visit(self, visit_id):
            return SimpleNamespace(patient_id=5)

    state.save(Store(), "Dr A", "m1", "abc")
    assert state.problems == []


def test_a_saved_review_is_named_by_the_patient_s_visit_number(patient_lesions):
    state = _state_with_patient()
    state.add_files([(patient_lesions[0].name, patient_lesions[0].data)])
    state.run_triage(None, triage_fn=lambda *a, **k: _fake_result(state, [0.3], [float("nan")]))

    class Store:
        def save_review(self, review):
            return 17  # the global id

        def load_visit(self, visit_id):
            return SimpleNamespace(patient_id=5, number=2)

    state.save(Store(), "Dr A", "m1", "abc")
    assert state.saved_visit_label() == "visit 2"


def test_a_draft_brings_back_images_sites_labels_decisions_and_notes(patient_lesions):
    import datetime as dt

    from dashboard.services import resume_draft

    state = _state_with_patient(birth_year=1950, sex="female")
    state.add_files([(f.name, f.data) for f in patient_lesions[:2]])
    a, b = list(state.images)
    state.set_site(a, "torso")
    state.set_label(b, "left calf")
    state.set_decision(a, "biopsy", "irregular")
    state.notes = "itchy since spring"
    draft = SimpleNamespace(
        state=state.draft_state(),
        updated_at=dt.datetime.now(dt.UTC),
        images=[SimpleNamespace(upload_sha256=s, filename=n, data=d) for s, n, d in state.draft_images()],
    )
    resumed = resume_draft(draft)
    assert (resumed.patient.identifier, resumed.patient.birth_year, resumed.patient.sex) == ("PT-1", 1950, "female")
    assert [(i.filename, i.site, i.label) for i in resumed.images.values()] == [
        (i.filename, i.site, i.label) for i in state.images.values()
    ]
    (key,) = [k for k, i in resumed.images.items() if i.filename == state.images[a].filename]
    assert (resumed.decision(key).action, resumed.decision(key).comment) == ("biopsy", "irregular")
    assert resumed.notes == "itchy since spring" and resumed.result is None
