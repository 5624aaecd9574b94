"""After a visit is saved: amending a decision, recording histology, and the outcomes as labelled data.

Both are append-only: an amendment is a new decision row that replaces an earlier one, a corrected
histology is a new row; the earlier rows stay, so the record shows what was decided and reported, when,
and by whom. Every change is one transaction with its audit entry (old → new; free text is never copied
into the audit trail, which holds ids and codes only).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from dashboard.store import export, validation, views
from dashboard.store.core import StoreCore, get_row, id_batches, numbers_of_patients
from dashboard.store.models import (
    TISSUE_ACTIONS,
    AuditEvent,
    Decision,
    Histology,
    Lesion,
    LesionImage,
    Patient,
    Prediction,
    Visit,
)
from dashboard.store.records import HistologyView, OutcomeRow, visit_date

logger = logging.getLogger(__name__)


class Outcomes(StoreCore):
    # ------------------------------------------------------------ decisions

    def amend_decision(
        self,
        decision_id: int,
        action: str,
        comment: str = "",
        *,
        reason: str,
        actor: str,
        review_in_months: int | None = None,
    ) -> int:
        """Replace a saved decision (the one in force) with a new action, comment and (monitor) repeat-imaging
        interval; returns the new id. The replaced decision is kept; the amendment names it, the reason and who
        amended it.
        """
        action = validation.action(action)
        comment = validation.free_text(comment, "decision comment")
        months = validation.review_months(review_in_months, action)
        reason = validation.text(reason, "reason for the amendment", max_len=2_000)
        actor = validation.name(actor, "actor")
        try:
            with self._write.begin() as session:
                old = get_row(session, Decision, decision_id, "decision")
                newer = session.scalar(select(Decision).where(Decision.amends_id == old.id))
                if newer is not None:
                    raise ValueError(
                        f"this decision was already amended by {newer.clinician} "
                        f"on {newer.decided_at:%Y-%m-%d %H:%M} UTC; reload and amend the current one"
                    )
                if (action, comment, months) == (old.action, old.comment, old.review_in_months):
                    raise ValueError("the amendment changes neither the action, the interval nor the comment")
                new = Decision(
                    lesion_id=old.lesion_id,
                    visit_id=old.visit_id,
                    clinician=actor,
                    action=action,
                    comment=comment,
                    review_in_months=months,
                    amends_id=old.id,
                    amend_reason=reason,
                )
                session.add(new)
                session.flush()
                session.add(
                    AuditEvent(
                        actor=actor,
                        action="decision.amend",
                        patient_id=old.lesion.patient_id,
                        detail={
                            "visit_id": old.visit_id,
                            "lesion_id": old.lesion_id,
                            "decision_id": new.id,
                            "amends": old.id,
                            "old_action": old.action,
                            "new_action": action,
                            **({"review_in_months": months} if months else {}),
                            "comment_changed": comment != old.comment,
                        },
                    )
                )
                new_id = new.id
        except IntegrityError:
            # Two amendments of one decision at once: the unique amends_id lets one of them commit.
            raise ValueError("this decision was amended by someone else meanwhile; reload and try again") from None
        logger.info("amended decision %d (now %d)", decision_id, new_id)
        return new_id

    def record_decision(
        self,
        visit_id: int,
        lesion_id: int,
        action: str,
        comment: str = "",
        *,
        actor: str,
        review_in_months: int | None = None,
    ) -> int:
        """A decision taken after saving, for a lesion reviewed at that visit without one (saved undecided, e.g.
        while waiting for a colleague's opinion); returns its id. A lesion with a decision is amended instead.
        """
        action = validation.action(action)
        comment = validation.free_text(comment, "decision comment")
        months = validation.review_months(review_in_months, action)
        actor = validation.name(actor, "actor")
        with self._write.begin() as session:
            lesion = get_row(session, Lesion, lesion_id, "lesion")
            reviewed = session.scalar(
                select(LesionImage).where(
                    LesionImage.lesion_id == lesion_id,
                    LesionImage.visit_id == visit_id,
                    LesionImage.kind == "dermoscopic",
                )
            )
            if reviewed is None:
                raise ValueError(f"lesion {lesion_id} was not reviewed at visit {visit_id}")
            taken = session.scalar(
                select(Decision).where(Decision.lesion_id == lesion_id, Decision.visit_id == visit_id).limit(1)
            )
            if taken is not None:
                raise ValueError(
                    f"this lesion already has a decision for that visit ({taken.action}, {taken.clinician}); "
                    "amend it instead"
                )
            score = reviewed.predictions[-1] if reviewed.predictions else None
            new = Decision(
                lesion_id=lesion_id,
                visit_id=visit_id,
                clinician=actor,
                action=action,
                comment=comment,
                review_in_months=months,
            )
            session.add(new)
            session.flush()
            session.add(
                AuditEvent(
                    actor=actor,
                    action="decision.record",
                    patient_id=lesion.patient_id,
                    detail={  # as a decision saved with the visit, plus when it was taken
                        "visit_id": visit_id,
                        "lesion_id": lesion_id,
                        "decision_id": new.id,
                        "action": action,
                        **({"review_in_months": months} if months else {}),
                        "model_id": reviewed.visit.model_version,
                        "p_melanoma": round(score.p_melanoma, 4) if score is not None else None,
                        "after_saving": True,
                    },
                )
            )
            new_id = new.id
        logger.info("recorded decision %d after saving", new_id)
        return new_id

    # ------------------------------------------------------------ histology

    def record_histology(
        self,
        lesion_id: int,
        result: str,
        *,
        actor: str,
        reported_on: date | None = None,
        note: str = "",
    ) -> HistologyView:
        """Record (or correct) a lesion's histology result, with the report date; audited old → new.

        A result other than "not_done" needs the date of the histology report.
        """
        result = validation.histology_result(result)
        actor = validation.name(actor, "actor")
        note = validation.free_text(note, "histology note", max_len=2_000)
        if reported_on is None and result != "not_done":
            raise ValueError("a histology result needs the date of the report")
        with self._write.begin() as session:
            lesion = get_row(session, Lesion, lesion_id, "lesion")
            birth_year = session.get(Patient, lesion.patient_id).birth_year
            reported_on = validation.past_date(reported_on, "histology report date", birth_year)
            previous = session.scalar(
                select(Histology).where(Histology.lesion_id == lesion.id).order_by(Histology.id.desc()).limit(1)
            )
            if previous is not None and (previous.result, previous.reported_on, previous.note) == (
                result,
                reported_on,
                note,
            ):
                raise ValueError("this histology result is already recorded for the lesion")
            row = Histology(lesion_id=lesion.id, result=result, reported_on=reported_on, recorded_by=actor, note=note)
            session.add(row)
            session.flush()
            session.add(
                AuditEvent(
                    actor=actor,
                    action="histology.record" if previous is None else "histology.amend",
                    patient_id=lesion.patient_id,
                    detail={
                        "lesion_id": lesion.id,
                        "histology_id": row.id,
                        "old": None if previous is None else previous.result,
                        "new": result,
                        "old_reported_on": None
                        if previous is None or previous.reported_on is None
                        else previous.reported_on.isoformat(),
                        "reported_on": None if reported_on is None else reported_on.isoformat(),
                    },
                )
            )
            return views.histology_view(row)

    def histology_history(self, lesion_id: int) -> list[HistologyView]:
        """Every histology result recorded for the lesion, oldest first (the last is in force)."""
        with self._read() as session:
            get_row(session, Lesion, lesion_id, "lesion")
            rows = session.scalars(select(Histology).where(Histology.lesion_id == lesion_id).order_by(Histology.id))
            return [views.histology_view(h) for h in rows]

    # ------------------------------------------------------------ labelled data

    def outcomes(self, patient_id: int | None = None, *, include_not_done: bool = False) -> list[OutcomeRow]:
        """Lesions with a histology result, one row per scored (dermoscopic) image: labelled data for the
        next model evaluation. All patients, or one. "not_done" carries no label and is left out unless
        asked for. Overview photos are never scored, so never listed."""
        stmt = (
            select(Lesion)
            .where(Lesion.histology.any())
            .order_by(Lesion.patient_id, Lesion.id)
            .options(
                selectinload(Lesion.patient),
                selectinload(Lesion.histology),
                selectinload(Lesion.images).selectinload(LesionImage.visit),
                selectinload(Lesion.images).selectinload(LesionImage.predictions),
            )
        )
        if patient_id is not None:
            stmt = stmt.where(Lesion.patient_id == patient_id)
        rows: list[dict[str, Any]] = []
        with self._read() as session:
            if patient_id is not None:
                get_row(session, Patient, patient_id, "patient")
            lesions = list(session.scalars(stmt))
            numbers = numbers_of_patients(session, (lesion.patient_id for lesion in lesions))
            tissue = _tissue_decisions(session, [lesion.id for lesion in lesions])  # one query for all
            for lesion in lesions:
                histology = lesion.histology[-1]
                if histology.result == "not_done" and not include_not_done:
                    continue
                visit_no, lesion_no = numbers[lesion.patient_id]
                scored = sorted(
                    (i for i in lesion.images if i.kind == "dermoscopic" and i.predictions),
                    key=lambda i: (visit_no.get(i.visit_id, 0), i.id),
                )
                closest = _labelled_image(scored, histology.reported_on, tissue.get(lesion.id, []), visit_no)
                for image in scored:
                    pred, visit, patient = image.predictions[-1], image.visit, lesion.patient
                    image_date = visit_date(visit.taken_on, visit.visit_time)  # the local day, not UTC's
                    rows.append(
                        dict(
                            patient_id=lesion.patient_id,
                            lesion_id=lesion.id,
                            lesion_number=lesion_no.get(lesion.id, 0),
                            site=lesion.site,
                            body_region=lesion.body_region,
                            visit_id=visit.id,
                            visit_number=visit_no.get(visit.id, 0),
                            image_date=image_date,
                            age_at_visit=None if patient.birth_year is None else image_date.year - patient.birth_year,
                            sex=patient.sex,
                            image_sha256=image.sha256,
                            model_id=pred.model_id,
                            model_checksum=pred.model_checksum,
                            p_melanoma=pred.p_melanoma,
                            p_spread=pred.p_spread,
                            tta_views=pred.tta_views,
                            ugly_duckling=pred.ugly_duckling,
                            outlier=pred.outlier,
                            rank=pred.rank,
                            histology=histology.result,
                            reported_on=histology.reported_on,
                            latest_image=image is closest,
                        )
                    )
            ranked = _ranked_per_visit(session, {row["visit_id"] for row in rows})
        return [OutcomeRow(**row, ranked_in_visit=ranked.get(row["visit_id"], 0)) for row in rows]

    def export_outcomes(self, patient_id: int | None = None, *, actor: str, include_not_done: bool = False) -> str:
        """The labelled outcomes as CSV (see ``outcomes``); pseudonymous; the export is audited."""
        rows = self.outcomes(patient_id, include_not_done=include_not_done)
        text = export.outcomes_to_csv(rows)
        self.record_event(
            actor,
            "outcomes.export",
            patient_id,
            {
                "format": "csv",
                "scope": "patient" if patient_id is not None else "all",
                "rows": len(rows),
                "lesion_ids": sorted({r.lesion_id for r in rows}),
            },
        )
        logger.info("exported %d outcome rows", len(rows))
        return text


def _ranked_per_visit(session: Session, visit_ids: set[int]) -> dict[int, int]:
    """How many lesions each visit ranked: its scored dermoscopic images (one per lesion and visit), the
    denominator of a lesion's rank."""
    if not visit_ids:
        return {}
    counts = {}
    for batch in id_batches(visit_ids):
        scored = (
            select(LesionImage.visit_id, func.count(func.distinct(LesionImage.id)))
            .join(Prediction, Prediction.image_id == LesionImage.id)
            .where(LesionImage.kind == "dermoscopic", LesionImage.visit_id.in_(batch))
            .group_by(LesionImage.visit_id)
        )
        counts.update({visit_id: int(count) for visit_id, count in session.execute(scored)})
    return counts


# Decisions that take tissue (models.TISSUE_ACTIONS): the visit of the last one is the visit the histology
# result belongs to.


def _tissue_decisions(session: Session, lesion_ids: list[int]) -> dict[int, list[tuple[int, date]]]:
    """Per lesion, (visit id, the visit's day) of each biopsy or excision decision in force (not amended away)."""
    if not lesion_ids:
        return {}
    amended = select(Decision.amends_id).where(Decision.amends_id.is_not(None))
    found: dict[int, list[tuple[int, date]]] = defaultdict(list)
    for batch in id_batches(lesion_ids):
        for lesion_id, visit_id, taken_on, visit_time in session.execute(
            select(Decision.lesion_id, Decision.visit_id, Visit.taken_on, Visit.visit_time)
            .join(Visit, Visit.id == Decision.visit_id)
            .where(Decision.lesion_id.in_(batch), Decision.action.in_(TISSUE_ACTIONS), Decision.id.not_in(amended))
        ):
            found[lesion_id].append((visit_id, visit_date(taken_on, visit_time)))
    return found


def _labelled_image(
    scored: list[LesionImage], reported_on: date | None, tissue: list[tuple[int, date]], visit_no: dict[int, int]
) -> LesionImage | None:
    """The image the histology result labels: the lesion's last scored image at the visit of its last biopsy or
    excision decision (``tissue``) on or before the report's day, or before that visit; without such a
    decision, the last taken on or before the report's day (a follow-up photographed after the excision shows
    the scar, not the lesion; a report comes 1-3 weeks after the procedure). The last image when the result has
    no date ("not done"); None when none qualifies."""
    procedures = [visit_no.get(v, 0) for v, day in tissue if reported_on is None or day <= reported_on]
    if procedures:
        before = [i for i in scored if visit_no.get(i.visit_id, 0) <= max(procedures)]
    elif reported_on is None:
        before = scored
    else:
        before = [i for i in scored if visit_date(i.visit.taken_on, i.visit.visit_time) <= reported_on]
    return before[-1] if before else None
