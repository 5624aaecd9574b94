"""Patient records: find or create a patient, and read their visits, lesions, score trends and decisions."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from dashboard.store import export, validation, views
from dashboard.store.core import ExportFormat, NotFoundError, StoreCore, get_row, id_batches, patient_numbers
from dashboard.store.files import is_sha256
from dashboard.store.models import (
    AuditEvent,
    Decision,
    Lesion,
    LesionImage,
    Patient,
    Prediction,
    Visit,
    identifier_search_key,
)
from dashboard.store.records import (
    DecisionView,
    LesionSummary,
    PatientRecord,
    PatientSummary,
    PatientTimeline,
    TrendPoint,
    VisitView,
    from_attributes,
    visit_date,
)
from dashboard.store.worklist import review_due

# Log lines carry database ids only: identifiers are personal data.
logger = logging.getLogger(__name__)


class PatientRecords(StoreCore):
    def find_or_create_patient(self, identifier: str, birth_year: int | None, sex: str, actor: str) -> PatientRecord:
        identifier = validation.identifier(identifier)
        birth_year = validation.birth_year(birth_year)
        sex = validation.sex(sex)
        actor = validation.name(actor, "actor")
        with self._write.begin() as session:
            patient = get_or_create_patient(session, identifier, birth_year, sex, actor)
            return views.patient_record(patient)

    def set_body_region(self, lesion_id: int, region: str | None, *, actor: str) -> str | None:
        """Place a saved lesion on the body map (or clear its region); audited. Returns the region.

        The region must lie on the lesion's recorded site; a lesion recorded as "unknown" takes the
        region's site.
        """
        actor = validation.name(actor, "actor")
        with self._write.begin() as session:
            lesion = get_row(session, Lesion, lesion_id, "lesion")
            region, site = validation.body_region(region, lesion.site)
            old = (lesion.body_region, lesion.site)
            lesion.body_region, lesion.site = region, site
            if (region, site) != old:
                session.add(
                    AuditEvent(
                        actor=actor,
                        action="lesion.region",
                        patient_id=lesion.patient_id,
                        detail={"lesion_id": lesion.id, "old": old[0], "new": region, "site": site},
                    )
                )
            return region

    def get_patient(self, patient_id: int) -> PatientRecord:
        with self._read() as session:
            return views.patient_record(get_row(session, Patient, patient_id, "patient"))

    def search_patients(self, partial_identifier: str, limit: int = 50) -> list[PatientSummary]:
        """Patients whose identifier contains the text (case-insensitive). Blank finds nothing."""
        needle = (partial_identifier or "").strip() if isinstance(partial_identifier, str) else ""
        if not needle:
            return []
        stmt = (
            select(Patient)
            # autoescape: "%" and "_" typed by the user match literally.
            .where(Patient.identifier_key.contains(identifier_search_key(needle), autoescape=True))
            .order_by(Patient.identifier)
            .limit(limit)
        )
        with self._read() as session:
            patients = list(session.scalars(stmt))
            # The found patients' visits only (a GROUP BY over the whole visit table grew with the clinic).
            visits = _visit_facts(session, [p.id for p in patients])
            return [
                from_attributes(
                    PatientSummary,
                    p,
                    visit_count=visits[p.id].count if p.id in visits else 0,
                    last_visit_time=visits[p.id].last_saved if p.id in visits else None,
                    last_visit_date=visits[p.id].last_day if p.id in visits else None,
                )
                for p in patients
            ]

    def images_saved_for_other_patients(self, hashes: Iterable[str], patient_id: int | None) -> set[str]:
        """Those of ``hashes`` (an upload's SHA-256, or a stored copy's) that are saved under a lesion of a
        patient other than ``patient_id`` (None: of any patient). One photo belongs to one patient's lesion:
        found elsewhere, the review is probably of the wrong patient, or the files are mixed up."""
        wanted = {h for h in hashes if isinstance(h, str)}
        others = () if patient_id is None else (Lesion.patient_id != patient_id,)
        found: set[str] = set()
        with self._read() as session:
            for _, sha256, source_sha256 in images_by_digest(session, wanted, *others):
                found |= {sha256, source_sha256} & wanted
        return found

    def find_patient_id(self, identifier: str) -> int | None:
        """The patient recorded under exactly this identifier (surrounding blanks ignored), or None."""
        identifier = identifier.strip() if isinstance(identifier, str) else ""
        with self._read() as session:
            return session.scalar(select(Patient.id).where(Patient.identifier == identifier)) if identifier else None

    def patient_timeline(self, patient_id: int) -> PatientTimeline:
        """The patient's visits, oldest first by the day their images were taken."""
        with self._read() as session:
            patient = get_row(session, Patient, patient_id, "patient")
            visits = session.scalars(
                select(Visit).where(Visit.patient_id == patient_id).options(*views.VISIT_LOAD)
            ).all()
            numbers = patient_numbers(session, patient_id)
            ordered = sorted(visits, key=lambda v: numbers[0][v.id])
            return PatientTimeline(
                patient=views.patient_record(patient), visits=tuple(self._visit(v, numbers) for v in ordered)
            )

    def load_visit(self, visit_id: int) -> VisitView:
        with self._read() as session:
            visit = session.scalar(select(Visit).where(Visit.id == visit_id).options(*views.VISIT_LOAD))
            if visit is None:
                raise NotFoundError(f"no visit with id {visit_id}")
            return self._visit(visit, patient_numbers(session, visit.patient_id))

    def list_lesions(self, patient_id: int) -> list[LesionSummary]:
        """The patient's lesions with their latest score, the decision in force and the histology."""
        with self._read() as session:
            get_row(session, Patient, patient_id, "patient")
            lesions = session.scalars(
                select(Lesion)
                .where(Lesion.patient_id == patient_id)
                .order_by(Lesion.id)
                .options(
                    selectinload(Lesion.images).selectinload(LesionImage.visit),
                    selectinload(Lesion.images).selectinload(LesionImage.predictions),
                    selectinload(Lesion.histology),
                )
            ).all()
            visit_no, lesion_no = patient_numbers(session, patient_id)
            in_force = views.decisions_in_force(patient_decisions(session, patient_id), visit_no)
            return [
                views.lesion_summary(
                    lesion,
                    in_force[lesion.id].action if lesion.id in in_force else None,
                    lesion_no.get(lesion.id, 0),
                    _review_due(in_force.get(lesion.id)),
                )
                for lesion in lesions
            ]

    def lesion_score_trend(self, lesion_id: int) -> list[TrendPoint]:
        """One point per visit (the latest prediction of that visit's scored image), oldest first."""
        with self._read() as session:
            lesion = get_row(session, Lesion, lesion_id, "lesion")
            visit_no, _ = patient_numbers(session, lesion.patient_id)
            rows = session.execute(
                select(Visit.id, Visit.visit_time, Visit.taken_on, Prediction)
                .join(LesionImage, LesionImage.visit_id == Visit.id)
                .join(Prediction, Prediction.image_id == LesionImage.id)
                .where(LesionImage.lesion_id == lesion_id)
                .order_by(Prediction.id)
            ).all()
            points: dict[int, TrendPoint] = {}
            for visit_id, visit_time, taken_on, pred in rows:  # later predictions of a visit win
                points[visit_id] = from_attributes(
                    TrendPoint,
                    pred,  # the prediction's scores and model; the rest from its visit
                    visit_id=visit_id,
                    visit_time=visit_time,
                    visit_number=visit_no.get(visit_id, 0),
                    taken_on=taken_on,
                )
            return sorted(points.values(), key=lambda p: p.visit_number)

    def decision_history(self, patient_id: int) -> list[DecisionView]:
        """Every decision of the patient, amendments and the decisions they replaced included."""
        with self._read() as session:
            get_row(session, Patient, patient_id, "patient")
            decisions = patient_decisions(session, patient_id)
            _, lesion_no = patient_numbers(session, patient_id)
            superseded = views.superseded_ids(decisions)
            return [views.decision_view(d, lesion_no, superseded) for d in decisions]

    def image_path(self, sha256: str) -> Path:
        """Absolute path of a stored image, by content hash."""
        if not is_sha256(sha256):
            raise ValueError("image hash must be 64 lowercase hex characters")
        with self._read() as session:
            relpath = session.scalar(select(LesionImage.relpath).where(LesionImage.sha256 == sha256).limit(1))
        if relpath is None:
            raise NotFoundError("no stored image with that hash")
        return self.blobs.path(relpath)

    def export_patient_history(self, patient_id: int, format: ExportFormat = "csv", *, actor: str | None = None) -> str:
        """The patient's whole history as CSV (one row per lesion image) or JSON (nested).

        The export is recorded in the audit trail (actor "unattributed" if None).
        """
        if format not in ("csv", "json"):
            raise ValueError(f"unknown export format {format!r}; expected 'csv' or 'json'")
        timeline = self.patient_timeline(patient_id)
        text = export.to_csv(timeline) if format == "csv" else export.to_json(timeline)
        self.record_event(actor or "unattributed", "patient.export", patient_id, {"format": format})
        logger.info("exported history of patient %d as %s", patient_id, format)
        return text

    def _visit(self, visit: Visit, numbers: tuple[dict[int, int], dict[int, int]]) -> VisitView:
        return views.visit_view(visit, self.blobs.path, *numbers)


