"""The review in progress without Streamlit: uploads taken in (duplicates, earlier images, limits), building
the record to save, read-only once saved, and the draft kept on the server."""

from __future__ import annotations

import io
import math
import zipfile
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dashboard.patient_form import PatientContext
from dashboard.review_draft import draft_images, draft_of, resume_draft
from dashboard.review_record import ReviewNotReady, review_to_save
from dashboard.review_state import ReviewState
from dashboard.uploads import UploadLimits
from data.hashing import sha256_bytes as sha256_of


def _state_with_patient(**patient) -> ReviewState:

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


def test_the_image_that_crosses_the_review_s_total_is_refused_and_the_earlier_ones_stay(other_lesions):
    first, second, third = other_lesions[:3]
    # Each image alone is far under the limit; the three together are one byte over it.
    limits = UploadLimits(max_total_bytes=len(first.data) + len(second.data) + len(third.data) - 1)
    state = _state_with_patient()
    report = state.add_files([(f.name, f.data) for f in (first, second, third)], limits)
    assert report.added == [sha256_of(first.data), sha256_of(second.data)]
    [problem] = report.problems
    assert problem.filename == third.name and problem.kind == "error"
    assert "may total" in problem.reason and "not added" in problem.reason
    assert list(state.images) == report.added and state.total_bytes <= limits.max_total_bytes


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
        review_to_save(state, "Dr A", "m1", "abc")
    fake = _fake_result(state, [0.2, 0.9, 0.4], [float("nan"), 3.0, 0.1])
    state.run_triage(predictor=None, triage_fn=lambda *a, **k: fake)
    with pytest.raises(ReviewNotReady, match="clinician"):
        review_to_save(state, "  ", "m1", "abc")

    state.set_decision(shas[1], "biopsy", "irregular network")
    state.set_decision(shas[2], None, "comment without a decision is dropped")
    assert state.undecided_suspicious() == []
    review = review_to_save(state, "Dr A", "m1", "abc")
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
        review_to_save(state, "Dr A", "m1", "abc")


def test_a_monitor_decision_carries_its_repeat_imaging_interval_to_the_save_and_the_draft(patient_lesions):
    import datetime as dt

    state = _state_with_patient(birth_year=1960, sex="female")
    state.add_files([(f.name, f.data) for f in patient_lesions[:2]])
    a, b = list(state.images)
    state.set_decision(a, "monitor")
    assert state.decision(a).review_months == 3  # short-term monitoring unless another is chosen
    state.set_decision(a, "monitor", review_months=12)
    state.set_decision(a, "monitor", "flat, slightly asymmetric")  # a comment keeps the chosen interval
    assert state.decision(a).review_months == 12
    state.set_decision(b, "monitor", review_months=6)
    state.set_decision(b, "biopsy")  # no interval on another decision
    assert state.decision(b).review_months is None
    with pytest.raises(ValueError, match="not offered"):
        state.set_decision(a, "monitor", review_months=5)

    fake = _fake_result(state, [0.2, 0.9], [float("nan"), float("nan")])
    state.run_triage(predictor=None, triage_fn=lambda *a, **k: fake)
    saved = {
        les.decision_action: les.decision_review_months for les in review_to_save(state, "Dr A", "m1", "abc").lesions
    }
    assert saved == {"monitor": 12, "biopsy": None}
    draft = SimpleNamespace(
        state=draft_of(state),
        updated_at=dt.datetime.now(dt.UTC),
        images=[SimpleNamespace(upload_sha256=s, filename=n, data=d) for s, n, d in draft_images(state)],
    )
    resumed = resume_draft(draft)
    (key,) = [k for k, i in resumed.images.items() if i.filename == state.images[a].filename]
    assert (resumed.decision(key).action, resumed.decision(key).review_months) == ("monitor", 12)
    older = draft.state | {"decisions": {a: ["monitor", ""]}}  # a draft saved before intervals existed
    resumed = resume_draft(SimpleNamespace(state=older, updated_at=draft.updated_at, images=draft.images))
    assert resumed.decision(key).review_months == 3


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


def test_the_review_to_save_keeps_each_score_s_spread_views_and_flag(patient_lesions):
    state = _state_with_patient()
    state.add_files([(f.name, f.data) for f in patient_lesions[:3]])
    fake = _fake_result(state, [0.2, 0.9, 0.4], [float("nan"), 3.0, 0.1])
    fake.tta = 8
    state.run_triage(predictor=None, triage_fn=lambda *a, **k: fake)
    review = review_to_save(state, "Dr A", "m1", "abc")
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

    state = _state_with_patient(birth_year=1950, sex="female")
    state.add_files([(f.name, f.data) for f in patient_lesions[:2]])
    a, b = list(state.images)
    state.set_site(a, "torso")
    state.set_label(b, "left calf")
    state.set_decision(a, "biopsy", "irregular")
    state.notes = "itchy since spring"
    draft = SimpleNamespace(
        state=draft_of(state),
        updated_at=dt.datetime.now(dt.UTC),
        images=[SimpleNamespace(upload_sha256=s, filename=n, data=d) for s, n, d in draft_images(state)],
    )
    resumed = resume_draft(draft)
    assert (resumed.patient.identifier, resumed.patient.birth_year, resumed.patient.sex) == ("PT-1", 1950, "female")
    assert [(i.filename, i.site, i.label) for i in resumed.images.values()] == [
        (i.filename, i.site, i.label) for i in state.images.values()
    ]
    (key,) = [k for k, i in resumed.images.items() if i.filename == state.images[a].filename]
    assert (resumed.decision(key).action, resumed.decision(key).comment) == ("biopsy", "irregular")
    assert resumed.notes == "itchy since spring" and resumed.result is None


