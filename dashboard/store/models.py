"""ORM model of the case store (SQLAlchemy 2.x declarative, typed).

The schema itself is owned by the Alembic migrations in ``migrations/``; a
test checks that these classes and the migrated head schema agree.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from data.settings import LIMITS

# One vocabulary for data, model and store (data/vocabulary.py: without pandas, which the store never needs).
from data.vocabulary import SEXES
from data.vocabulary import SITES as ANATOMIC_SITES

ACTIONS: tuple[str, ...] = ("biopsy", "excise", "monitor", "reassure", "refer")
TISSUE_ACTIONS: tuple[str, ...] = ("biopsy", "excise")  # decisions whose histology result is awaited
REVIEW_MONTHS_MAX = 24  # a monitor decision's repeat-imaging interval, in months (1-24)
# Dashboard roles, least to most privileged (see dashboard/auth.py for what each may do).
ROLES: tuple[str, ...] = ("viewer", "clinician", "admin")
# What a stored image shows: only dermoscopic images are scored; an overview photo locates the lesion.
IMAGE_KINDS: tuple[str, ...] = ("dermoscopic", "overview")
# A lesion's histology outcome, the label for evaluating the next model ("not_done": no specimen).
HISTOLOGY_RESULTS: tuple[str, ...] = ("melanoma", "other_malignant", "benign", "not_done")

# Column sizes shared with validation so a too-long value fails with a clear
# message before the database truncates (SQLite) or rejects (PostgreSQL) it.
IDENTIFIER_MAX = LIMITS.identifier_max
NAME_MAX = LIMITS.name_max  # clinician, actor, model id/version/checksum
LABEL_MAX = LIMITS.label_max
BODY_REGION_MAX = LIMITS.body_region_max
FILENAME_MAX = LIMITS.filename_max
USERNAME_MAX = LIMITS.username_max


def identifier_search_key(text: str) -> str:
    """What a patient search compares: the identifier case-folded in Python, Unicode-wide ("ØRSTED" finds
    "Ørsted"), because SQLite's lower() folds ASCII letters only; NFC so composed and decomposed accents
    match."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def utcnow() -> datetime:
    return datetime.now(UTC)


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes, stored as UTC on every backend.

    SQLite has no timezone support, so values are normalised to UTC and the
    tzinfo is re-attached on the way out; naive datetimes are refused because
    their meaning depends on the machine that wrote them.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("datetimes stored in the case store must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    # Deterministic constraint names keep migrations portable (SQLite batch
    # mode needs names to drop or alter constraints).
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Patient(Base):
    __tablename__ = "patient"
    __table_args__ = (CheckConstraint(f"sex IN {_in(SEXES)}", name="sex"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Pseudonymous identifier / MRN; the only identifying text in the store.
    identifier: Mapped[str] = mapped_column(String(IDENTIFIER_MAX), unique=True)
    # identifier_search_key(identifier), kept with it (case folding may lengthen a text up to threefold).
    identifier_key: Mapped[str] = mapped_column(String(3 * IDENTIFIER_MAX))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    sex: Mapped[str] = mapped_column(String(16), default="unknown")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    visits: Mapped[list[Visit]] = relationship(back_populates="patient", order_by="Visit.visit_time")
    lesions: Mapped[list[Lesion]] = relationship(back_populates="patient", order_by="Lesion.id")

    @validates("identifier")
    def _keep_search_key(self, _key: str, identifier: str) -> str:
        self.identifier_key = identifier_search_key(identifier)
        return identifier


class Visit(Base):
    __tablename__ = "visit"
    __table_args__ = (Index("ix_visit_patient_time", "patient_id", "visit_time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="RESTRICT"))
    visit_time: Mapped[datetime]
    clinician: Mapped[str] = mapped_column(String(NAME_MAX))
    model_version: Mapped[str] = mapped_column(String(NAME_MAX))
    notes: Mapped[str] = mapped_column(Text, default="")
    # The day the images were taken, when it is not the day of saving (images taken earlier); None: the
    # visit's own date. Orders the patient's visits (revision 0006).
    taken_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="visits")
    images: Mapped[list[LesionImage]] = relationship(back_populates="visit", order_by="LesionImage.id")
    decisions: Mapped[list[Decision]] = relationship(back_populates="visit", order_by="Decision.id")


class Lesion(Base):
    """One mole, followed across visits (site and label stay with it)."""

    __tablename__ = "lesion"
    __table_args__ = (CheckConstraint(f"site IN {_in(ANATOMIC_SITES)}", name="site"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="RESTRICT"), index=True)
    site: Mapped[str] = mapped_column(String(32))
    # A finer body-map region (data.body_sites.REGIONS key, e.g. "left_upper_arm_front") that maps onto
    # ``site``; None where none was placed (rows before revision 0006).
    body_region: Mapped[str | None] = mapped_column(String(BODY_REGION_MAX))
    label: Mapped[str] = mapped_column(String(LABEL_MAX))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="lesions")
    images: Mapped[list[LesionImage]] = relationship(back_populates="lesion", order_by="LesionImage.id")
    histology: Mapped[list[Histology]] = relationship(back_populates="lesion", order_by="Histology.id")


class LesionImage(Base):
    __tablename__ = "lesion_image"
    __table_args__ = (CheckConstraint(f"kind IN {_in(IMAGE_KINDS)}", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lesion_id: Mapped[int] = mapped_column(ForeignKey("lesion.id", ondelete="RESTRICT"), index=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id", ondelete="RESTRICT"), index=True)
    # Content address of the bytes; several rows may share one file.
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    relpath: Mapped[str] = mapped_column(String(200))
    image_format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    # SHA-256 of the bytes as uploaded, before personal metadata was stripped: recognises a re-upload of
    # the same photo. Null for images saved before metadata stripping (their file is the upload).
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    # The uploader's filename, kept as text only; never used to build a path.
    original_filename: Mapped[str] = mapped_column(String(FILENAME_MAX), default="")
    # "dermoscopic" (scored) or "overview" (a photo that locates the lesion; never scored). A lesion may
    # have one of each in a visit.
    kind: Mapped[str] = mapped_column(String(16), default="dermoscopic", server_default="dermoscopic")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    lesion: Mapped[Lesion] = relationship(back_populates="images")
    visit: Mapped[Visit] = relationship(back_populates="images")
    predictions: Mapped[list[Prediction]] = relationship(back_populates="image", order_by="Prediction.id")


class Prediction(Base):
    __tablename__ = "prediction"
    __table_args__ = (
        CheckConstraint("p_melanoma >= 0 AND p_melanoma <= 1", name="p_melanoma_range"),
        CheckConstraint("rank >= 1", name="rank_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("lesion_image.id", ondelete="RESTRICT"), index=True)
    model_id: Mapped[str] = mapped_column(String(NAME_MAX))
    model_checksum: Mapped[str] = mapped_column(String(NAME_MAX))
    p_melanoma: Mapped[float] = mapped_column(Float)
    # Null when the visit had fewer than 3 lesions: an outlier score needs peers.
    ugly_duckling: Mapped[float | None] = mapped_column(Float)
    triage_score: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)
    # The score's uncertainty: the spread of P(melanoma) across the test-time augmentation views, and how
    # many views there were; and whether the triage flagged the lesion as an ugly duckling. Null on rows
    # saved before revision 0004.
    p_spread: Mapped[float | None] = mapped_column(Float)
    tta_views: Mapped[int | None] = mapped_column(Integer)
    outlier: Mapped[bool | None] = mapped_column(Boolean)
    # What the review showed when this image's source (camera, resolution) differed from the patient's other
    # images: its ugly-duckling comparison may reflect the camera, not the lesion. Empty when none was shown
    # (and on rows saved before revision 0007).
    source_caveat: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    image: Mapped[LesionImage] = relationship(back_populates="predictions")


class Decision(Base):
    """A clinician's decision on a lesion at a visit. Append-only: an amendment after saving is a new row
    that ``amends`` the one it replaces (with the reason), so the original stays readable."""

    __tablename__ = "decision"
    __table_args__ = (
        CheckConstraint(f"action IN {_in(ACTIONS)}", name="action"),
        CheckConstraint(
            f"review_in_months IS NULL OR (review_in_months BETWEEN 1 AND {REVIEW_MONTHS_MAX} AND action = 'monitor')",
            name="review_in_months",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lesion_id: Mapped[int] = mapped_column(ForeignKey("lesion.id", ondelete="RESTRICT"), index=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id", ondelete="RESTRICT"), index=True)
    clinician: Mapped[str] = mapped_column(String(NAME_MAX))
    action: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set on an amendment: the decision it replaces (unique: a decision is amended at most once, by a
    # row that may itself be amended) and why.
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("decision.id", ondelete="RESTRICT"), unique=True)
    amend_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # A monitor decision's repeat-imaging interval: the lesion is due on the visit's day + this many months
    # (the worklist). None on other actions, on monitor decisions without one, and on rows before revision 0009.
    review_in_months: Mapped[int | None] = mapped_column(Integer)

    lesion: Mapped[Lesion] = relationship()
    visit: Mapped[Visit] = relationship(back_populates="decisions")


class Histology(Base):
    """The histology result of an excised or biopsied lesion. Append-only: a correction is a new row
    (the latest is the lesion's result), so every earlier result stays readable."""

    __tablename__ = "histology"
    __table_args__ = (
        CheckConstraint(f"result IN {_in(HISTOLOGY_RESULTS)}", name="result"),
        Index("ix_histology_lesion", "lesion_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lesion_id: Mapped[int] = mapped_column(ForeignKey("lesion.id", ondelete="RESTRICT"))
    result: Mapped[str] = mapped_column(String(16))
    # The date of the histology report (None for "not_done").
    reported_on: Mapped[date | None] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(NAME_MAX))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")

    lesion: Mapped[Lesion] = relationship(back_populates="histology")


class AuditEvent(Base):
    """Who did what, when. Refers to a patient by DB id only, never by identifier.

    ``actor`` is the authenticated user's username (or, for a failed login, the name that was tried).
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_patient_time", "patient_id", "occurred_at"),
        Index("ix_audit_event_actor_time", "actor", "occurred_at"),
        Index("ix_audit_event_time", "occurred_at", "id"),  # the Audit page: a date range, newest first
        Index("ix_audit_event_action_time", "action", "occurred_at"),  # one action or a prefix ("auth.")
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(NAME_MAX))
    action: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id", ondelete="SET NULL"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AppUser(Base):
    """A local dashboard account. Never deleted (the audit trail names it); disabled instead."""

    __tablename__ = "app_user"
    __table_args__ = (CheckConstraint(f"role IN {_in(ROLES)}", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX), unique=True)
    display_name: Mapped[str] = mapped_column(String(NAME_MAX), default="")
    role: Mapped[str] = mapped_column(String(16))
    # argon2id hash in PHC string format (the parameters travel with the hash).
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()


class ReviewDraft(Base):
    """A signed-in user's unsaved review, kept so that a page reload does not lose it (one per user).

    ``state`` holds the patient (identifier, birth year, sex, database id), each image's file name, site,
    label and follow-up link, the decisions and the notes; the images are ``ReviewDraftImage`` rows. Not a
    record: deleted when the visit is saved or the review discarded. Triage results are not kept (they are
    recomputed from the images, with the same fixed TTA).
    """

    __tablename__ = "review_draft"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(USERNAME_MAX), unique=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    images: Mapped[list[ReviewDraftImage]] = relationship(
        back_populates="draft", order_by="ReviewDraftImage.position", cascade="all, delete-orphan"
    )


class ReviewDraftImage(Base):
    """One image of a draft, personal metadata stripped (as every stored image); keyed by the upload's hash."""

    __tablename__ = "review_draft_image"
    __table_args__ = (Index("ix_review_draft_image_draft_sha", "draft_id", "upload_sha256", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("review_draft.id", ondelete="CASCADE"))
    upload_sha256: Mapped[str] = mapped_column(String(64))  # the review's key for this image
    filename: Mapped[str] = mapped_column(String(FILENAME_MAX), default="")
    position: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)

    draft: Mapped[ReviewDraft] = relationship(back_populates="images")
