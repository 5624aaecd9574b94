"""The visit a review saves (``ReviewToSave``), built from the review in progress, and why it cannot be saved
yet (``ReviewNotReady``). No Streamlit here."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from dashboard.store.records import LesionReview, ReviewToSave
from dashboard.uploads import default_label
from dashboard.wording import is_nan
from data.errors import TriageError

if TYPE_CHECKING:
    from dashboard.review_state import ReviewState


class ReviewNotReady(TriageError, ValueError):
    """The review cannot be saved yet; the message says why, in the clinician's words."""


def review_to_save(
    state: ReviewState,
    clinician: str,
    model_version: str,
    model_checksum: str,
    visit_time: dt.datetime | None = None,
) -> ReviewToSave:
    """The visit to store, as the clinician sees it on the page: every scored lesion with its score, its
    uncertainty and flag as the card showed them, and its decision; or ReviewNotReady saying what is missing."""
    if state.patient is None:
        raise ReviewNotReady("Choose or create the patient first.")
    if state.result is None:
        raise ReviewNotReady("Run the triage before saving.")
    if state.result_is_stale:
        raise ReviewNotReady(
            "Images, sites or the patient's age on the date the images were taken changed after the triage "
            "ran: run the triage again before saving."
        )
    if not (clinician or "").strip():
        raise ReviewNotReady("Enter the reviewing clinician's name before saving.")
    table = state.scored_table()
    if table.empty:
        raise ReviewNotReady("No image could be scored, so there is nothing to save.")
    lesions = []
    for row in table.itertuples():
        image = state.images[row.image_id]
        decision = state.decision(row.image_id)
        comment = decision.comment if decision.action else ""
        ugly = None if row.ugly_duckling is None or is_nan(row.ugly_duckling) else float(row.ugly_duckling)
        lesions.append(
            LesionReview(
                image_bytes=image.data,
                original_filename=image.filename,
                site=image.site,
                lesion_label=image.label or default_label(image.filename),
                existing_lesion_id=image.existing_lesion_id,
                p_melanoma=float(row.p_melanoma),
                ugly_duckling=ugly,
                triage_score=float(row.triage_score),
                rank=int(row.rank),
                decision_action=decision.action,
                decision_comment=comment,
                decision_review_months=decision.review_months if decision.action == "monitor" else None,
                # The score's uncertainty and flag, as the live card showed them.
                p_spread=_optional_float(getattr(row, "p_spread", None)),
                tta_views=int(state.result_tta) if state.result_tta else None,
                outlier=bool(getattr(row, "outlier", False)),
                source_caveat=state.source_caveats.get(row.image_id, ""),
                body_region=state.body_regions.get(row.image_id),
                overviews=state.overviews.records(row.image_id),
            )
        )
    return ReviewToSave(
        patient_identifier=state.patient.identifier,
        birth_year=state.patient.birth_year,
        sex=state.patient.sex,
        clinician=clinician.strip(),
        visit_time=visit_time or dt.datetime.now(dt.UTC),
        model_version=model_version,
        model_checksum=model_checksum,
        notes=state.notes.strip(),
        taken_on=state.taken_on,
        lesions=lesions,
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None or is_nan(value) else float(value)
