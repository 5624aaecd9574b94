"""CaseStore: the dashboard's one entry point to saved reviews.

Every public write is one transaction (``with Session.begin()``): a review is
saved completely or not at all. Image files are written first, under their
content address; if the transaction then fails, the file is an orphan that
the integrity check reports but that does no harm.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from dashboard.store import config, export, validation, views
from dashboard.store.engine import make_engine, session_factories
from dashboard.store.files import BlobStore, ImageInfo, inspect_image, is_sha256
from dashboard.store.migrate import upgrade_to_head
from dashboard.store.models import (
    AuditEvent,
    Decision,
    Lesion,
    LesionImage,
    Patient,
    Prediction,
    ReviewDraft,
    ReviewDraftImage,
    Visit,
    utcnow,
)
from dashboard.store.privacy import strip_metadata
from dashboard.store.records import (
    AuditRecord,
    DecisionView,
    DraftImage,
    DraftRecord,
    LesionReview,
    LesionSummary,
    PatientRecord,
    PatientSummary,
    PatientTimeline,
    ReviewToSave,
    TrendPoint,
    VisitView,
)
from data.images import MAX_PIXELS

# Log lines carry database ids only: identifiers are personal data.
logger = logging.getLogger(__name__)

# The one pixel limit of every image input (data.images.MAX_PIXELS, 100 MP): what the dashboard's upload
# check accepts, the store keeps, whichever module was imported first.
DEFAULT_MAX_IMAGE_PIXELS = MAX_PIXELS

ExportFormat = Literal["csv", "json"]


class NotFoundError(LookupError):
    """A patient, visit, lesion or image id that the store does not have."""


@dataclass(frozen=True)
class _PreparedLesion:
    """A LesionReview after validation, with its decoded-image facts."""

    data: bytes  # metadata stripped, orientation applied
    info: ImageInfo
    source_sha256: str  # of the bytes as uploaded
    original_filename: str
    site: str
    label: str
    existing_lesion_id: int | None
    p_melanoma: float
    ugly_duckling: float | None
    triage_score: float
    rank: int
    action: str | None
    comment: str
    p_spread: float | None = None
    tta_views: int | None = None
    outlier: bool | None = None


class CaseStore:
    def __init__(
        self,
        engine: Engine,
        data_dir: str | os.PathLike[str],
        *,
        max_image_bytes: int = config.DEFAULT_MAX_IMAGE_BYTES,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        create_dirs: bool = True,
    ) -> None:
        self.engine = engine
        self.blobs = BlobStore(data_dir, create=create_dirs)
        self.max_image_bytes = max_image_bytes
        self.max_image_pixels = max_image_pixels
        self._read, self._write = session_factories(engine)

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        upgrade: bool = True,
        read_only: bool = False,
        max_image_bytes: int = config.DEFAULT_MAX_IMAGE_BYTES,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    ) -> CaseStore:
        """Open the store; None means ``$DATABASE_URL`` / ``$TRIAGE_DATA_DIR`` or the defaults.

        Creates missing directories and upgrades the schema to the newest
        migration unless ``upgrade=False``. ``read_only=True`` (checks, reports) creates nothing, never
        upgrades, and opens the database read-only (works on a read-only mount).
        """
        engine = make_engine(config.database_url(url), read_only=read_only)
        try:
            if upgrade and not read_only:
                upgrade_to_head(engine)
            return cls(
                engine,
                config.data_dir(data_dir),
                max_image_bytes=max_image_bytes,
                max_image_pixels=max_image_pixels,
                create_dirs=not read_only,
            )
        except BaseException:
            engine.dispose()
            raise

    @property
    def data_dir(self) -> Path:
        return self.blobs.root

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> CaseStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------ writes

    def find_or_create_patient(self, identifier: str, birth_year: int | None, sex: str, actor: str) -> PatientRecord:
        identifier = validation.identifier(identifier)
        birth_year = validation.birth_year(birth_year)
        sex = validation.sex(sex)
        actor = validation.name(actor, "actor")
        with self._write.begin() as session:
            patient = self._get_or_create_patient(session, identifier, birth_year, sex, actor)
            return views.patient_record(patient)

    def save_review(self, review: ReviewToSave) -> int:
        """Save a whole review (patient, visit, lesions, scores, decisions); returns the visit id."""
        if not isinstance(review, ReviewToSave):
            raise ValueError(f"expected a ReviewToSave, got {type(review).__name__}")
        identifier = validation.identifier(review.patient_identifier)
        birth_year = validation.birth_year(review.birth_year)
        sex = validation.sex(review.sex)
        clinician = validation.name(review.clinician, "clinician")
        visit_time = validation.aware_time(review.visit_time, "visit time")
        model_version = validation.name(review.model_version, "model version")
        model_checksum = validation.name(review.model_checksum, "model checksum")
        notes = validation.free_text(review.notes, "notes")
        lesions = self._prepare_lesions(review.lesions)

        # Files first (temp name + atomic rename), so a committed row always has its file.
        for lesion in lesions:
            self.blobs.put(lesion.data, lesion.info)

        with self._write.begin() as session:
            patient = self._get_or_create_patient(session, identifier, birth_year, sex, clinician)
            existing = self._existing_lesions(session, patient.id, lesions)
            visit = Visit(
                patient=patient,
                visit_time=visit_time,
                clinician=clinician,
                model_version=model_version,
                notes=notes,
            )
            session.add(visit)
            new_lesions, relabelled = 0, []
            for item in lesions:
                if item.existing_lesion_id is None:
                    lesion = Lesion(patient=patient, site=item.site, label=item.label)
                    session.add(lesion)
                    new_lesions += 1
                else:
                    lesion = existing[item.existing_lesion_id]
                    if lesion.label != item.label:
                        # The label names the lesion, so a rename applies to its whole history.
                        lesion.label = item.label
                        relabelled.append(lesion.id)
                image = LesionImage(
                    lesion=lesion,
                    visit=visit,
                    sha256=item.info.sha256,
                    relpath=item.info.relpath,
                    image_format=item.info.image_format,
                    width=item.info.width,
                    height=item.info.height,
                    byte_size=item.info.byte_size,
                    source_sha256=item.source_sha256,
                    original_filename=item.original_filename,
                )
                image.predictions.append(
                    Prediction(
                        model_id=model_version,
                        model_checksum=model_checksum,
                        p_melanoma=item.p_melanoma,
                        ugly_duckling=item.ugly_duckling,
                        triage_score=item.triage_score,
                        rank=item.rank,
                        p_spread=item.p_spread,
                        tta_views=item.tta_views,
                        outlier=item.outlier,
                    )
                )
                session.add(image)
                if item.action is not None:
                    session.add(
                        Decision(
                            lesion=lesion,
                            visit=visit,
                            clinician=clinician,
                            action=item.action,
                            comment=item.comment,
                        )
                    )
            session.flush()
            session.add(
                AuditEvent(
                    actor=clinician,
                    action="review.save",
                    patient_id=patient.id,
                    detail={
                        "visit_id": visit.id,
                        "lesion_ids": [img.lesion_id for img in visit.images],
                        "new_lesions": new_lesions,
                        "relabelled_lesions": relabelled,
                        "model_id": model_version,
                    },
                )
            )
            for decision in visit.decisions:
                score = next((img.predictions[-1] for img in visit.images if img.lesion_id == decision.lesion_id), None)
                session.add(
                    AuditEvent(
                        actor=clinician,
                        action="decision.record",
                        patient_id=patient.id,
                        detail={
                            "visit_id": visit.id,
                            "lesion_id": decision.lesion_id,
                            "action": decision.action,
                            "model_id": model_version,
                            "p_melanoma": None if score is None else round(score.p_melanoma, 4),
                        },
                    )
                )
            visit_id, patient_id = visit.id, patient.id
        logger.info("saved visit %d for patient %d (%d lesions)", visit_id, patient_id, len(lesions))
        return visit_id

    def record_event(
        self, actor: str, action: str, patient_id: int | None = None, detail: dict[str, Any] | None = None
    ) -> int:
        """Append an audit event (e.g. ``patient.view``). ``detail`` must hold ids, not identifiers."""
        actor = validation.name(actor, "actor")
        action = validation.name(action, "audit action")
        with self._write.begin() as session:
            if patient_id is not None and session.get(Patient, patient_id) is None:
                raise NotFoundError(f"no patient with id {patient_id}")
            event = AuditEvent(actor=actor, action=action, patient_id=patient_id, detail=dict(detail or {}))
            session.add(event)
            session.flush()
            return event.id

    # ------------------------------------------------------------ reads

    def get_patient(self, patient_id: int) -> PatientRecord:
        with self._read() as session:
            return views.patient_record(_get(session, Patient, patient_id, "patient"))

    def search_patients(self, partial_identifier: str, limit: int = 50) -> list[PatientSummary]:
        """Patients whose identifier contains the text (case-insensitive). Blank finds nothing."""
        needle = (partial_identifier or "").strip().lower() if isinstance(partial_identifier, str) else ""
        if not needle:
            return []
        visits = (
            select(
                Visit.patient_id,
                func.count(Visit.id).label("n"),
                func.max(Visit.visit_time).label("last"),
            )
            .group_by(Visit.patient_id)
            .subquery()
        )
        stmt = (
            select(Patient, visits.c.n, visits.c.last)
            .outerjoin(visits, visits.c.patient_id == Patient.id)
            # autoescape: "%" and "_" typed by the user match literally.
            .where(func.lower(Patient.identifier).contains(needle, autoescape=True))
            .order_by(Patient.identifier)
            .limit(limit)
        )
        with self._read() as session:
            rows = session.execute(stmt).all()
            return [
                PatientSummary(
                    id=p.id,
                    identifier=p.identifier,
                    birth_year=p.birth_year,
                    sex=p.sex,
                    visit_count=n or 0,
                    last_visit_time=last,
                )
                for p, n, last in rows
            ]

    def patient_timeline(self, patient_id: int) -> PatientTimeline:
        with self._read() as session:
            patient = _get(session, Patient, patient_id, "patient")
            visits = session.scalars(
                select(Visit)
                .where(Visit.patient_id == patient_id)
                .order_by(Visit.visit_time, Visit.id)
                .options(*views.VISIT_LOAD)
            ).all()
            numbers = _patient_numbers(session, patient_id)
            return PatientTimeline(
                patient=views.patient_record(patient), visits=tuple(self._visit(v, numbers) for v in visits)
            )

    def load_visit(self, visit_id: int) -> VisitView:
        with self._read() as session:
            visit = session.scalar(select(Visit).where(Visit.id == visit_id).options(*views.VISIT_LOAD))
            if visit is None:
                raise NotFoundError(f"no visit with id {visit_id}")
            return self._visit(visit, _patient_numbers(session, visit.patient_id))

    def list_lesions(self, patient_id: int) -> list[LesionSummary]:
        with self._read() as session:
            _get(session, Patient, patient_id, "patient")
            lesions = session.scalars(
                select(Lesion)
                .where(Lesion.patient_id == patient_id)
                .order_by(Lesion.id)
                .options(
                    selectinload(Lesion.images).selectinload(LesionImage.visit),
                    selectinload(Lesion.images).selectinload(LesionImage.predictions),
                )
            ).all()
            decisions = session.scalars(
                select(Decision)
                .join(Lesion, Decision.lesion_id == Lesion.id)
                .where(Lesion.patient_id == patient_id)
                .order_by(Decision.decided_at, Decision.id)
            ).all()
            latest_action = {d.lesion_id: d.action for d in decisions}  # later rows win
            _, lesion_no = _patient_numbers(session, patient_id)
            return [
                views.lesion_summary(lesion, latest_action.get(lesion.id), lesion_no.get(lesion.id, 0))
                for lesion in lesions
            ]

    def lesion_score_trend(self, lesion_id: int) -> list[TrendPoint]:
        """One point per visit (the latest prediction of that visit), oldest first."""
        with self._read() as session:
            lesion = _get(session, Lesion, lesion_id, "lesion")
            visit_no, _ = _patient_numbers(session, lesion.patient_id)
            rows = session.execute(
                select(Visit.id, Visit.visit_time, Prediction)
                .join(LesionImage, LesionImage.visit_id == Visit.id)
                .join(Prediction, Prediction.image_id == LesionImage.id)
                .where(LesionImage.lesion_id == lesion_id)
                .order_by(Visit.visit_time, Visit.id, Prediction.id)
            ).all()
            points: dict[int, TrendPoint] = {}
            for visit_id, visit_time, pred in rows:
                points[visit_id] = TrendPoint(
                    visit_id=visit_id,
                    visit_time=visit_time,
                    p_melanoma=pred.p_melanoma,
                    triage_score=pred.triage_score,
                    ugly_duckling=pred.ugly_duckling,
                    rank=pred.rank,
                    model_id=pred.model_id,
                    visit_number=visit_no.get(visit_id, 0),
                )
            return list(points.values())

    def decision_history(self, patient_id: int) -> list[DecisionView]:
        with self._read() as session:
            _get(session, Patient, patient_id, "patient")
            decisions = session.scalars(
                select(Decision)
                .join(Visit, Decision.visit_id == Visit.id)
                .where(Visit.patient_id == patient_id)
                .order_by(Decision.decided_at, Decision.id)
                .options(selectinload(Decision.lesion), selectinload(Decision.visit))
            ).all()
            _, lesion_no = _patient_numbers(session, patient_id)
            return [views.decision_view(d, lesion_no) for d in decisions]

    def audit_events(
        self,
        patient_id: int | None = None,
        limit: int = 500,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        newest_first: bool = False,
    ) -> list[AuditRecord]:
        """Audit events, filtered (``action`` ending in ``.`` matches a prefix, e.g. ``auth.``)."""
        order = (
            (AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
            if newest_first
            else (
                AuditEvent.occurred_at,
                AuditEvent.id,
            )
        )
        stmt = select(AuditEvent).order_by(*order).limit(limit)
        if patient_id is not None:
            stmt = stmt.where(AuditEvent.patient_id == patient_id)
        if actor:
            stmt = stmt.where(AuditEvent.actor == actor)
        if action:
            stmt = stmt.where(
                AuditEvent.action.startswith(action, autoescape=True)
                if action.endswith(".")
                else AuditEvent.action == action
            )
        if since is not None:
            stmt = stmt.where(AuditEvent.occurred_at >= since)
        if until is not None:
            stmt = stmt.where(AuditEvent.occurred_at < until)
        with self._read() as session:
            return [
                AuditRecord(
                    id=e.id,
                    occurred_at=e.occurred_at,
                    actor=e.actor,
                    action=e.action,
                    patient_id=e.patient_id,
                    detail=dict(e.detail or {}),
                )
                for e in session.scalars(stmt)
            ]

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

    # ------------------------------------------------------------ for dashboard.auth

    # ------------------------------------------------------------ drafts (one unsaved review per user)

    def save_draft(self, owner: str, state: dict[str, Any], images: Sequence[tuple[str, str, bytes]]) -> None:
        """Keep ``owner``'s review in progress, in one transaction: ``state`` (JSON) and its images
        (upload hash, file name, bytes; stored with personal metadata stripped, written once each)."""
        if not isinstance(owner, str) or not owner.strip():
            raise ValueError("a draft needs its owner's username")
        owner = owner.strip()
        with self._write.begin() as session:
            draft = session.scalar(select(ReviewDraft).where(ReviewDraft.owner == owner))
            if draft is None:
                draft = ReviewDraft(owner=owner, state={})
                session.add(draft)
            draft.state = dict(state)
            draft.updated_at = utcnow()
            kept = {image.upload_sha256: image for image in draft.images}
            wanted = [sha for sha, _, _ in images]
            for sha, image in kept.items():
                if sha not in wanted:
                    draft.images.remove(image)
            for position, (sha, filename, data) in enumerate(images):
                if not is_sha256(sha):
                    raise ValueError(f"draft image key must be a SHA-256, got {sha!r}")
                if sha in kept:
                    kept[sha].position = position
                    continue
                draft.images.append(
                    ReviewDraftImage(
                        upload_sha256=sha,
                        filename=validation.original_filename(filename),
                        position=position,
                        data=strip_metadata(bytes(data)),
                    )
                )

    def load_draft(self, owner: str) -> DraftRecord | None:
        with self._read() as session:
            draft = session.scalar(
                select(ReviewDraft).where(ReviewDraft.owner == owner).options(selectinload(ReviewDraft.images))
            )
            if draft is None:
                return None
            return DraftRecord(
                owner=draft.owner,
                state=dict(draft.state or {}),
                updated_at=draft.updated_at,
                images=tuple(DraftImage(i.upload_sha256, i.filename, bytes(i.data)) for i in draft.images),
            )

    def delete_draft(self, owner: str) -> bool:
        with self._write.begin() as session:
            draft = session.scalar(select(ReviewDraft).where(ReviewDraft.owner == owner))
            if draft is None:
                return False
            session.delete(draft)
            return True

    def read_session(self) -> Session:
        """A read session (use as a context manager); for the account service."""
        return self._read()

    def write_transaction(self) -> Any:
        """``with store.write_transaction() as session:`` one write transaction; for the account service."""
        return self._write.begin()

    # ------------------------------------------------------------ internals

    def _prepare_lesions(self, lesions: Sequence[LesionReview]) -> list[_PreparedLesion]:
        if isinstance(lesions, LesionReview) or not isinstance(lesions, Sequence):
            raise ValueError("lesions must be a list of LesionReview")
        if not lesions:
            raise ValueError("a review must contain at least one lesion")
        seen_existing: set[int] = set()
        prepared = []
        for n, item in enumerate(lesions, start=1):
            if not isinstance(item, LesionReview):
                raise ValueError(f"lesion {n}: expected a LesionReview, got {type(item).__name__}")
            where = f"lesion {n}"
            try:
                existing = item.existing_lesion_id
                if existing is not None:
                    if isinstance(existing, bool) or not isinstance(existing, int):
                        raise ValueError(f"existing lesion id must be an integer, got {existing!r}")
                    if existing in seen_existing:
                        raise ValueError(f"lesion id {existing} appears twice in this review")
                    seen_existing.add(existing)
                action = None if item.decision_action is None else validation.action(item.decision_action)
                comment = validation.free_text(item.decision_comment, "decision comment")
                if action is None and comment:
                    raise ValueError("decision comment given without a decision action")
                ugly = item.ugly_duckling
                uploaded = inspect_image(
                    item.image_bytes, max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels
                )
                data = strip_metadata(bytes(item.image_bytes))
                info = uploaded
                if data != item.image_bytes:  # a lossless PNG of a rotated photo may be larger than the upload
                    info = inspect_image(
                        data, max_bytes=max(self.max_image_bytes, len(data)), max_pixels=self.max_image_pixels
                    )
                prepared.append(
                    _PreparedLesion(
                        data=data,
                        info=info,
                        source_sha256=uploaded.sha256,
                        original_filename=validation.original_filename(item.original_filename),
                        site=validation.site(item.site),
                        label=validation.label(item.lesion_label),
                        existing_lesion_id=existing,
                        p_melanoma=validation.score(item.p_melanoma, "p_melanoma", unit_interval=True),
                        ugly_duckling=None if ugly is None else validation.score(ugly, "ugly-duckling score"),
                        triage_score=validation.score(item.triage_score, "triage score"),
                        rank=validation.rank(item.rank),
                        action=action,
                        comment=comment,
                        p_spread=None
                        if item.p_spread is None
                        else validation.score(item.p_spread, "TTA spread", unit_interval=True),
                        tta_views=None
                        if item.tta_views is None
                        else validation.positive_int(item.tta_views, "number of TTA views"),
                        outlier=None if item.outlier is None else bool(item.outlier),
                    )
                )
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        return prepared

    def _visit(self, visit: Visit, numbers: tuple[dict[int, int], dict[int, int]]) -> VisitView:
        return views.visit_view(visit, self.blobs.path, *numbers)

    @staticmethod
    def _existing_lesions(session: Session, patient_id: int, lesions: list[_PreparedLesion]) -> dict[int, Lesion]:
        wanted = {item.existing_lesion_id: item for item in lesions if item.existing_lesion_id is not None}
        if not wanted:
            return {}
        found = {
            lesion.id: lesion
            for lesion in session.scalars(select(Lesion).where(Lesion.id.in_(wanted), Lesion.patient_id == patient_id))
        }
        for lesion_id, item in wanted.items():
            lesion = found.get(lesion_id)
            if lesion is None:
                raise ValueError(f"lesion {lesion_id} does not exist or belongs to another patient")
            if lesion.site != item.site:
                # A lesion does not move; a different site almost certainly means the wrong lesion was picked.
                raise ValueError(f"lesion {lesion_id} is recorded on site {lesion.site!r}, not {item.site!r}")
        return found

    @staticmethod
    def _get_or_create_patient(
        session: Session, identifier: str, birth_year: int | None, sex: str, actor: str
    ) -> Patient:
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
                raise ValueError(
                    f"this identifier is already recorded as {patient.sex}, not {sex}; check the identifier"
                )
        if changed:
            session.add(
                AuditEvent(actor=actor, action="patient.update", patient_id=patient.id, detail={"fields": changed})
            )
        return patient


def _get(session: Session, model: type[Any], ident: int, what: str) -> Any:
    if isinstance(ident, bool) or not isinstance(ident, int):
        raise ValueError(f"{what} id must be an integer, got {ident!r}")
    obj = session.get(model, ident)
    if obj is None:
        raise NotFoundError(f"no {what} with id {ident}")
    return obj


def _patient_numbers(session: Session, patient_id: int) -> tuple[dict[int, int], dict[int, int]]:
    """Per-patient numbers (1, 2, …) of the patient's visits (by time) and lesions (by creation), by id.

    Database ids are global across patients; a clinician reads "visit 2" and "lesion #3" of this patient.
    """
    visit_ids = session.scalars(
        select(Visit.id).where(Visit.patient_id == patient_id).order_by(Visit.visit_time, Visit.id)
    ).all()
    lesion_ids = session.scalars(select(Lesion.id).where(Lesion.patient_id == patient_id).order_by(Lesion.id)).all()
    return (
        {vid: n for n, vid in enumerate(visit_ids, start=1)},
        {lid: n for n, lid in enumerate(lesion_ids, start=1)},
    )
