"""The patient of a review: who they are (`PatientContext`), the new-patient form's checks, and loading a
patient saved before with their lesions and images (for follow-up linking). No Streamlit here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dashboard.choices import SEX_OPTIONS
from dashboard.store import validation
from dashboard.textsafe import literal

if TYPE_CHECKING:
    from dashboard.store.records import LesionSummary, PatientTimeline


# "Follow-up of" choice for a lesion seen for the first time. Not None: a select box whose value is None shows
# an empty "Choose an option", which reads as if nothing were decided. Database ids start at 1.
NEW_LESION = 0


@dataclass
class PatientContext:
    identifier: str
    birth_year: int | None = None
    sex: str = "unknown"
    patient_id: int | None = None  # set when the patient is already in the case store
    known_lesions: list[LesionSummary] = field(default_factory=list)
    # sha256 -> description of where this exact image was saved before
    known_images: dict[str, tuple[int, str]] = field(default_factory=dict)
    visit_count: int = 0
    # lesion id -> the day it was last seen: its latest visit's date (the images' day when one was entered)
    last_seen_on: dict[int, dt.date] = field(default_factory=dict)

    def age(self, on: dt.date | None = None) -> float | None:
        """The age in years (year of ``on`` minus the birth year) given to the model and shown: ``on`` is the
        visit's date by the store's rule (``store.records.visit_date``: the day the images were taken when
        entered, else the visit's local day); today when not given."""
        if self.birth_year is None:
            return None
        return float((on or dt.date.today()).year - self.birth_year)

    def describe(self, on: dt.date | None = None) -> str:
        """Who the patient is; the age is the one on ``on`` (the visit's date), named when not today."""
        parts = [self.identifier]
        age = self.age(on)
        if self.birth_year is not None:
            when = f" on {on.isoformat()}" if on is not None and on != dt.date.today() else ""
            parts.append(f"born {self.birth_year} (≈{age:.0f} y{when})")
        else:
            parts.append("age unknown")
        parts.append(self.sex if self.sex != "unknown" else "sex unknown")
        return " · ".join(parts)

    def history_line(self) -> str:
        """What the case store knows of this patient, for the review's patient banner."""
        if not self.patient_id:
            return "new patient — not in the case database yet"
        if not self.visit_count and not self.known_lesions:  # saved with this review: nothing earlier
            return "new patient — saved with this review"
        return f"{count(self.visit_count, 'earlier visit')}, {count(len(self.known_lesions), 'known lesion')}"

    def follow_up_options(self) -> list[int]:
        """The "Follow-up of" choices: NEW_LESION first, then the ids of the patient's known lesions."""
        return [NEW_LESION] + [lesion.id for lesion in self.known_lesions]

    def lesion_choice_label(self, lesion_id: int | None) -> str:
        if lesion_id is None or lesion_id == NEW_LESION:
            return "New lesion (first time seen)"
        for lesion in self.known_lesions:
            if lesion.id == lesion_id:
                day = self.last_seen_on.get(lesion_id) or lesion.last_seen
                seen = day.isoformat() if day else "never"
                return f"#{self.lesion_number(lesion_id)} {lesion.label} · {lesion.site} · last seen {seen}"
        return "another lesion"

    def lesion_number(self, lesion_id: int) -> int:
        """The lesion's number for this patient (1 = first seen), as pages show it; ids are global."""
        for position, lesion in enumerate(self.known_lesions, start=1):
            if lesion.id == lesion_id:
                return getattr(lesion, "number", 0) or position
        return 0


def count(n: int, noun: str) -> str:
    """``1 lesion``, ``2 lesions``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def validate_new_patient(identifier: str, birth_year: int | None, sex: str) -> list[str]:
    """Problems with a new-patient form, as messages (empty = fine): the case store's own rules
    (dashboard/store/validation.py, limits from data/settings.py), checked before anything is saved."""
    problems = []
    if not (identifier or "").strip():
        problems.append("Enter a pseudonymous patient identifier.")
    checks = [(validation.birth_year, int(birth_year) if birth_year is not None else None)]
    if (identifier or "").strip():
        checks.insert(0, (validation.identifier, identifier))
    checks.append((lambda value: validation.choice(value, "sex", SEX_OPTIONS), sex))
    for check, value in checks:
        try:
            check(value)
        except ValueError as exc:
            problems.append(_sentence(str(exc)))
    return problems


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:].rstrip(".") + "."


def patient_from_store(store: Any, patient_id: int) -> PatientContext:
    """Load an existing patient with the lesions and images saved before (for follow-up linking). Dates are
    the visits' dates (``VisitView.image_date``: the day the images were taken when one was entered)."""
    timeline: PatientTimeline = store.patient_timeline(patient_id)
    known_images: dict[str, tuple[int, str]] = {}
    last_seen_on: dict[int, dt.date] = {}
    for visit in timeline.visits:  # in the store's visit order, oldest first
        for lesion in visit.lesions:
            last_seen_on[lesion.lesion_id] = visit.image_date
            where = (lesion.lesion_id, f"visit of {visit.image_date.isoformat()} (lesion “{lesion.label}”)")
            known_images.setdefault(lesion.image.sha256, where)
            # The stored file has its metadata stripped: a re-upload matches the hash of the upload.
            if lesion.image.source_sha256:
                known_images.setdefault(lesion.image.source_sha256, where)
    record = timeline.patient
    return PatientContext(
        identifier=record.identifier,
        birth_year=record.birth_year,
        sex=record.sex,
        patient_id=record.id,
        known_lesions=list(store.list_lesions(patient_id)),
        known_images=known_images,
        visit_count=len(timeline.visits),
        last_seen_on=last_seen_on,
    )


def merge_form_into_existing(context: PatientContext, birth_year: int | None, sex: str) -> list[str]:
    """The new-patient form names a patient already in the store: what the form contradicts (e.g. "birth
    year 1961"), or nothing, and then the form fills what the record leaves unknown."""
    conflicts = []
    if birth_year and context.birth_year and birth_year != context.birth_year:
        conflicts.append(f"birth year {context.birth_year}")
    if sex != "unknown" and context.sex != "unknown" and sex != context.sex:
        conflicts.append(f"sex {context.sex}")
    if not conflicts:
        context.birth_year = context.birth_year or birth_year
        context.sex = context.sex if context.sex != "unknown" else sex
    return conflicts


def search_choice_label(summary: Any) -> str:
    """One patient found by a search (a store PatientSummary), as the pick list shows it. Options render
    Markdown, so the identifier is escaped. "last" is the date of the patient's latest visit by the store's
    rule (``last_visit_date``: the images' day when one was entered, else the visit's local day), not the
    day of the latest save."""
    day = summary.last_visit_date
    last = f", last {day.isoformat()}" if day else ""
    return (
        f"{literal(summary.identifier)} · born {summary.birth_year or '?'} · {summary.sex} · "
        f"{count(summary.visit_count, 'visit')}{last}"
    )