def test_the_date_images_were_taken_is_checked_saved_and_kept_in_the_draft(patient_lesions):
    """Images taken before today: the date goes into the saved record and survives a reload."""
    import datetime as dt

    state = _state_with_patient(birth_year=1950, sex="female")
    state.add_files([(f.name, f.data) for f in patient_lesions[:1]])
    with pytest.raises(ValueError, match="in the future"):
        state.set_taken_on(dt.date.today() + dt.timedelta(days=3))
    with pytest.raises(ValueError, match="before the patient's birth year 1950"):
        state.set_taken_on(dt.date(1949, 12, 31))
    assert state.taken_on is None  # the refused dates changed nothing
    state.set_taken_on(dt.date(2024, 5, 17))
    draft = SimpleNamespace(
        state=draft_of(state),
        updated_at=dt.datetime.now(dt.UTC),
        images=[SimpleNamespace(upload_sha256=s, filename=n, data=d) for s, n, d in draft_images(state)],
    )
    assert resume_draft(draft).taken_on == dt.date(2024, 5, 17)
    state.run_triage(None, triage_fn=lambda *a, **k: _fake_result(state, [0.3], [float("nan")]))
    assert review_to_save(state, "Dr A", "m1", "abc").taken_on == dt.date(2024, 5, 17)
    state.set_taken_on(None)
    assert draft_of(state)["taken_on"] is None


def test_images_taken_two_years_ago_are_scored_and_saved_at_the_age_of_then(tmp_path, patient_lesions):
    """The model is given the patient's age on the visit's date (the day the images were taken when entered),
    not today's; the saved visit is dated that day, so its scores and its age agree."""
    import datetime as dt

    from dashboard.store import CaseStore

    today = dt.date.today()
    taken_on = today.replace(year=today.year - 2, day=1)
    state = _state_with_patient(birth_year=1970, sex="female")
    state.add_files([(f.name, f.data) for f in patient_lesions[:1]])
    state.set_taken_on(taken_on)
    assert state.visit_day() == taken_on
    assert state.patient_age() == state.patient_info().age == float(taken_on.year - 1970)
    assert (
        state.patient.describe(state.visit_day())
        == f"PT-1 · born 1970 (≈{taken_on.year - 1970} y on {taken_on}) · female"
    )

    given = []

    def triage(predictor, lesions, patient, **kwargs):
        given.append(patient)
        return _fake_result(state, [0.3], [float("nan")])

    state.run_triage(None, triage_fn=triage)
    assert [(p.age, p.sex) for p in given] == [(float(today.year - 2 - 1970), "female")]

    with CaseStore.from_url(f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "images") as store:
        visit = store.load_visit(state.save(store, "Dr A", "m1", "abc"))
        assert visit.image_date == taken_on
        assert state.patient.age(visit.image_date) == given[0].age

    # Dated today instead, the age differs: the scores were computed for another age, so they are stale.
    fresh = _state_with_patient(birth_year=1970, sex="female")
    fresh.add_files([(f.name, f.data) for f in patient_lesions[:1]])
    fresh.set_taken_on(taken_on)
    fresh.run_triage(None, triage_fn=lambda *a, **k: _fake_result(fresh, [0.3], [float("nan")]))
    fresh.set_taken_on(None)
    assert fresh.patient_age() == float(today.year - 1970) and fresh.result_is_stale
    with pytest.raises(ReviewNotReady, match="age on the date the images were taken"):
        review_to_save(fresh, "Dr A", "m1", "abc")


class _Store:
    """The one store call the other-patient check makes, recorded; ``fails``: it raises as a lost database."""

    def __init__(self, elsewhere=(), fails=False):
        self.elsewhere, self.fails, self.asked = set(elsewhere), fails, []

    def images_saved_for_other_patients(self, shas, patient_id):
        from sqlalchemy.exc import OperationalError

        self.asked.append((list(shas), patient_id))
        if self.fails:
            raise OperationalError("SELECT", {}, Exception("server closed the connection"))
        return self.elsewhere & set(shas)


