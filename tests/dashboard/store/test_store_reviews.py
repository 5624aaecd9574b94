"""Saving reviews and reading the history back, on every backend."""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard.store import CaseStore, NotFoundError, validation
from dashboard.store.models import AuditEvent, Decision, Lesion, LesionImage, Patient, Prediction, Visit

FIRST_VISIT = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
SECOND_VISIT = FIRST_VISIT + timedelta(days=182)


def _counts(store: CaseStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            m.__tablename__: conn.scalar(select(func.count()).select_from(m)) or 0
            for m in (Patient, Visit, Lesion, LesionImage, Prediction, Decision)
        }


def test_two_visits_survive_a_restart(db_url, data_dir, sample_images, make_lesion, make_review):
    a, b, c, d = sample_images[:4]
    with CaseStore.from_url(db_url, data_dir) as store:
        v1 = store.save_review(
            make_review(
                [
                    make_lesion(
                        a,
                        site="torso",
                        lesion_label="L1 left shoulder",
                        p_melanoma=0.62,
                        ugly_duckling=1.8,
                        triage_score=0.81,
                        rank=1,
                        decision_action="biopsy",
                        decision_comment="asymmetric, new",
                    ),
                    make_lesion(
                        b,
                        site="lower extremity",
                        lesion_label="L2 right shin",
                        p_melanoma=0.08,
                        ugly_duckling=0.2,
                        triage_score=0.10,
                        rank=3,
                        decision_action="reassure",
                    ),
                    make_lesion(
                        c,
                        site="head/neck",
                        lesion_label="L3 neck",
                        p_melanoma=0.21,
                        ugly_duckling=0.4,
                        triage_score=0.30,
                        rank=2,
                    ),
                ],
                visit_time=FIRST_VISIT,
                clinician="Dr. Ada",
                notes="first screening",
            )
        )
        patient = store.search_patients("pseudo-0001")[0]
        first_lesions = {les.label: les.id for les in store.list_lesions(patient.id)}

    # Six months later, a new process opens the same store.
    with CaseStore.from_url(db_url, data_dir) as store:
        v2 = store.save_review(
            make_review(
                [
                    make_lesion(
                        d,
                        site="torso",
                        lesion_label="L1 left shoulder",
                        existing_lesion_id=first_lesions["L1 left shoulder"],
                        p_melanoma=0.35,
                        ugly_duckling=None,
                        triage_score=0.40,
                        rank=1,
                        decision_action="monitor",
                        decision_comment="benign on histology, follow up",
                    ),
                    make_lesion(
                        b,
                        site="lower extremity",
                        lesion_label="L2 right shin",
                        existing_lesion_id=first_lesions["L2 right shin"],
                        p_melanoma=0.07,
                        triage_score=0.09,
                        rank=2,
                    ),
                ],
                visit_time=SECOND_VISIT,
                clinician="Dr. Bea",
                birth_year=None,  # not re-entered: the stored value stays
                sex="unknown",
            )
        )
        assert v2 != v1

        [found] = store.search_patients("0001")
        assert found.visit_count == 2
        assert found.last_visit_time == SECOND_VISIT
        assert (found.birth_year, found.sex) == (1968, "female")

        timeline = store.patient_timeline(found.id)
        assert [v.id for v in timeline.visits] == [v1, v2]
        first, second = timeline.visits
        assert (first.visit_time, first.clinician, first.notes) == (FIRST_VISIT, "Dr. Ada", "first screening")
        assert second.clinician == "Dr. Bea"
        assert first.model_version == "effnet-lite0-v1"
        # Lesions come back in triage-rank order with their scores and decisions.
        assert [les.label for les in first.lesions] == ["L1 left shoulder", "L3 neck", "L2 right shin"]
        top = first.lesions[0]
        assert top.prediction is not None
        assert (top.prediction.p_melanoma, top.prediction.ugly_duckling, top.prediction.triage_score) == (
            0.62,
            1.8,
            0.81,
        )
        assert top.prediction.model_checksum == "sha256:" + "0" * 64
        assert top.decision is not None
        assert (top.decision.action, top.decision.clinician, top.decision.comment) == (
            "biopsy",
            "Dr. Ada",
            "asymmetric, new",
        )
        assert first.lesions[1].decision is None  # L3 was left undecided
        assert top.image.path.read_bytes() == a
        assert top.image.original_filename == "upload.jpg"
        # The same mole is followed: same lesion id in both visits.
        assert second.lesions[0].lesion_id == top.lesion_id
        assert second.lesions[0].prediction.ugly_duckling is None

        lesions = {les.label: les for les in store.list_lesions(found.id)}
        assert set(lesions) == {"L1 left shoulder", "L2 right shin", "L3 neck"}
        shoulder = lesions["L1 left shoulder"]
        assert (shoulder.visit_count, shoulder.first_seen, shoulder.last_seen) == (
            2,
            FIRST_VISIT.astimezone().date(),  # the visits' local days
            SECOND_VISIT.astimezone().date(),
        )
        assert (shoulder.latest_p_melanoma, shoulder.latest_action) == (0.35, "monitor")
        assert lesions["L3 neck"].visit_count == 1

        trend = store.lesion_score_trend(shoulder.id)
        assert [(p.visit_id, p.visit_time, p.p_melanoma, p.triage_score) for p in trend] == [
            (v1, FIRST_VISIT, 0.62, 0.81),
            (v2, SECOND_VISIT, 0.35, 0.40),
        ]

        history = store.decision_history(found.id)
        assert [(h.lesion_label, h.action, h.clinician, h.visit_id) for h in history] == [
            ("L1 left shoulder", "biopsy", "Dr. Ada", v1),
            ("L2 right shin", "reassure", "Dr. Ada", v1),
            ("L1 left shoulder", "monitor", "Dr. Bea", v2),
        ]

        visit = store.load_visit(v2)
        assert visit.patient_id == found.id
        assert [les.image.path.read_bytes() for les in visit.lesions] == [d, b]
        assert all(les.image.path.is_relative_to(store.data_dir) for les in visit.lesions)

        actions = [(e.action, e.actor) for e in store.audit_events(found.id)]
        assert actions == [
            ("patient.create", "Dr. Ada"),
            ("review.save", "Dr. Ada"),
            ("decision.record", "Dr. Ada"),
            ("decision.record", "Dr. Ada"),
            ("review.save", "Dr. Bea"),
            ("decision.record", "Dr. Bea"),
        ]
        decisions = [e.detail for e in store.audit_events(found.id, action="decision.record")]
        assert [(d["visit_id"], d["action"], d["model_id"]) for d in decisions] == [
            (v1, "biopsy", "effnet-lite0-v1"),
            (v1, "reassure", "effnet-lite0-v1"),
            (v2, "monitor", "effnet-lite0-v1"),
        ]


