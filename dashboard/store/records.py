"""Plain dataclasses going in and out of the store.

The dashboard and the tests work with these only; no ORM object leaves a
transaction. Patient identifiers and image bytes are kept out of ``repr`` so
an accidental log line or traceback does not carry them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, kw_only=True)
class OverviewImage:
    """An overview photo that locates a lesion on the body; stored with it, never scored."""

    image_bytes: bytes = field(repr=False)
    original_filename: str = ""


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
    decision_review_months: int | None = None  # a monitor decision's repeat-imaging interval (months)
    p_spread: float | None = None  # spread of p_melanoma across the TTA views (None: not measured)
    tta_views: int | None = None  # how many TTA views the score averaged
    outlier: bool | None = None  # flagged as an ugly duckling by the triage
    source_caveat: str = ""  # the image-source caveat the review showed for this image ("" = none)
    # A body-map region (data.body_sites key) for a new lesion; it must map onto ``site`` (an "unknown"
    # site takes the region's). A followed lesion keeps its region unless one is given here.
    body_region: str | None = None
    # Overview photos of this lesion taken at this visit (the image above is the scored dermoscopic one).
    overviews: Sequence[OverviewImage] = ()


@dataclass(frozen=True, kw_only=True)
class ReviewToSave:
    patient_identifier: str = field(repr=False)
    birth_year: int | None = None
    sex: str = "unknown"
    clinician: str
    visit_time: datetime | None = None  # timezone-aware; None = now
    # The day the images were taken, for images taken before today; None = the visit's own day.
    taken_on: date | None = None
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
    last_visit_time: datetime | None  # the latest save
    # The latest visit's date by the one rule (``visit_date``: the images' day when entered, else the
    # visit time's local day); not the latest save's day when images were entered later.
    last_visit_date: date | None = None


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
    source_caveat: str = ""  # the image-source caveat shown when it was scored ("" = none)


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
    amends_id: int | None = None  # set on an amendment: the decision it replaced
    amend_reason: str = ""
    superseded: bool = False  # a later amendment replaced this decision (kept as the record of it)
    review_in_months: int | None = None  # a monitor decision's repeat-imaging interval
    # The date of the decision's visit by the one rule (``visit_date``: the images' day when entered, else
    # the visit time's local day). None only on a record built without it.
    visit_date: date | None = None


@dataclass(frozen=True)
class HistologyView:
    """One recorded histology result of a lesion; the latest of a lesion is its result."""

    id: int
    lesion_id: int
    result: str
    reported_on: date | None
    recorded_by: str
    recorded_at: datetime
    note: str = ""


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
    kind: str = "dermoscopic"  # or "overview" (never scored)


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
    overviews: tuple[ImageView, ...] = ()  # overview photos of the lesion at this visit (not scored)
    body_region: str | None = None

    @property
    def prediction(self) -> PredictionView | None:
        return self.predictions[-1] if self.predictions else None

    @property
    def decision(self) -> DecisionView | None:
        """The decision in force: the latest amendment, else the decision taken at the visit."""
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
    taken_on: date | None = None  # the day the images were taken, when entered (images taken earlier)

    @property
    def image_date(self) -> date:
        """The day the images were taken: the date entered, else the visit's own local day (``visit_date``)."""
        return visit_date(self.taken_on, self.visit_time)


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
    # The dates of its first and latest visits by the one rule (``visit_date``: the images' day when
    # entered, else the visit time's local day), not the save times.
    first_seen: date | None
    last_seen: date | None
    latest_p_melanoma: float | None
    latest_action: str | None
    number: int = 0  # per patient, in the order first seen (1 = the patient's first lesion)
    body_region: str | None = None
    histology: HistologyView | None = None  # the latest recorded result
    review_due: date | None = None  # a monitor decision in force with an interval: when repeat imaging is due


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
    taken_on: date | None = None  # the day the images were taken, when entered
    p_spread: float | None = None


@dataclass(frozen=True)
class OutcomeRow:
    """One scored (dermoscopic) image of a lesion with a recorded histology: labelled data.

    Pseudonymous: database ids only (no patient identifier, no file name); age from the birth year.
    """

    patient_id: int
    lesion_id: int
    lesion_number: int
    site: str
    body_region: str | None
    visit_id: int
    visit_number: int
    image_date: date
    age_at_visit: int | None  # image year − birth year (may be one year high)
    sex: str
    image_sha256: str
    model_id: str
    model_checksum: str
    p_melanoma: float
    p_spread: float | None
    tta_views: int | None
    ugly_duckling: float | None
    outlier: bool | None
    rank: int
    histology: str
    reported_on: date | None
    # The image the result labels: the lesion's last scored image up to the visit that decided its biopsy or
    # excision, else up to the report's day (outcomes._labelled_image)
    latest_image: bool
    ranked_in_visit: int = 0  # lesions ranked in that visit: ``rank`` is out of this many


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
    images: tuple[DraftImage, ...] = ()  # empty when read without them (``load_draft(with_images=False)``)
    image_count: int = 0


R = TypeVar("R")


@functools.cache
def _init_fields(record_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record_type) if f.init)


def from_attributes(record_type: type[R], source: Any, **computed: Any) -> R:
    """A record whose fields are read from ``source``'s attributes of the same names (an ORM row, inside its
    session), except those given in ``computed``."""
    copied = {name: getattr(source, name) for name in _init_fields(record_type) if name not in computed}
    return record_type(**copied, **computed)


def visit_date(taken_on: date | None, visit_time: datetime) -> date:
    """The day a visit's images were taken: ``taken_on`` when entered, else the visit time's date in the
    local time zone (the server's, in which every page shows dates and the clinician enters ``taken_on``).

    Local, not UTC: the visit time is stored in UTC, but ``taken_on`` is a local calendar day, and comparing
    it with a UTC date misorders visits near midnight (a Sydney visit at 09:30 on 7 December is 22:30 UTC on
    the 6th, the same UTC day as images entered as taken on the local 6th).
    """
    return taken_on or visit_time.astimezone().date()