def patient_decisions(session: Session, patient_id: int) -> list[Decision]:
    """All of a patient's decisions, oldest first, with their lesion and visit loaded."""
    return list(
        session.scalars(
            select(Decision)
            .join(Visit, Decision.visit_id == Visit.id)
            .where(Visit.patient_id == patient_id)
            .order_by(Decision.decided_at, Decision.id)
            .options(selectinload(Decision.lesion), selectinload(Decision.visit))
        )
    )


def images_by_digest(session: Session, digests: Iterable[str], *where: Any) -> set[tuple[int, str, str | None]]:
    """(lesion id, stored file's SHA-256, upload's SHA-256) of the saved images whose stored file or upload has one
    of ``digests``, narrowed by ``where`` (conditions on LesionImage or its Lesion). One query for the
    wrong-patient warning and the save's link of a re-upload, so the two cannot disagree on what "saved" means."""
    found: set[tuple[int, str, str | None]] = set()
    for batch in id_batches(digests):
        found.update(
            session.execute(
                select(LesionImage.lesion_id, LesionImage.sha256, LesionImage.source_sha256)
                .join(Lesion, Lesion.id == LesionImage.lesion_id)
                .where(or_(LesionImage.sha256.in_(batch), LesionImage.source_sha256.in_(batch)), *where)
            ).tuples()
        )
    return found


