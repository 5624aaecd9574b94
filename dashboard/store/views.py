"""ORM rows → the plain read-only dataclasses of records.py (inside a session)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import selectinload

from dashboard.store.core import visit_order_key
from dashboard.store.models import Decision, Histology, Lesion, LesionImage, Patient, Prediction, Visit
from dashboard.store.records import (
    DecisionView,
    HistologyView,
    ImageView,
    LesionSummary,
    PatientRecord,
    PredictionView,
    VisitLesion,
    VisitView,
    from_attributes,
    visit_date,
)

# Everything visit_view() touches, fetched up front: no lazy loads, no N+1 queries.
VISIT_LOAD = (
    selectinload(Visit.images).selectinload(LesionImage.lesion),
    selectinload(Visit.images).selectinload(LesionImage.predictions),
    selectinload(Visit.decisions).selectinload(Decision.lesion),
)

_UNRANKED = 1 << 30


def patient_record(p: Patient) -> PatientRecord:
    return from_attributes(PatientRecord, p)


def prediction_view(p: Prediction) -> PredictionView:
    return from_attributes(PredictionView, p)


def superseded_ids(decisions: Iterable[Decision]) -> set[int]:
    """The ids of decisions that a later amendment replaced."""
    return {d.amends_id for d in decisions if d.amends_id is not None}


def decisions_in_force(decisions: Iterable[Decision], visit_order: Mapping[int, Any]) -> dict[int, Decision]:
    """Each lesion's decision in force: of the decisions no amendment replaced, the latest visit's.

    By visit, not by time of writing: amending an earlier visit's decision does not override a later visit.
    ``visit_order``: visit id -> its place in the patient's visits (a visit number, or ``visit_order_key``).
    """
    decisions = list(decisions)
    replaced = superseded_ids(decisions)
    latest: dict[int, Decision] = {}
    for d in decisions:
        if d.id in replaced:
            continue
        kept = latest.get(d.lesion_id)
        if kept is None or (visit_order.get(d.visit_id, 0), d.id) > (visit_order.get(kept.visit_id, 0), kept.id):
            latest[d.lesion_id] = d
    return latest


def decision_view(
    d: Decision, lesion_numbers: dict[int, int] | None = None, superseded: set[int] | None = None
) -> DecisionView:
    return DecisionView(
        id=d.id,
        lesion_id=d.lesion_id,
        lesion_label=d.lesion.label,
        site=d.lesion.site,
        visit_id=d.visit_id,
        visit_time=d.visit.visit_time,
        clinician=d.clinician,
        action=d.action,
        comment=d.comment,
        decided_at=d.decided_at,
        lesion_number=(lesion_numbers or {}).get(d.lesion_id, 0),
        amends_id=d.amends_id,
        amend_reason=d.amend_reason or "",
        superseded=d.id in (superseded or ()),
        review_in_months=d.review_in_months,
        visit_date=visit_date(d.visit.taken_on, d.visit.visit_time),
    )


def histology_view(h: Histology) -> HistologyView:
    return from_attributes(HistologyView, h, note=h.note or "")


def image_view(image: LesionImage, path_of: Callable[[str], Path]) -> ImageView:
    return from_attributes(ImageView, image, path=path_of(image.relpath), kind=image.kind or "dermoscopic")


def visit_view(
    visit: Visit,
    path_of: Callable[[str], Path],
    visit_numbers: dict[int, int] | None = None,
    lesion_numbers: dict[int, int] | None = None,
) -> VisitView:
    """A visit with its lesions in triage-rank order (as the clinician saw them), numbered per patient.

    One entry per lesion's scored (dermoscopic) image, with the lesion's overview photos of this visit
    attached; a lesion with only an overview photo shows that photo, unscored.
    """
    lesion_numbers = lesion_numbers or {}
    superseded = superseded_ids(visit.decisions)
    overviews: dict[int, list[LesionImage]] = {}
    for image in visit.images:
        if image.kind == "overview":
            overviews.setdefault(image.lesion_id, []).append(image)
    scored = [image for image in visit.images if image.kind != "overview"]
    shown = {image.lesion_id for image in scored}
    scored += [extra[0] for lesion_id, extra in overviews.items() if lesion_id not in shown]
    lesions = [
        VisitLesion(
            lesion_id=image.lesion.id,
            site=image.lesion.site,
            label=image.lesion.label,
            image=image_view(image, path_of),
            predictions=tuple(prediction_view(p) for p in image.predictions),
            decisions=tuple(
                decision_view(d, lesion_numbers, superseded) for d in visit.decisions if d.lesion_id == image.lesion_id
            ),
            lesion_number=lesion_numbers.get(image.lesion.id, 0),
            overviews=tuple(image_view(o, path_of) for o in overviews.get(image.lesion_id, ()) if o.id != image.id),
            body_region=image.lesion.body_region,
        )
        for image in scored
    ]
    lesions.sort(key=lambda v: (v.prediction.rank if v.prediction else _UNRANKED, v.image.id))
    return from_attributes(VisitView, visit, lesions=tuple(lesions), number=(visit_numbers or {}).get(visit.id, 0))


def lesion_summary(
    lesion: Lesion, latest_action: str | None, number: int = 0, review_due: date | None = None
) -> LesionSummary:
    """Needs lesion.images with .visit and .predictions, and lesion.histology, loaded."""
    images = sorted(lesion.images, key=lambda i: visit_order_key(i.visit.taken_on, i.visit.visit_time, i.id))
    days = [visit_date(i.visit.taken_on, i.visit.visit_time) for i in images]  # in visit order
    latest = next((i.predictions[-1] for i in reversed(images) if i.predictions), None)
    return LesionSummary(
        id=lesion.id,
        patient_id=lesion.patient_id,
        site=lesion.site,
        label=lesion.label,
        created_at=lesion.created_at,
        visit_count=len({i.visit_id for i in images}),
        first_seen=days[0] if days else None,
        last_seen=days[-1] if days else None,
        latest_p_melanoma=latest.p_melanoma if latest else None,
        latest_action=latest_action,
        number=number,
        body_region=lesion.body_region,
        histology=histology_view(lesion.histology[-1]) if lesion.histology else None,
        review_due=review_due,
    )
