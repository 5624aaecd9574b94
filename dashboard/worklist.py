"""The Worklist page's tables, without Streamlit: from the store's worklist (dashboard/store/worklist.py),
monitored lesions by due day and biopsies/excisions waiting for histology, with how late each is."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd

from dashboard.choices import decision_label
from dashboard.wording import counted

DUE_SOON_DAYS = 30  # "due soon": within a month
RESULT_CHASE_DAYS = 28  # a histology report usually comes within 1-3 weeks: chase the lab after four

REPEAT_COLUMNS = ["status", "due", "patient", "lesion", "decided", "by", "patient_id"]
RESULT_COLUMNS = ["status", "decision", "patient", "lesion", "decided", "by", "patient_id"]


def repeat_status(due: dt.date | None, today: dt.date, reimaged_on: dt.date | None = None) -> str:
    if reimaged_on is not None:
        return f"imaged again {reimaged_on.isoformat()}, no decision yet"
    if due is None:
        return "no interval set"
    days = (due - today).days
    if days < 0:
        return f"overdue by {counted(-days, 'day')}"
    if days == 0:
        return "due today"
    return f"due in {counted(days, 'day')}"


def result_status(decided: dt.date, today: dt.date) -> str:
    days = (today - decided).days
    text = f"waiting {counted(days, 'day')}"
    return text + " — chase the result" if days > RESULT_CHASE_DAYS else text


def _common(item: Any) -> dict[str, Any]:
    return {
        "patient": item.identifier,
        "lesion": f"#{item.lesion_number or item.lesion_id} {item.label} · {item.site}",
        "decided": f"{item.visit_day.isoformat()} (visit {item.visit_number})",
        "by": item.clinician,
        "patient_id": item.patient_id,
    }


def repeat_imaging_table(items: Sequence[Any], today: dt.date, within_days: int | None = None) -> pd.DataFrame:
    """Monitored lesions waiting for repeat imaging or, imaged again, for a decision (those first), then by due
    day (overdue first, no interval last); ``within_days``: only those imaged again, overdue or due within that
    many days."""
    rows = [
        {"status": repeat_status(i.due, today, i.reimaged_on), "due": i.due.isoformat() if i.due else "", **_common(i)}
        for i in items
        if i.action == "monitor"
        and (
            within_days is None
            or i.reimaged_on is not None
            or (i.due is not None and (i.due - today).days <= within_days)
        )
    ]
    return pd.DataFrame(rows, columns=REPEAT_COLUMNS)


def results_table(items: Sequence[Any], today: dt.date) -> pd.DataFrame:
    """Biopsies and excisions without a histology result, longest waiting first."""
    waiting = sorted((i for i in items if i.action != "monitor"), key=lambda i: i.visit_day)
    rows = [
        {"status": result_status(i.visit_day, today), "decision": decision_label(i.action), **_common(i)}
        for i in waiting
    ]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def counts(items: Sequence[Any], today: dt.date) -> dict[str, int]:
    """The numbers above the tables."""
    monitor = [i for i in items if i.action == "monitor"]
    results = [i for i in items if i.action != "monitor"]
    return {
        "monitored": len(monitor),
        "undecided": sum(1 for i in monitor if i.reimaged_on is not None),
        "overdue": sum(1 for i in monitor if i.reimaged_on is None and i.due is not None and i.due < today),
        "due_soon": sum(
            1
            for i in monitor
            if i.reimaged_on is None and i.due is not None and 0 <= (i.due - today).days <= DUE_SOON_DAYS
        ),
        # the rows whose status reads "no interval set": a lesion imaged again needs a decision, not an interval
        "no_interval": sum(1 for i in monitor if i.reimaged_on is None and i.due is None),
        "results": len(results),
        "chase": sum(1 for i in results if (today - i.visit_day).days > RESULT_CHASE_DAYS),
    }
