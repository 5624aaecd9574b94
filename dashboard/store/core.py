"""The case store's base: opening and closing it, its sessions, the audit trail, and session helpers.

``CaseStore`` (api.py) is this base plus one part per idea: reviews (reviews.py), patient records
(patients.py), outcomes (outcomes.py), drafts (drafts.py). Every public write is one transaction
(``with self._write.begin()``): a user action is saved completely or not at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dashboard.store import config, validation
from dashboard.store.engine import make_engine, session_factories
from dashboard.store.files import BlobStore
from dashboard.store.migrate import upgrade_to_head
from dashboard.store.models import AuditEvent, Lesion, Patient, Visit
from dashboard.store.records import AuditRecord, from_attributes, visit_date
from data.errors import TriageError
from data.images import MAX_PIXELS

# The one pixel limit of every image input (data.images.MAX_PIXELS, 100 MP): what the dashboard's upload
# check accepts, the store keeps, whichever module was imported first.
DEFAULT_MAX_IMAGE_PIXELS = MAX_PIXELS

ExportFormat = Literal["csv", "json"]


class NotFoundError(TriageError, LookupError):
    """A patient, visit, lesion, image or decision id that the store does not have."""


class StoreCore:
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
    ) -> Self:
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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def read_session(self) -> Session:
        """A read session (use as a context manager); for the account service."""
        return self._read()

    def write_transaction(self) -> Any:
        """``with store.write_transaction() as session:`` one write transaction; for the account service."""
        return self._write.begin()

    # ------------------------------------------------------------ the audit trail

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
            else (AuditEvent.occurred_at, AuditEvent.id)
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
            return [from_attributes(AuditRecord, e, detail=dict(e.detail or {})) for e in session.scalars(stmt)]


# ---------------------------------------------------------------- session helpers


def get_row(session: Session, model: type[Any], ident: int, what: str) -> Any:
    """The row with this id, or NotFoundError naming ``what``; a non-integer id is a ValueError."""
    if isinstance(ident, bool) or not isinstance(ident, int):
        raise ValueError(f"{what} id must be an integer, got {ident!r}")
    obj = session.get(model, ident)
    if obj is None:
        raise NotFoundError(f"no {what} with id {ident}")
    return obj


def visit_order_key(taken_on: date | None, visit_time: datetime, visit_id: int) -> tuple[date, datetime, int]:
    """The one order of a patient's visits, for the store's visit numbers and every view of a lesion's
    history (dashboard/follow_up.py): by ``visit_date`` (images entered later with the day they were taken
    sort before the visits that followed them), then by visit time, then by id."""
    return (visit_date(taken_on, visit_time), visit_time, visit_id)


_Key = TypeVar("_Key", int, str)
# Ids per ``IN (...)`` list: a cross-patient list (the Worklist, the labelled outcomes) grows with the clinic's
# history, and psycopg refuses a statement with over 65,535 parameters (some SQLite builds: 32,766).
IN_LIST_MAX = 5_000


def id_batches(ids: Iterable[_Key]) -> Iterator[list[_Key]]:
    """The distinct ``ids`` (or hashes) in sorted lists of at most IN_LIST_MAX, one query's ``IN`` list each."""
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), IN_LIST_MAX):
        yield ordered[start : start + IN_LIST_MAX]


def patient_numbers(session: Session, patient_id: int) -> tuple[dict[int, int], dict[int, int]]:
    """Per-patient numbers (1, 2, …) of the patient's visits (by the day the images were taken) and
    lesions (by creation), by id.

    Database ids are global across patients; a clinician reads "visit 2" and "lesion #3" of this patient.
    """
    return numbers_of_patients(session, [patient_id]).get(patient_id, ({}, {}))


def numbers_of_patients(
    session: Session, patient_ids: Iterable[int]
) -> dict[int, tuple[dict[int, int], dict[int, int]]]:
    """``patient_numbers`` of several patients in two queries (a cross-patient list would otherwise run two
    per patient listed); patients without visits or lesions get empty maps."""
    ids = sorted(set(patient_ids))
    visits: dict[int, list[tuple]] = {pid: [] for pid in ids}
    lesions: dict[int, list[int]] = {pid: [] for pid in ids}
    for batch in id_batches(ids):
        for patient_id, *row in session.execute(
            select(Visit.patient_id, Visit.taken_on, Visit.visit_time, Visit.id).where(Visit.patient_id.in_(batch))
        ):
            visits[patient_id].append(row)
        for patient_id, lesion_id in session.execute(
            select(Lesion.patient_id, Lesion.id).where(Lesion.patient_id.in_(batch)).order_by(Lesion.id)
        ):
            lesions[patient_id].append(lesion_id)
    return {
        pid: (
            {row[2]: n for n, row in enumerate(sorted(visits[pid], key=lambda row: visit_order_key(*row)), start=1)},
            {lid: n for n, lid in enumerate(lesions[pid], start=1)},
        )
        for pid in ids
    }