def test_each_decision_s_audit_entry_keeps_the_score_it_was_taken_on(store, sample_images, make_lesion, make_review):
    review = make_review(
        [
            make_lesion(sample_images[0], p_melanoma=0.123456789, decision_action="excise"),
            make_lesion(sample_images[1], p_melanoma=0.5, decision_action="reassure", lesion_label="other"),
            make_lesion(sample_images[2], p_melanoma=0.9, lesion_label="undecided"),  # no decision: no entry
        ]
    )
    visit_id = store.save_review(review)
    patient_id = store.load_visit(visit_id).patient_id
    entries = [e.detail for e in store.audit_events(patient_id, action="decision.record")]
    assert [(d["action"], d["p_melanoma"]) for d in entries] == [("excise", 0.1235), ("reassure", 0.5)]


def test_identical_image_is_stored_once(store, sample_images, make_lesion, make_review):
    img = sample_images[0]
    v1 = store.save_review(make_review([make_lesion(img, lesion_label="A")]))
    v2 = store.save_review(
        make_review(
            [make_lesion(img, lesion_label="B", original_filename="again.jpg")],
            patient_identifier="PSEUDO-0002",
        )
    )
    files = [p for p in store.data_dir.rglob("*") if p.is_file()]
    assert len(files) == 1
    first, second = store.load_visit(v1).lesions[0].image, store.load_visit(v2).lesions[0].image
    assert first.sha256 == second.sha256 and first.id != second.id
    assert store.image_path(first.sha256) == files[0]
    assert files[0].read_bytes() == img
    assert files[0].relative_to(store.data_dir).as_posix() == (
        f"{first.sha256[:2]}/{first.sha256[2:4]}/{first.sha256}.jpg"
    )