def get_or_create_patient(session: Session, identifier: str, birth_year: int | None, sex: str, actor: str) -> Patient:
    """The patient with this identifier, created (audited) if new; fills a missing birth year or sex and
    refuses a conflicting one (the wrong identifier was probably typed)."""
    stmt = select(Patient).where(Patient.identifier == identifier)
    patient = session.scalar(stmt)
    if patient is None:
        try:
            # Savepoint: if another process inserted the same identifier
            # meanwhile (PostgreSQL), fall back to its row.
            with session.begin_nested():
                patient = Patient(identifier=identifier, birth_year=birth_year, sex=sex)
                session.add(patient)
        except IntegrityError:
            patient = session.scalar(stmt)
            if patient is None:
                raise
        else:
            session.add(AuditEvent(actor=actor, action="patient.create", patient_id=patient.id))
            logger.info("created patient %d", patient.id)
            return patient
    changed = []
    if birth_year is not None:
        if patient.birth_year is None:
            patient.birth_year = birth_year
            changed.append("birth_year")
        elif patient.birth_year != birth_year:
            raise ValueError(
                f"this identifier is already recorded with birth year {patient.birth_year}, "
                f"not {birth_year}; check the identifier"
            )
    if sex != "unknown":
        if patient.sex == "unknown":
            patient.sex = sex
            changed.append("sex")
        elif patient.sex != sex:
            raise ValueError(f"this identifier is already recorded as {patient.sex}, not {sex}; check the identifier")
    if changed:
        session.add(AuditEvent(actor=actor, action="patient.update", patient_id=patient.id, detail={"fields": changed}))
    return patient


@dataclass(frozen=True)
class _VisitFacts:
    count: int
    last_saved: datetime  # the latest save time
    last_day: date  # the latest visit's day by the store's one rule (visit_date)


def _visit_facts(session: Session, patient_ids: list[int]) -> dict[int, _VisitFacts]:
    """Per patient with visits: how many, the latest save time, and the latest visit date by the store's one
    rule (``visit_date``: the images' day when one was entered, else the visit time's local day). Worked out
    here, not in SQL: the local day depends on the server's time zone, and the latest save is not the latest
    visit when images were entered later."""
    rows: dict[int, list[tuple]] = {}
    for batch in id_batches(patient_ids):
        for patient_id, taken_on, visit_time in session.execute(
            select(Visit.patient_id, Visit.taken_on, Visit.visit_time).where(Visit.patient_id.in_(batch))
        ):
            rows.setdefault(patient_id, []).append((taken_on, visit_time))
    return {
        patient_id: _VisitFacts(
            count=len(visits),
            last_saved=max(time for _, time in visits),
            last_day=max(visit_date(taken_on, time) for taken_on, time in visits),
        )
        for patient_id, visits in rows.items()
    }


def _review_due(decision: Decision | None) -> date | None:
    """When the decision in force asks for repeat imaging: the Worklist's rule (store.worklist.review_due)."""
    if decision is None:
        return None
    return review_due(visit_date(decision.visit.taken_on, decision.visit.visit_time), decision.review_in_months)