def test_images_saved_for_another_patient_are_warned_about_not_refused(other_lesions, caplog):
    state = _state_with_patient(patient_id=4)
    added = state.add_files([(f.name, f.data) for f in other_lesions[:2]]).added
    store = _Store(elsewhere={added[1]})
    assert state.flag_saved_for_other_patients(store, added) == 1
    assert store.asked == [(added, 4)]  # this patient's own saved images are not "elsewhere"
    [warning] = [p for p in state.problems if p.kind == "other_patient"]
    assert warning.filename == other_lesions[1].name and "already saved for another patient" in warning.reason
    assert len(state.images) == 2  # kept: the earlier save may be the mistake
    # Without the store, or with it failing, the review goes on unchecked (the failure logged).
    assert state.flag_saved_for_other_patients(None, added) == 0
    assert state.flag_saved_for_other_patients(_Store(fails=True), added) == 0
    assert "checking new images against other patients failed (OperationalError)" in caplog.text
    assert state.flag_saved_for_other_patients(store, []) == 0 and len(store.asked) == 1  # nothing new: no query


def test_the_review_page_s_sections_do_not_reach_into_each_other():
    # The patient section called the images section's helper for this check; it is the review's own now.
    import ast
    from pathlib import Path

    import dashboard

    folder = Path(dashboard.__file__).parent
    for section, other in (("review_patient_ui", "review_images_ui"), ("review_images_ui", "review_patient_ui")):
        tree = ast.parse((folder / f"{section}.py").read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        for node in (n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)):  # "from dashboard import x" too
            imported |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        assert f"dashboard.{other}" not in imported, f"{section} imports {other}"


def test_the_review_to_save_keeps_each_images_follow_up_link(patient_lesions):
    """An image linked to a known lesion is saved as that lesion's follow-up, not as a new lesion (its history
    and decisions stay one mole's); an unlinked image is saved as a new lesion."""
    lesion = SimpleNamespace(id=7, site="torso", label="left scapula", last_seen=None)
    linked = sha256_of(patient_lesions[0].data)
    state = _state_with_patient(known_lesions=[lesion], known_images={linked: (7, "visit of 2024-01-02")})
    state.add_files([(f.name, f.data) for f in patient_lesions[:2]])
    fake = _fake_result(state, [0.2, 0.3], [float("nan"), float("nan")])
    state.run_triage(predictor=None, triage_fn=lambda *a, **k: fake)
    review = review_to_save(state, "Dr A", "m1", "abc")
    assert {les.original_filename: les.existing_lesion_id for les in review.lesions} == {
        patient_lesions[0].name: 7,
        patient_lesions[1].name: None,
    }


def test_a_resumed_draft_of_a_known_patient_keeps_its_follow_up_links(app_env, patient_lesions):
    """The draft of a review of a patient already in the store comes back with that patient's saved lesions,
    so an image linked as a follow-up is still that lesion's follow-up (not silently a new lesion)."""
    import datetime as dt

    from dashboard.patient_form import patient_from_store
    from dashboard.store import LesionReview, ReviewToSave

    first = patient_lesions[0]
    saved = LesionReview(
        image_bytes=first.data, original_filename=first.name, site="torso", lesion_label="scapula",
        p_melanoma=0.1, triage_score=0.1, rank=1,
    )  # fmt: skip
    with app_env.store() as store:
        store.save_review(
            ReviewToSave(
                patient_identifier="PT-DRAFT-LINK", birth_year=1970, sex="male", clinician="dr.a",
                model_version="m", model_checksum="c", visit_time=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
                lesions=[saved],
            )
        )  # fmt: skip
        patient_id = store.find_patient_id("PT-DRAFT-LINK")
        [lesion] = store.list_lesions(patient_id)
        state = ReviewState(patient=patient_from_store(store, patient_id))
        state.add_files([(patient_lesions[1].name, patient_lesions[1].data)])
        [sha] = state.images
        state.link_lesion(sha, lesion.id)
        draft = SimpleNamespace(
            state=draft_of(state),
            updated_at=dt.datetime.now(dt.UTC),
            images=[SimpleNamespace(upload_sha256=s, filename=n, data=d) for s, n, d in draft_images(state)],
        )
        resumed = resume_draft(draft, store)
    assert resumed.patient.patient_id == patient_id
    [image] = resumed.images.values()
    assert (image.existing_lesion_id, image.label, image.site) == (lesion.id, "scapula", "torso")


def test_a_comment_typed_before_the_decision_survives_a_reload(patient_lesions):
    import datetime as dt

    state = _state_with_patient()
    state.add_files([(patient_lesions[0].name, patient_lesions[0].data)])
    [sha] = state.images
    state.set_decision(sha, None, "asymmetric, ask about change")
    draft = SimpleNamespace(
        state=draft_of(state),
        updated_at=dt.datetime.now(dt.UTC),
        images=[SimpleNamespace(upload_sha256=s, filename=n, data=d) for s, n, d in draft_images(state)],
    )
    back = resume_draft(draft)
    [key] = back.images
    resumed = back.decision(key)
    assert (resumed.action, resumed.comment) == (None, "asymmetric, ask about change")