def test_failure_inside_the_transaction_saves_nothing(store, sample_images, make_lesion, make_review, monkeypatch):
    store.save_review(make_review([make_lesion(sample_images[0])]))
    before = _counts(store)
    # Let an out-of-range score past validation so the database's CHECK constraint
    # fails at flush, after patient, visit and the first lesion were already sent.
    monkeypatch.setattr(validation, "score", lambda value, what, unit_interval=False: float(value))
    bad = make_review(
        [make_lesion(sample_images[1]), make_lesion(sample_images[2], p_melanoma=1.5)],
        patient_identifier="PSEUDO-NEW",
    )
    with pytest.raises(Exception, match=r"(?i)check"):
        store.save_review(bad)
    assert _counts(store) == before
    assert store.search_patients("PSEUDO-NEW") == []


def test_find_or_create_patient(store):
    created = store.find_or_create_patient("MRN-77", None, "unknown", "Dr. Ada")
    again = store.find_or_create_patient("  MRN-77 ", 1980, "male", "Dr. Bea")
    assert again.id == created.id
    assert (again.birth_year, again.sex) == (1980, "male")  # unknowns filled in
    with pytest.raises(ValueError, match="birth year 1980, not 1981"):
        store.find_or_create_patient("MRN-77", 1981, "male", "Dr. Bea")
    with pytest.raises(ValueError, match="recorded as male, not female"):
        store.find_or_create_patient("MRN-77", None, "female", "Dr. Bea")
    assert store.get_patient(created.id).birth_year == 1980
    events = [(e.action, e.detail) for e in store.audit_events(created.id)]
    assert events == [("patient.create", {}), ("patient.update", {"fields": ["birth_year", "sex"]})]


def test_search_is_case_insensitive_and_literal(store):
    for ident in ("ab%12", "AB_34", "abx56", "zz-99"):
        store.find_or_create_patient(ident, None, "unknown", "Dr. Ada")
    # Order depends on the backend's collation; membership does not.
    assert sorted(p.identifier for p in store.search_patients("AB")) == ["AB_34", "ab%12", "abx56"]
    assert [p.identifier for p in store.search_patients("%")] == ["ab%12"]
    assert [p.identifier for p in store.search_patients("b_")] == ["AB_34"]
    assert store.search_patients("   ") == []
    assert store.search_patients("nobody") == []


