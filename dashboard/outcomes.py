"""Case history after saving, without Streamlit: decisions taken later or amended, histology results, the
outcomes.

The page (dashboard/outcomes_ui.py, in views/history.py) shows these tables and calls ``submit_*``, which
turn the store's refusals into a message the user can act on and change nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dashboard.auth import AccessDenied
from dashboard.choices import decision_label
from dashboard.report_text import ranked
from dashboard.store.core import NotFoundError, visit_order_key
from dashboard.store.models import HISTOLOGY_RESULTS
from dashboard.store.records import DecisionView, LesionSummary, OutcomeRow, VisitView, visit_date
from dashboard.wording import pct, review_interval

HISTOLOGY_LABELS: dict[str, str] = {
    "melanoma": "Melanoma",
    "other_malignant": "Other malignant",
    "benign": "Benign",
    "not_done": "Not done (no specimen)",
}
assert tuple(HISTOLOGY_LABELS) == HISTOLOGY_RESULTS


@dataclass(frozen=True)
class Feedback:
    ok: bool
    message: str


def _submit(action: Callable[[], Any], done: str) -> Feedback:
    try:
        action()
    except (AccessDenied, ValueError, NotFoundError) as exc:
        return Feedback(False, f"Not saved: {exc}.")
    return Feedback(True, done)


def submit_histology(
    store: Any, lesion: LesionSummary, result: str | None, reported_on: dt.date | None, note: str = ""
) -> Feedback:
    """Record (or correct) the lesion's histology under the signed-in user; a refusal changes nothing. The form
    has no default result (``None`` until one is chosen): a preset answer would be recorded by a click that
    only meant to add the date."""
    if result is None:
        return Feedback(False, "Not saved: choose the histology result.")
    when = "" if result == "not_done" or reported_on is None else f", reported {reported_on.isoformat()}"
    done = f"Histology of lesion #{lesion.number or lesion.id} recorded: {HISTOLOGY_LABELS.get(result, result)}{when}."
    return _submit(lambda: store.record_histology(lesion.id, result, reported_on=reported_on, note=note), done)


def _interval(action: str, review_months: int | None) -> tuple[int | None, str]:
    """The interval a form's decision keeps (a monitor decision's only) and how the message names it."""
    months = review_months if action == "monitor" else None
    return months, review_interval(months)


def submit_amendment(
    store: Any, decision: DecisionView, action: str, comment: str, reason: str, review_months: int | None = None
) -> Feedback:
    """Amend a decision in force under the signed-in user; the original stays in the record. ``review_months``
    is kept for a monitor decision only (the form offers it beside every action)."""
    months, said = _interval(action, review_months)
    lesion = decision.lesion_number or decision.lesion_id
    before = f" ({decision.review_in_months} months)" if decision.review_in_months else ""
    was, now = decision_label(decision.action), decision_label(action)
    done = f"Decision on lesion #{lesion} amended: {was}{before} → {now}{said}."
    return _submit(
        lambda: store.amend_decision(decision.id, action, comment, reason=reason, review_in_months=months), done
    )


@dataclass(frozen=True)
class UndecidedLesion:
    """A lesion reviewed at a saved visit without a decision: one that can be decided after saving."""

    visit_id: int
    visit_time: dt.datetime
    lesion_id: int
    lesion_number: int
    label: str
    p_melanoma: float | None
    visit_date: dt.date | None = None  # the visit's date by the store's rule (``VisitView.image_date``)


def undecided(visits: Sequence[VisitView]) -> list[UndecidedLesion]:
    """The lesions saved without a decision, latest visit first (the store's visit order: by the visits'
    dates, ``visit_order_key``) and, within a visit, in its triage order."""
    found = []
    for visit in sorted(visits, key=lambda v: visit_order_key(v.taken_on, v.visit_time, v.id), reverse=True):
        found += [
            UndecidedLesion(
                visit.id,
                visit.visit_time,
                les.lesion_id,
                les.lesion_number,
                les.label,
                les.prediction.p_melanoma if les.prediction else None,
                visit.image_date,
            )
            for les in ranked(visit.lesions)
            if les.decision is None
        ]
    return found


def undecided_choice_label(item: UndecidedLesion) -> str:
    score = f" · P(melanoma) {pct(item.p_melanoma)}" if item.p_melanoma is not None else ""
    visit = f"visit of {(item.visit_date or visit_date(None, item.visit_time)).isoformat()}"
    return f"#{item.lesion_number or item.lesion_id} {item.label} · {visit}{score}"


def submit_decision(
    store: Any, item: UndecidedLesion, action: str | None, comment: str, review_months: int | None = None
) -> Feedback:
    """Record the decision for a lesion saved undecided, under the signed-in user (``review_months``: as in
    submit_amendment). No default decision (``None`` until one is chosen), as for histology."""
    if action is None:
        return Feedback(False, "Not saved: choose the decision.")
    months, said = _interval(action, review_months)
    done = f"Decision on lesion #{item.lesion_number or item.lesion_id} recorded: {decision_label(action)}{said}."
    return _submit(
        lambda: store.record_decision(item.visit_id, item.lesion_id, action, comment, review_in_months=months), done
    )


# ---------------------------------------------------------------- what the page shows


def visit_date_text(visit: VisitView) -> str:
    """The day the images were taken, and the save time when that was another day."""
    saved = visit.visit_time.astimezone()
    if visit.taken_on is None or visit.taken_on == saved.date():
        return f"{saved:%Y-%m-%d %H:%M}"
    return f"images taken {visit.taken_on:%Y-%m-%d} (saved {saved:%Y-%m-%d %H:%M})"


def decision_status(decisions: Sequence[DecisionView], visits: Sequence[VisitView]) -> dict[int, str]:
    """Each decision's status by id, by the store's rule (store.patients.decisions_in_force, which gives each
    lesion's latest action): of the decisions no amendment replaced, the one of the latest visit (the store's
    visit order: ``visits`` are the patient's timeline, numbered) is "in force"; an earlier visit's decision
    on the same lesion is "superseded by visit N", and an amended one "replaced" (by the amendment)."""
    number = {v.id: v.number or v.id for v in visits}
    in_force: dict[int, DecisionView] = {}
    for d in decisions:
        if d.superseded:
            continue
        kept = in_force.get(d.lesion_id)
        if kept is None or (number.get(d.visit_id, 0), d.id) > (number.get(kept.visit_id, 0), kept.id):
            in_force[d.lesion_id] = d
    status = {}
    for d in decisions:
        if d.superseded:
            status[d.id] = "replaced"
        elif in_force[d.lesion_id].id == d.id:
            status[d.id] = "in force"
        else:
            status[d.id] = f"superseded by visit {number.get(in_force[d.lesion_id].visit_id, '?')}"
    return status


def amendable(decisions: Sequence[DecisionView], visits: Sequence[VisitView]) -> list[DecisionView]:
    """The decisions in force (neither amended nor superseded by a later visit's), newest first: the ones
    that can be amended."""
    status = decision_status(decisions, visits)
    return [d for d in reversed(list(decisions)) if status[d.id] == "in force"]


def decision_day(d: DecisionView, visits: Sequence[VisitView] = ()) -> dt.date:
    """The date of the decision's visit by the store's rule (``store.records.visit_date``: the day the images
    were taken when entered, else the visit time's local day): from the patient's ``visits`` when given,
    else the decision record's own ``visit_date``; never the day it was saved or decided."""
    by_visit = {v.id: v.image_date for v in visits}
    return by_visit.get(d.visit_id) or d.visit_date or visit_date(None, d.visit_time)


def decision_choice_label(d: DecisionView) -> str:
    return (
        f"#{d.lesion_number or d.lesion_id} {d.lesion_label} · {decision_label(d.action)} · visit of "
        f"{decision_day(d).isoformat()}" + (" (amended)" if d.amends_id is not None else "")
    )


def decision_record_table(decisions: Sequence[DecisionView], visits: Sequence[VisitView]) -> pd.DataFrame:
    """Every decision, newest first, with what replaced what: amendments keep the original readable, and a
    later visit's decision on the lesion supersedes an earlier visit's (``decision_status``)."""
    by_id = {d.id: d for d in decisions}
    status = decision_status(decisions, visits)
    days = {v.id: v.image_date for v in visits}
    return pd.DataFrame(
        [
            {
                "visit date": (days.get(d.visit_id) or decision_day(d)).isoformat(),
                "lesion": f"#{d.lesion_number or d.lesion_id} {d.lesion_label}",
                "decision": decision_label(d.action) + review_interval(d.review_in_months),
                "comment": d.comment,
                "status": status[d.id],
                "amends": decision_label(by_id[d.amends_id].action) if d.amends_id in by_id else "",
                "reason": d.amend_reason,
                "by": d.clinician,
                "recorded": d.decided_at.astimezone().strftime("%Y-%m-%d %H:%M"),
            }
            for d in reversed(list(decisions))
        ],
        columns=["visit date", "lesion", "decision", "comment", "status", "amends", "reason", "by", "recorded"],
    )


def lesion_choice_label(lesion: LesionSummary) -> str:
    histology = f" · histology: {HISTOLOGY_LABELS[lesion.histology.result]}" if lesion.histology else ""
    action = f" · {decision_label(lesion.latest_action)}" if lesion.latest_action else ""
    return f"#{lesion.number or lesion.id} {lesion.label} · {lesion.site}{action}{histology}"


def histology_table(history: Sequence[Any]) -> pd.DataFrame:
    """A lesion's recorded results, newest first (the first row is in force)."""
    return pd.DataFrame(
        [
            {
                "result": HISTOLOGY_LABELS.get(h.result, h.result),
                "report date": h.reported_on.isoformat() if h.reported_on else "",
                "note": h.note,
                "recorded by": h.recorded_by,
                "recorded": h.recorded_at.astimezone().strftime("%Y-%m-%d %H:%M"),
            }
            for h in reversed(list(history))
        ],
        columns=["result", "report date", "note", "recorded by", "recorded"],
    )


def outcomes_table(rows: Sequence[OutcomeRow]) -> pd.DataFrame:
    """The labelled outcomes as the page lists them: one row per scored image, the latest image marked."""
    return pd.DataFrame(
        [
            {
                "lesion": f"#{r.lesion_number or r.lesion_id}",
                "site": r.site,
                "region": r.body_region or "",
                "visit": r.visit_number or r.visit_id,
                "image date": r.image_date.isoformat(),
                "age": r.age_at_visit,
                "P(melanoma)": r.p_melanoma,
                "± spread": r.p_spread,
                "ugly duckling": r.ugly_duckling,
                "rank": r.rank,
                "model": r.model_id,
                "histology": HISTOLOGY_LABELS.get(r.histology, r.histology),
                "latest image": r.latest_image,
            }
            for r in rows
        ],
        columns=[
            "lesion",
            "site",
            "region",
            "visit",
            "image date",
            "age",
            "P(melanoma)",
            "± spread",
            "ugly duckling",
            "rank",
            "model",
            "histology",
            "latest image",
        ],
    )


def outcomes_filename(patient_id: int | None = None, today: dt.date | None = None) -> str:
    """No identifier in the name: the file is pseudonymous (database ids only)."""
    day = (today or dt.date.today()).isoformat()
    scope = f"patient-{patient_id}" if patient_id is not None else "all-patients"
    return f"outcomes-{scope}-{day}.csv"
