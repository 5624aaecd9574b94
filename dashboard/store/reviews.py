"""Saving a review: patient, visit, lesions, images, scores and decisions, in one transaction.

Image files are written first, under their content address; if the transaction then fails, the file is an
orphan that the integrity check reports but that does no harm.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.store import validation
from dashboard.store.core import StoreCore
from dashboard.store.files import ImageInfo, inspect_image
from dashboard.store.models import AuditEvent, Decision, Lesion, LesionImage, Prediction, Visit
from dashboard.store.patients import get_or_create_patient, images_by_digest
from dashboard.store.privacy import strip_metadata
from dashboard.store.records import LesionReview, OverviewImage, ReviewToSave

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _PreparedImage:
    """An uploaded image after validation: metadata stripped, orientation applied, decoded facts."""

    data: bytes
    info: ImageInfo
    source_sha256: str  # of the bytes as uploaded
    original_filename: str


@dataclass(frozen=True)
class _PreparedLesion:
    """A LesionReview after validation."""

    image: _PreparedImage  # the dermoscopic image, scored
    overviews: tuple[_PreparedImage, ...]  # never scored
    site: str
    body_region: str | None
    label: str
    existing_lesion_id: int | None
    p_melanoma: float
    ugly_duckling: float | None
    triage_score: float
    rank: int
    action: str | None
    comment: str
    review_in_months: int | None = None
    p_spread: float | None = None
    tta_views: int | None = None
    outlier: bool | None = None
    source_caveat: str = ""


class ReviewWrites(StoreCore):
    def save_review(self, review: ReviewToSave) -> int:
        """Save a whole review (patient, visit, lesions, scores, decisions); returns the visit id.

        A lesion image whose file is already stored for this patient as a lesion's dermoscopic image (the
        same upload hash or the same stored file) and that the review does not link to an existing lesion is
        saved as a follow-up of that lesion, not as a new lesion: what the review itself does when it knows
        the image (dashboard/review_state.py, "already saved at the visit of ..."), which a page loaded
        before another clinician saved the image cannot know. The lesion keeps its site, label and body
        region (as the review's link sets them), and the audit entry lists it under ``auto_linked_lesions``.
        The save is refused (ValueError, nothing written) where that link is ambiguous: the file is stored
        under more than one of the patient's lesions, or the lesion it belongs to is already in this review
        (linked by another image, or the same file twice).
        """
        if not isinstance(review, ReviewToSave):
            raise ValueError(f"expected a ReviewToSave, got {type(review).__name__}")
        identifier = validation.identifier(review.patient_identifier)
        birth_year = validation.birth_year(review.birth_year)
        sex = validation.sex(review.sex)
        clinician = validation.name(review.clinician, "clinician")
        visit_time = validation.aware_time(review.visit_time, "visit time")
        taken_on = validation.past_date(review.taken_on, "date the images were taken", birth_year)
        model_version = validation.name(review.model_version, "model version")
        model_checksum = validation.name(review.model_checksum, "model checksum")
        notes = validation.free_text(review.notes, "notes")
        lesions = self._prepare_lesions(review.lesions)

        # Files first (temp name + atomic rename), so a committed row always has its file.
        for lesion in lesions:
            for image in (lesion.image, *lesion.overviews):
                self.blobs.put(image.data, image.info)

        with self._write.begin() as session:
            patient = get_or_create_patient(session, identifier, birth_year, sex, clinician)
            # The stored birth year may be older than the form's (which may be blank).
            validation.past_date(taken_on, "date the images were taken", patient.birth_year)
            lesions, auto_linked = _link_stored_images(session, patient.id, lesions)
            existing = _existing_lesions(session, patient.id, lesions)
            visit = Visit(
                patient=patient,
                visit_time=visit_time,
                taken_on=taken_on,
                clinician=clinician,
                model_version=model_version,
                notes=notes,
            )
            session.add(visit)
            new_lesions, relabelled, placed = 0, [], []
            for item in lesions:
                if item.existing_lesion_id is None:
                    lesion = Lesion(patient=patient, site=item.site, label=item.label, body_region=item.body_region)
                    session.add(lesion)
                    new_lesions += 1
                else:
                    lesion = existing[item.existing_lesion_id]
                    if lesion.label != item.label:
                        # The label names the lesion, so a rename applies to its whole history.
                        lesion.label = item.label
                        relabelled.append(lesion.id)
                    if item.body_region is not None and lesion.body_region != item.body_region:
                        lesion.body_region = item.body_region
                        placed.append(lesion.id)
                image = _image_row(item.image, lesion, visit, "dermoscopic")
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
                        source_caveat=item.source_caveat,
                    )
                )
                session.add(image)
                session.add_all(_image_row(o, lesion, visit, "overview") for o in item.overviews)
                if item.action is not None:
                    session.add(
                        Decision(
                            lesion=lesion,
                            visit=visit,
                            clinician=clinician,
                            action=item.action,
                            comment=item.comment,
                            review_in_months=item.review_in_months,
                        )
                    )
            session.flush()
            detail = {
                "visit_id": visit.id,
                "lesion_ids": [img.lesion_id for img in visit.images if img.kind == "dermoscopic"],
                "new_lesions": new_lesions,
                "relabelled_lesions": relabelled,
                "model_id": model_version,
            }
            overview_count = sum(len(item.overviews) for item in lesions)
            if overview_count:
                detail["overview_images"] = overview_count
            if placed:
                detail["placed_lesions"] = placed
            if auto_linked:
                detail["auto_linked_lesions"] = auto_linked
            if taken_on is not None:
                detail["taken_on"] = taken_on.isoformat()
            session.add(AuditEvent(actor=clinician, action="review.save", patient_id=patient.id, detail=detail))
            for decision in visit.decisions:
                scored = (img for img in visit.images if img.lesion_id == decision.lesion_id and img.predictions)
                score = next((img.predictions[-1] for img in scored), None)
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

    def _prepare_image(self, image_bytes: bytes, filename: object) -> _PreparedImage:
        uploaded = inspect_image(image_bytes, max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels)
        data = strip_metadata(bytes(image_bytes))
        info = uploaded
        if data != image_bytes:  # a lossless PNG of a rotated photo may be larger than the upload
            info = inspect_image(data, max_bytes=max(self.max_image_bytes, len(data)), max_pixels=self.max_image_pixels)
        return _PreparedImage(data, info, uploaded.sha256, validation.original_filename(filename))

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
                months = validation.review_months(item.decision_review_months, action)
                region, site = validation.body_region(item.body_region, validation.site(item.site))
                overviews = item.overviews
                if isinstance(overviews, OverviewImage) or not isinstance(overviews, Sequence):
                    raise ValueError("overviews must be a list of OverviewImage")
                overview_images = []
                for k, overview in enumerate(overviews, start=1):
                    if not isinstance(overview, OverviewImage):
                        raise ValueError(f"overview {k}: expected an OverviewImage, got {type(overview).__name__}")
                    try:
                        overview_images.append(self._prepare_image(overview.image_bytes, overview.original_filename))
                    except ValueError as exc:
                        raise ValueError(f"overview photo {k}: {exc}") from None
                ugly = item.ugly_duckling
                prepared.append(
                    _PreparedLesion(
                        image=self._prepare_image(item.image_bytes, item.original_filename),
                        overviews=tuple(overview_images),
                        site=site,
                        body_region=region,
                        label=validation.label(item.lesion_label),
                        existing_lesion_id=existing,
                        p_melanoma=validation.score(item.p_melanoma, "p_melanoma", unit_interval=True),
                        ugly_duckling=None if ugly is None else validation.score(ugly, "ugly-duckling score"),
                        triage_score=validation.score(item.triage_score, "triage score"),
                        rank=validation.rank(item.rank),
                        action=action,
                        comment=comment,
                        review_in_months=months,
                        p_spread=None
                        if item.p_spread is None
                        else validation.score(item.p_spread, "TTA spread", unit_interval=True),
                        tta_views=None
                        if item.tta_views is None
                        else validation.positive_int(item.tta_views, "number of TTA views"),
                        outlier=None if item.outlier is None else bool(item.outlier),
                        source_caveat=validation.free_text(item.source_caveat, "image-source caveat", 2_000),
                    )
                )
            except ValueError as exc:
                raise ValueError(f"lesion {n}: {exc}") from None
        return prepared


def _image_row(image: _PreparedImage, lesion: Lesion, visit: Visit, kind: str) -> LesionImage:
    return LesionImage(
        lesion=lesion,
        visit=visit,
        kind=kind,
        sha256=image.info.sha256,
        relpath=image.info.relpath,
        image_format=image.info.image_format,
        width=image.info.width,
        height=image.info.height,
        byte_size=image.info.byte_size,
        source_sha256=image.source_sha256,
        original_filename=image.original_filename,
    )


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


def _link_stored_images(
    session: Session, patient_id: int, lesions: list[_PreparedLesion]
) -> tuple[list[_PreparedLesion], list[int]]:
    """The review's lesions with each unlinked image whose file the patient already has under a lesion
    linked to that lesion (site, label and body region the lesion's), and the ids so linked; ValueError
    where the link is ambiguous (see ReviewWrites.save_review)."""
    unlinked = [n for n, item in enumerate(lesions) if item.existing_lesion_id is None]
    if not unlinked:
        return lesions, []
    hashes = {h for n in unlinked for h in (lesions[n].image.source_sha256, lesions[n].image.info.sha256)}
    rows = images_by_digest(session, hashes, Lesion.patient_id == patient_id, LesionImage.kind == "dermoscopic")
    if not rows:
        return lesions, []
    stored: dict[str, set[int]] = {}
    for lesion_id, sha256, source_sha256 in rows:
        for digest in {sha256, source_sha256} - {None}:
            stored.setdefault(digest, set()).add(lesion_id)
    linked = {item.existing_lesion_id for item in lesions if item.existing_lesion_id is not None}
    result, auto_linked = list(lesions), []
    for n in unlinked:
        item = lesions[n]
        found = stored.get(item.image.source_sha256, set()) | stored.get(item.image.info.sha256, set())
        if not found:
            continue
        where = f"lesion {n + 1} ({item.image.original_filename or 'image'})"
        if len(found) > 1:
            ids = ", ".join(str(i) for i in sorted(found))
            raise ValueError(
                f"{where}: this exact image is already saved for this patient under lesions {ids}; "
                "link it to one of them"
            )
        (lesion_id,) = found
        if lesion_id in linked:
            raise ValueError(
                f"{where}: this exact image is already saved for this patient as lesion {lesion_id}, which this "
                "review already contains; remove the duplicate image"
            )
        lesion = session.get(Lesion, lesion_id)
        result[n] = replace(item, existing_lesion_id=lesion_id, site=lesion.site, label=lesion.label, body_region=None)
        linked.add(lesion_id)
        auto_linked.append(lesion_id)
    return result, auto_linked