def test_export_contains_the_saved_history(store, sample_images, make_lesion, make_review):
    v1 = store.save_review(
        make_review(
            [
                make_lesion(
                    sample_images[0],
                    lesion_label="L1",
                    p_melanoma=0.7,
                    triage_score=0.9,
                    decision_action="excise",
                    decision_comment='=HYPERLINK("x")',
                ),
                make_lesion(
                    sample_images[1],
                    lesion_label="L2",
                    site="palms/soles",
                    p_melanoma=0.1,
                    triage_score=0.2,
                    rank=2,
                ),
            ],
            visit_time=FIRST_VISIT,
            notes="line one\nline two, with comma",
        )
    )
    pid = store.load_visit(v1).patient_id
    rows = list(csv.DictReader(io.StringIO(store.export_patient_history(pid, "csv", actor="Dr. Ada"))))
    assert len(rows) == 2
    assert rows[0]["patient_identifier"] == "PSEUDO-0001"
    assert rows[0]["visit_time"] == FIRST_VISIT.isoformat()
    assert rows[0]["visit_notes"] == "line one\nline two, with comma"
    assert (rows[0]["lesion_label"], rows[0]["decision_action"], float(rows[0]["p_melanoma"])) == (
        "L1",
        "excise",
        0.7,
    )
    # Defused for spreadsheets: a formula typed as a comment stays text.
    assert rows[0]["decision_comment"] == '\'=HYPERLINK("x")'
    assert (rows[1]["site"], rows[1]["decision_action"], rows[1]["ugly_duckling"]) == ("palms/soles", "", "")

    doc = json.loads(store.export_patient_history(pid, "json", actor="Dr. Ada"))
    assert doc["patient"]["identifier"] == "PSEUDO-0001"
    [visit] = doc["visits"]
    assert visit["id"] == v1 and visit["notes"] == "line one\nline two, with comma"
    assert visit["lesions"][0]["predictions"][0]["p_melanoma"] == 0.7
    assert visit["lesions"][0]["decisions"][0]["comment"] == '=HYPERLINK("x")'
    assert "path" not in visit["lesions"][0]["image"]  # no absolute server paths leave the store

    exports = [e.detail["format"] for e in store.audit_events(pid) if e.action == "patient.export"]
    assert exports == ["csv", "json"]
    with pytest.raises(ValueError, match="unknown export format 'pdf'"):
        store.export_patient_history(pid, "pdf")  # type: ignore[arg-type]


def test_identifiers_stay_out_of_logs_and_audit(store, sample_images, make_lesion, make_review, caplog):
    ident = "SECRET-MRN-4242"
    with caplog.at_level(logging.DEBUG, logger="dashboard.store"):
        v1 = store.save_review(make_review([make_lesion(sample_images[0])], patient_identifier=ident))
        pid = store.load_visit(v1).patient_id
        store.export_patient_history(pid, "json", actor="Dr. Ada")
    assert caplog.records, "the store should log what it does (by id)"
    assert ident not in caplog.text
    assert ident not in repr(store.get_patient(pid))
    with store.engine.connect() as conn:
        events = conn.execute(select(AuditEvent.actor, AuditEvent.action, AuditEvent.detail)).all()
    assert events and ident not in repr(events)


def test_unknown_ids_raise_not_found(store):
    for call in (
        lambda: store.patient_timeline(999),
        lambda: store.load_visit(999),
        lambda: store.lesion_score_trend(999),
        lambda: store.list_lesions(999),
        lambda: store.decision_history(999),
        lambda: store.image_path("ab" * 32),
    ):
        with pytest.raises(NotFoundError):
            call()


def test_a_file_name_that_reads_like_personal_data_is_not_stored(store, make_image, make_lesion, make_review):
    png = make_image(8, fmt="PNG")
    named = make_lesion(png, original_filename="patients/Doe Jane/Doe_Jane_1961-03-02_back.JPG")
    v = store.save_review(make_review([named]))
    image = store.load_visit(v).lesions[0].image
    assert image.original_filename == "image.jpg"
    exported = store.export_patient_history(store.load_visit(v).patient_id, "csv")
    assert "Doe" not in exported and "1961" not in exported


def test_uploaded_filename_is_text_only(store, make_image, make_lesion, make_review):
    png = make_image(7, fmt="PNG")
    v = store.save_review(make_review([make_lesion(png, original_filename="../../etc/passwd\x00.jpg")]))
    image = store.load_visit(v).lesions[0].image
    assert image.original_filename == "passwd.jpg"  # display text: control characters and folders dropped
    # Extension from the decoded format (PNG), location from the hash; the name plays no part.
    assert image.relpath == f"{image.sha256[:2]}/{image.sha256[2:4]}/{image.sha256}.png"
    assert image.path.is_file() and image.path.is_relative_to(store.data_dir)
    assert not (Path(store.data_dir).parent / "etc").exists()
