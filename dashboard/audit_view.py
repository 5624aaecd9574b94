"""Audit-log page logic without Streamlit: the action filter, the table, the CSV export.

The table on the page shows a decision or histology result in an event's detail by its label ("Monitor"); the
CSV keeps the stored code ("monitor"), as the patient and outcomes exports do (``choices.EXPORT_CODES_NOTE``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from dashboard.choices import decision_label
from dashboard.outcomes import HISTOLOGY_LABELS
from data.spreadsheet_cells import defuse_formula

# "" = every action; a value ending in "." matches every action with that prefix.
AUDIT_ACTIONS: dict[str, str] = {
    "": "all actions",
    "auth.": "sign-in / sign-out (all)",
    "auth.login_failed": "failed sign-ins",
    "patient.": "patient searches, views, exports, reports",
    "image.view": "saved image views",
    "review.save": "saved visits",
    "decision.": "decisions",  # recorded and amended
    "histology.": "histology results (recorded, amended)",
    "lesion.region": "body-map regions",
    "outcomes.": "outcomes: exports, the Model page's clinic figures",
    "patient.export": "exports",
    "patient.report": "visit reports (PDF)",
    "user.": "account changes",
    "audit.export": "audit-log exports",
}

COLUMNS = ["time (UTC)", "user", "action", "patient id", "model", "detail"]


def day_range(days: Any) -> tuple[dt.datetime | None, dt.datetime | None]:
    """A date_input value (a date, or a 1- or 2-tuple of dates) as [since, until) in UTC."""
    if isinstance(days, dt.date):
        days = (days,)
    days = [d for d in (days or ()) if d is not None]
    if not days:
        return None, None
    start = dt.datetime.combine(days[0], dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(days[-1], dt.time(), tzinfo=dt.UTC) + dt.timedelta(days=1)
    return start, end


# The detail fields that hold a stored code, by the event family that writes them, with their label.
_CODED_DETAIL: dict[str, tuple[tuple[str, ...], Callable[[str], str]]] = {
    "decision.": (("action", "old_action", "new_action"), decision_label),
    "histology.": (("old", "new"), lambda code: HISTOLOGY_LABELS.get(code, code)),
}


def _labelled(action: str, detail: dict[str, Any]) -> dict[str, Any]:
    """An event's detail as people read it: its coded values (decisions, histology results) by their labels."""
    for family, (keys, label) in _CODED_DETAIL.items():
        if action.startswith(family):
            return {k: label(v) if k in keys and isinstance(v, str) else v for k, v in detail.items()}
    return detail


def audit_table(events: Sequence[Any], *, labels: bool = True) -> pd.DataFrame:
    """The events as the page shows them; ``labels=False`` keeps the stored codes in the detail (the CSV)."""
    rows = []
    for e in events:
        detail = dict(e.detail or {})
        if labels:
            detail = _labelled(e.action, detail)
        rows.append(
            {
                "time (UTC)": e.occurred_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
                "user": e.actor,
                "action": e.action,
                "patient id": e.patient_id,
                "model": detail.pop("model_id", None),
                "detail": json.dumps(detail, sort_keys=True, ensure_ascii=False) if detail else "",
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["patient id"] = table["patient id"].astype("Int64")
    return table


def audit_csv(events: Sequence[Any]) -> str:
    """CSV of the events, the detail's decisions and histology results as stored codes ("monitor"), not the
    page's labels; cells that a spreadsheet would run as a formula are prefixed with '."""
    table = audit_table(events, labels=False)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in table.itertuples(index=False):
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    text = str(value)
    return str(defuse_formula(text))
