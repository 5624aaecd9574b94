"""Worklist: across patients, the monitored lesions due for repeat imaging and the biopsies or excisions whose
histology result is not recorded yet. Tables from dashboard/worklist.py; a row opens the patient's history."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard import auth_ui, navigation, resources
from dashboard import components as ui
from dashboard import worklist as wl

user = auth_ui.require("patient.read")
store = resources.get_user_store()  # role-checked and attributed; a clear page when the database is down
st.title("Worklist")
st.caption(
    "What is waiting, across patients: lesions to image again (a monitor decision and its interval), and biopsies "
    "or excisions without a histology result. A lesion leaves the list when a later visit decides on it, or when "
    "its result is recorded in Case history."
)
items = store.worklist()
patient_ids = sorted({i.patient_id for i in items})
if st.session_state.get("worklist_audited") != patient_ids:  # one audit entry per list shown (ids only)
    ui.record_read_or_stop(store, "worklist.view", None, {"page": "worklist", "patient_ids": patient_ids}, "worklist")
    st.session_state["worklist_audited"] = patient_ids

today = dt.date.today()
n = wl.counts(items, today)
cols = st.columns(5)
cols[0].metric("Monitored lesions", n["monitored"], help="Every lesion whose decision in force is monitor.")
cols[1].metric("Imaged again, undecided", n["undecided"], help="Imaged at a later visit, saved without a decision.")
cols[2].metric("Repeat imaging overdue", n["overdue"])
cols[3].metric(f"Due within {wl.DUE_SOON_DAYS} days", n["due_soon"])
cols[4].metric(
    "Results outstanding",
    n["results"],
    delta=f"{n['chase']} waiting over {wl.RESULT_CHASE_DAYS} days" if n["chase"] else None,
    delta_color="inverse",
)


def _table(table, key: str) -> None:
    """One row per lesion; a selected row opens that patient's Case history."""
    st.dataframe(
        table,
        hide_index=True,
        key=key,
        on_select="rerun",
        selection_mode="single-row",
        column_config={"patient_id": None},
    )
    rows = (st.session_state.get(key) or {}).get("selection", {}).get("rows", [])
    if rows:
        patient_id = int(table.iloc[rows[0]]["patient_id"])
        st.switch_page(navigation.page("history"), query_params={"patient_id": str(patient_id)})


st.subheader("Repeat imaging", divider="gray")
soon = st.toggle(f"Only undecided, overdue or due within {wl.DUE_SOON_DAYS} days", value=False, key="worklist_soon")
repeat = wl.repeat_imaging_table(items, today, wl.DUE_SOON_DAYS if soon else None)
if repeat.empty:
    st.info(
        "No monitored lesion is waiting for repeat imaging." if not soon else "Nothing due or undecided within a month."
    )
else:
    if n["no_interval"]:
        st.caption(
            f"{n['no_interval']} monitored lesion(s) have no interval (decided before intervals were recorded, or "
            "amended without one): set one by amending the decision in Case history."
        )
    _table(repeat, "worklist_repeat")

st.subheader("Histology results outstanding", divider="gray")
results = wl.results_table(items, today)
if results.empty:
    st.info("Every biopsy and excision has its histology result recorded.")
else:
    _table(results, "worklist_results")
st.caption("Select a row to open the patient's Case history.")
