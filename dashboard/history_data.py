"""Case history without Streamlit: the table of visits (decisions: outcomes.py), the visit picker's labels, the
export's file name, and a saved visit's lesion image resolved for the saliency page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
from PIL import Image

from dashboard.choices import decision_label
from dashboard.outcomes import visit_date_text
from dashboard.patient_form import PatientContext
from dashboard.store.api import NotFoundError
from dashboard.uploads import DISPLAY_PX
from data.errors import TriageError
from data.hashing import sha256_bytes as sha256_of
from data.images import ImageDecodeError, decode_image

if TYPE_CHECKING:
    from dashboard.store.records import PatientTimeline, VisitLesion, VisitView


def timeline_table(timeline: PatientTimeline) -> pd.DataFrame:
    rows = []
    for visit in reversed(timeline.visits):  # newest first
        decided = [les for les in visit.lesions if les.decision]
        top = visit.lesions[0].prediction if visit.lesions and visit.lesions[0].prediction else None
        rows.append(
            {
                "visit": visit.number or visit.id,
                "date": visit_date_text(visit),  # the day the images were taken, as the visits are ordered
                "clinician": visit.clinician,
                "lesions": len(visit.lesions),
                "highest P(melanoma)": top.p_melanoma if top else None,
                "decisions": ", ".join(decision_label(a) for a in sorted({les.decision.action for les in decided}))
                or "none",
                "model": visit.model_version,
            }
        )
    return pd.DataFrame(rows)


def visit_choice_label(visit: VisitView) -> str:
    return (
        f"Visit {visit.number or visit.id} · {visit_date_text(visit)} · "  # the images' day when entered
        f"{len(visit.lesions)} lesion{'' if len(visit.lesions) == 1 else 's'} · {visit.clinician}"
    )


class StoredImageError(TriageError, LookupError):
    """A saved lesion image cannot be shown; the message says why, in the clinician's words."""


@dataclass(frozen=True)
class StoredLesionImage:
    """One lesion image of a saved visit, ready for the saliency page (no Streamlit needed)."""

    visit: VisitView
    lesion: VisitLesion
    image: Image.Image = field(repr=False)  # upright RGB, at most DISPLAY_PX on a side
    site: str
    patient: Any  # model.triage.PatientInfo: sex, and age at the visit

    @property
    def sha256(self) -> str:
        return self.lesion.image.sha256

    @property
    def key(self) -> str:
        """The same short id the review's saliency link uses (``?lesion=``)."""
        return self.sha256[:16]

    @property
    def scored_by(self) -> str | None:
        """The model id stored with the prediction made at that visit (None if it was not scored)."""
        return self.lesion.prediction.model_id if self.lesion.prediction else None

    def source_line(self) -> str:
        when = visit_date_text(self.visit)  # the day the images were taken, and the save time when another day
        return (
            f"Saved visit {self.visit.number or self.visit.id} · {when} · {self.visit.clinician} · "
            f"lesion #{self.lesion.lesion_number or self.lesion.lesion_id} "
            f"“{self.lesion.label}” · {self.site} · {self.lesion.image.original_filename}"
        )


def stored_lesion_image(
    store: Any, visit_id: int | str, lesion_key: str, max_px: int = DISPLAY_PX
) -> StoredLesionImage:
    """Resolve a saved visit's lesion (``lesion_key``: the image's SHA-256 or a prefix of it, ≥ 8 hex
    characters) into its image, the site stored with the lesion and the patient's metadata as at that
    visit — what the model was given when it scored the image.

    The image is read through the store (``CaseStore.image_path``), checked against its SHA-256 and
    decoded with data.images.decode_image. Every failure raises StoredImageError with a readable reason.
    """
    from data.images import read_source
    from model.triage import PatientInfo

    try:
        visit_number = int(str(visit_id).strip())
    except ValueError:
        raise StoredImageError(f"“{visit_id}” is not a saved visit number.") from None
    try:
        visit = store.load_visit(visit_number)
    except NotFoundError:
        raise StoredImageError(f"Visit {visit_number} is not in the case database.") from None
    key = (lesion_key or "").strip().lower()
    matches = [les for les in visit.lesions if len(key) >= 8 and les.image.sha256.startswith(key)]
    if len(matches) != 1:
        raise StoredImageError(f"Visit {visit_number} has no lesion image “{lesion_key}”.")
    lesion = matches[0]
    number = lesion.lesion_number or lesion.lesion_id
    what = f"The stored image of lesion #{number} “{lesion.label}” (visit {visit_number})"
    name = lesion.image.original_filename or None
    try:
        data, name = read_source(store.image_path(lesion.image.sha256), name)
        image = decode_image(data, name) if sha256_of(data) == lesion.image.sha256 else None
    except (NotFoundError, ValueError) as exc:  # ImageDecodeError is a ValueError
        reason = exc.reason if isinstance(exc, ImageDecodeError) else str(exc)
        raise StoredImageError(f"{what} cannot be read: {reason}.") from None
    if image is None:
        raise StoredImageError(
            f"{what} is corrupt: the file no longer matches the checksum recorded when it was saved."
        )
    image.thumbnail((max_px, max_px))
    record = store.get_patient(visit.patient_id)
    context = PatientContext(identifier="", birth_year=record.birth_year, sex=record.sex)
    patient = PatientInfo(age=context.age(visit.image_date), sex=record.sex)  # at the visit's date (visit_date)
    return StoredLesionImage(visit=visit, lesion=lesion, image=image, site=lesion.site, patient=patient)


def export_filename(patient_id: int, fmt: str, today: dt.date | None = None) -> str:
    """No identifier in the name (it stays in download lists and browser history): the database id, as the
    outcomes export; the identifier is inside the file."""
    return f"case-history_patient-{int(patient_id)}_{(today or dt.date.today()).isoformat()}.{fmt}"
