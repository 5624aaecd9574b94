"""Plain dataclasses going in and out of the store.

The dashboard and the tests work with these only; no ORM object leaves a
transaction. Patient identifiers and image bytes are kept out of ``repr`` so
an accidental log line or traceback does not carry them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, kw_only=True)
class LesionReview:
    """One lesion as reviewed in a visit: its image, the model's scores, the decision."""

    image_bytes: bytes = field(repr=False)
    original_filename: str = ""
    site: str = "unknown"
    lesion_label: str = ""
    # Set to follow a lesion saved in an earlier visit; None creates a new lesion.
    existing_lesion_id: int | None = None
    p_melanoma: float
    ugly_duckling: float | None = None  # None when fewer than 3 lesions were compared
    triage_score: float
    rank: int
    decision_action: str | None = None  # biopsy/excise/monitor/reassure/refer, None = undecided
    decision_comment: str = ""
    p_spread: float | None = None  # spread of p_melanoma across the TTA views (None: not measured)
    tta_views: int | None = None  # how many TTA views the score averaged
    outlier: bool | None = None  # flagged as an ugly duckling by the triage


@dataclass(frozen=True, kw_only=True)
class ReviewToSave:
    patient_identifier: str = field(repr=False)
    birth_year: int | None = None
    sex: str = "unknown"
    clinician: str
    visit_time: datetime | None = None  # timezone-aware; None = now
    model_version: str
    model_checksum: str
    notes: str = ""
    lesions: Sequence[LesionReview] = ()


# ---------------------------------------------------------------- outputs


@dataclass(frozen=True)
class PatientRecord:
    id: int
    identifier: str = field(repr=False)
    birth_year: int | None
    sex: str
    created_at: datetime


@dataclass(frozen=True)
class PatientSummary:
    id: int
    identifier: str = field(repr=False)
    birth_year: int | None
    sex: str
    visit_count: int
    last_visit_time: datetime | None


@dataclass(frozen=True)
class PredictionView:
    id: int
    model_id: str
    model_checksum: str
    p_melanoma: float
    ugly_duckling: float | None
    triage_score: float
    rank: int
    created_at: datetime
    p_spread: float | None = None  # None on predictions saved before the spread was recorded
    tta_views: int | None = None
    outlier: bool | None = None


@dataclass(frozen=True)
class DecisionView:
    id: int
    lesion_id: int
    lesion_label: str
    site: str
    visit_id: int
    visit_time: datetime
    clinician: str
    action: str
    comment: str
    decided_at: datetime
    lesion_number: int = 0  # per patient (1 = the patient's first lesion); what pages show, not the id


@dataclass(frozen=True)
class ImageView:
    id: int
    sha256: str
    relpath: str  # relative to the data directory
    path: Path  # absolute, for display
    image_format: str
    width: int
    height: int
    byte_size: int
    original_filename: str
    # Hash of the bytes as uploaded (before metadata stripping); None for older rows.
    source_sha256: str | None = None


@dataclass(frozen=True)
class VisitLesion:
    """One lesion image of a visit with its scores and the decisions taken."""

    lesion_id: int
    site: str
    label: str
    image: ImageView
    predictions: tuple[PredictionView, ...]
    decisions: tuple[DecisionView, ...]
    lesion_number: int = 0  # per patient (1 = the patient's first lesion)

    @property
    def prediction(self) -> PredictionView | None:
        return self.predictions[-1] if self.predictions else None

    @property
    def decision(self) -> DecisionView | None:
        return self.decisions[-1] if self.decisions else None


@dataclass(frozen=True)
class VisitView:
    id: int
    patient_id: int
    visit_time: datetime
    clinician: str
    model_version: str
    notes: str
    created_at: datetime
    lesions: tuple[VisitLesion, ...]
    number: int = 0  # per patient, oldest first (1 = the patient's first visit); ids are global


@dataclass(frozen=True)
class PatientTimeline:
    patient: PatientRecord
    visits: tuple[VisitView, ...]  # oldest first


@dataclass(frozen=True)
class LesionSummary:
    id: int
    patient_id: int
    site: str
    label: str
    created_at: datetime
    visit_count: int
    first_seen: datetime | None
    last_seen: datetime | None
    latest_p_melanoma: float | None
    latest_triage_score: float | None
    latest_action: str | None
    number: int = 0  # per patient, in the order first seen (1 = the patient's first lesion)


@dataclass(frozen=True)
class TrendPoint:
    visit_id: int
    visit_time: datetime
    p_melanoma: float
    triage_score: float
    ugly_duckling: float | None
    rank: int
    model_id: str
    visit_number: int = 0  # per patient


@dataclass(frozen=True)
class AuditRecord:
    id: int
    occurred_at: datetime
    actor: str
    action: str
    patient_id: int | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class DraftImage:
    upload_sha256: str  # the review's key for the image (hash of the bytes as uploaded)
    filename: str
    data: bytes = field(repr=False)  # personal metadata stripped


@dataclass(frozen=True)
class DraftRecord:
    """A user's unsaved review as kept on the server (see models.ReviewDraft)."""

    owner: str
    state: dict[str, Any] = field(repr=False)
    updated_at: datetime
    images: tuple[DraftImage, ...] = ()
