"""Audit log (admins): who viewed, saved, exported, decided, signed in or out — filterable, CSV export."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard import auth_ui, resources
from dashboard.audit_view import AUDIT_ACTIONS, audit_csv, audit_table, day_range
from dashboard.choices import EXPORT_CODES_NOTE

auth_ui.require("audit.read")
store = resources.get_user_store()

st.title("Audit log")
st.caption(
    "Every sign-in (and failed attempt), sign-out, patient search, record view, image view, saved visit, "
    "decision and export, with the signed-in user and the time (UTC). Patients appear by database id only. "
    + EXPORT_CODES_NOTE
)

c1, c2, c3, c4 = st.columns([1.2, 1.2, 1, 1.4])
actor = c1.text_input("User", key="audit_actor", placeholder="exact username").strip()
action = c2.selectbox("Action", list(AUDIT_ACTIONS), format_func=AUDIT_ACTIONS.get, key="audit_action")
patient = c3.number_input("Patient id", min_value=1, value=None, step=1, format="%d", key="audit_patient")
today = dt.datetime.now(dt.UTC).date()
days = c4.date_input("Dates (UTC)", value=(today - dt.timedelta(days=30), today), key="audit_days")
since, until = day_range(days)

events = store.audit_events(
    patient_id=int(patient) if patient is not None else None,
    actor=actor or None,
    action=action or None,
    since=since,
    until=until,
    limit=5000,
    newest_first=True,
)
st.markdown(f"**{len(events)}** event(s), newest first" + (" (the first 5,000)" if len(events) >= 5000 else ""))
st.dataframe(audit_table(events), hide_index=True, key="audit_table")
st.download_button(
    "Download CSV",
    data=lambda: (store.record_audit_export(len(events)), audit_csv(events))[1],
    file_name=f"audit-log_{today.isoformat()}.csv",
    mime="text/csv",
    icon=":material/download:",
    key="audit_export",
    disabled=not events,
    # As the other deferred exports: no rerun on the click. A rerun racing the deferred data request once left
    # the button spinning with no download (CI, 2026-12-05); the export is recorded when the data is made.
    on_click="ignore",
)
