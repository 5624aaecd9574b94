"""Audit-log page logic without Streamlit: the action filter, the table, the CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

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


def audit_table(events: Sequence[Any]) -> pd.DataFrame:
    rows = []
    for e in events:
        detail = dict(e.detail or {})
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
    """CSV of the events; cells that a spreadsheet would run as a formula are prefixed with '."""
    table = audit_table(events)
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
