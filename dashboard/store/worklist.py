"""The worklist across patients: monitored lesions due for repeat imaging, and biopsies or excisions whose
histology result is not recorded yet (a result that never comes back is a known way a melanoma is missed).

Read-only. A lesion is listed by its decision in force (not amended away) at the last visit that decided
on it:

- ``monitor``: due on that visit's day plus the decision's interval (``review_in_months``), or with no due day
  when the decision has no interval; until a later visit decides on the lesion (imaged again without a
  decision, it stays listed as such: a lesion under surveillance must not drop out unseen);
- ``biopsy`` / ``excise``: until a histology result (any, "not done" included) is recorded after the decision.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.store.core import StoreCore, id_batches, numbers_of_patients, visit_order_key
from dashboard.store.models import TISSUE_ACTIONS, Decision, Histology, Lesion, LesionImage, Patient, Visit
from dashboard.store.views import decisions_in_force

_DECISION_COLUMNS = (
    Decision.id,
    Decision.lesion_id,
    Decision.visit_id,
    Decision.action,
    Decision.review_in_months,
    Decision.clinician,
    Decision.decided_at,
    Decision.amends_id,
)


@dataclass(frozen=True)
class WorklistItem:
    """One lesion waiting for something: repeat imaging (monitor) or its histology result (biopsy, excise)."""

    patient_id: int
    identifier: str
    lesion_id: int
    lesion_number: int  # per patient, as pages show it
    label: str
    site: str
    visit_id: int
    visit_number: int
    visit_day: date  # the day of the visit that decided (visit_date)
    action: str
    clinician: str
    review_in_months: int | None
    due: date | None  # monitor with an interval: when the repeat imaging is due; else None
    reimaged_on: date | None = None  # monitor: the day of a later visit that imaged it without deciding


def review_due(visit_day: date, months: int | None) -> date | None:
    """When a monitor decision's repeat imaging is due: its visit's day plus its interval (None without one;
    the database keeps intervals on monitor decisions only)."""
    return add_months(visit_day, months) if months else None


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class Worklists(StoreCore):
    def worklist(self) -> list[WorklistItem]:
        """Every lesion waiting for repeat imaging (or, imaged again, for its decision) or for a histology
        result, all patients: monitored lesions imaged again first, then by due day (no interval last), then
        results by the decision's day."""
        amended = select(Decision.amends_id).where(Decision.amends_id.is_not(None))
        with self._read() as session:
            # Columns, not Decision entities: every decision not amended away is read, a clinic's whole history.
            rows = session.execute(
                select(*_DECISION_COLUMNS, Visit.taken_on, Visit.visit_time)
                .join(Visit, Visit.id == Decision.visit_id)
                .where(Decision.id.not_in(amended))
            ).all()
            visit_keys = {d.visit_id: visit_order_key(d.taken_on, d.visit_time, d.visit_id) for d in rows}
            in_force = decisions_in_force(rows, visit_keys)
            waiting = {
                lesion_id: (visit_keys[d.visit_id], d)
                for lesion_id, d in in_force.items()
                if d.action in ("monitor", *TISSUE_ACTIONS)
            }
            if not waiting:
                return []
            imaged = _last_imaged(session, list(waiting))
            reported = _last_reported(session, list(waiting))
            lesions = {
                lesion.id: lesion
                for batch in id_batches(waiting)
                for lesion in session.execute(
                    select(Lesion.id, Lesion.patient_id, Lesion.label, Lesion.site).where(Lesion.id.in_(batch))
                )
            }
            identifiers = {
                patient_id: identifier
                for batch in id_batches(lesion.patient_id for lesion in lesions.values())
                for patient_id, identifier in session.execute(
                    select(Patient.id, Patient.identifier).where(Patient.id.in_(batch))
                )
            }
            numbers = numbers_of_patients(session, identifiers)
            items = []
            for lesion_id, (key, d) in waiting.items():
                later = imaged.get(lesion_id)
                reimaged_on = later[0] if d.action == "monitor" and later is not None and later > key else None
                if d.action in TISSUE_ACTIONS and reported.get(lesion_id) and reported[lesion_id] >= d.decided_at:
                    continue  # a result is recorded
                lesion = lesions[lesion_id]
                visit_no, lesion_no = numbers[lesion.patient_id]
                day = key[0]
                months = d.review_in_months if d.action == "monitor" else None
                items.append(
                    WorklistItem(
                        patient_id=lesion.patient_id,
                        identifier=identifiers[lesion.patient_id],
                        lesion_id=lesion_id,
                        lesion_number=lesion_no.get(lesion_id, 0),
                        label=lesion.label,
                        site=lesion.site,
                        visit_id=d.visit_id,
                        visit_number=visit_no.get(d.visit_id, 0),
                        visit_day=day,
                        action=d.action,
                        clinician=d.clinician,
                        review_in_months=months,
                        due=review_due(day, months),
                        reimaged_on=reimaged_on,
                    )
                )
        return sorted(
            items,
            key=lambda i: (
                i.action != "monitor",
                i.reimaged_on is None,
                i.due is None,
                i.due or i.visit_day,
                i.visit_day,
            ),
        )


def _last_imaged(session: Session, lesion_ids: list[int]) -> dict[int, tuple]:
    """Per lesion, the order key (visit_order_key) of the last visit with a dermoscopic image of it."""
    found: dict[int, tuple] = {}
    for batch in id_batches(lesion_ids):
        for lesion_id, taken_on, visit_time, visit_id in session.execute(
            select(LesionImage.lesion_id, Visit.taken_on, Visit.visit_time, Visit.id)
            .join(Visit, Visit.id == LesionImage.visit_id)
            .where(LesionImage.lesion_id.in_(batch), LesionImage.kind == "dermoscopic")
        ):
            key = visit_order_key(taken_on, visit_time, visit_id)
            found[lesion_id] = max(found.get(lesion_id, key), key)
    return found


def _last_reported(session: Session, lesion_ids: list[int]) -> dict[int, datetime]:
    """Per lesion, when its last histology result was recorded."""
    found = {}
    for batch in id_batches(lesion_ids):
        for lesion_id, recorded_at in session.execute(
            select(Histology.lesion_id, Histology.recorded_at).where(Histology.lesion_id.in_(batch))
        ):
            found[lesion_id] = max(found.get(lesion_id, recorded_at), recorded_at)
    return found
