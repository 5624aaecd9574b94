"""Case history: find a patient, see their visits, a lesion's score over time, past decisions, export."""

from __future__ import annotations

import streamlit as st

from dashboard import auth_ui, body_map_ui, follow_up_ui, outcomes_ui, report_data, resources
from dashboard import components as ui
from dashboard.choices import EXPORT_CODES_NOTE
from dashboard.errors import STORE_ERRORS
from dashboard.follow_up import lesion_histories
from dashboard.history_data import export_filename, timeline_table, visit_choice_label
from dashboard.lesion_views import return_to_saved_card, visit_lesion_card
from dashboard.outcomes import undecided, visit_date_text
from dashboard.textsafe import literal
from dashboard.wording import pct

user = auth_ui.require("patient.read")
store = resources.get_user_store()  # role-checked and attributed; a clear page when the database is down
st.title("Case history")
st.caption("Earlier visits of a patient: what the model said, what was decided, and how each lesion changed.")
predictor, _ = resources.try_get_predictor()
current_model = predictor.model_id if predictor is not None else None
current_threshold = predictor.threshold if predictor is not None else None

# A link from a saved review carries the database id (never the identifier) in the URL.
# A link opens its patient on arriving (Streamlit drops the search box's state when another page is shown) and
# whenever it names another patient; a search typed on this page afterwards is kept.
linked_id = st.query_params.get("patient_id")
arriving = "history_search" not in st.session_state
if linked_id and linked_id.isdigit() and (arriving or st.session_state.get("history_linked") != linked_id):
    st.session_state["history_linked"] = linked_id
    try:
        st.session_state["history_search"] = store.get_patient(int(linked_id)).identifier
    except STORE_ERRORS:  # NotFoundError (a stale link) or the database: either way, say so and let them search
        st.warning("The linked patient was not found.")
query = st.text_input("Search patients by identifier", key="history_search", placeholder="part of the identifier")
if not query.strip():
    st.info("Type part of a patient identifier to find their case history.", icon=":material/search:")
    st.stop()
matches = store.search_patients(query)
if st.session_state.get("history_searched") != query.strip():  # one audit entry per search (ids, not text)
    ui.record_read_or_stop(
        store, "patient.search", None, {"page": "history", "patient_ids": [p.id for p in matches]}, "search"
    )
    st.session_state["history_searched"] = query.strip()
if not matches:
    st.warning(f"No patient identifier contains “{literal(query.strip())}”.")
    st.stop()

exact = next((i for i, p in enumerate(matches) if p.identifier == query.strip()), 0)
patient = st.selectbox(
    f"{len(matches)} matching patient(s)",
    matches,
    index=exact,
    format_func=lambda p: f"{p.identifier} · born {p.birth_year or '?'} · {p.sex} · {p.visit_count} visit(s)",
    key="history_patient",
)
if st.session_state.get("history_audited") != patient.id:  # one audit entry per patient opened
    ui.record_read_or_stop(store, "patient.view", patient.id, {"page": "history"}, "record view")
    st.session_state["history_audited"] = patient.id
timeline = store.patient_timeline(patient.id)
lesions = store.list_lesions(patient.id)

ui.patient_banner(patient.identifier, f"born {patient.birth_year or 'unknown'} · {patient.sex}", role="Case history")
other = ui.review_state().other_patient_notice(patient.identifier)
if other:
    st.warning(literal(other), icon=":material/group:")
with ui.metric_row(border=True):
    st.metric("Visits", len(timeline.visits))
    st.metric("Lesions followed", len(lesions))
    last = timeline.visits[-1].image_date.isoformat() if timeline.visits else "–"  # the images' day
    st.metric("Last visit", last)
st.caption(
    "Scores are decision support, not diagnoses. Each score was made by the model version recorded with it; "
    + (f"the threshold shown is the current model's ({pct(current_threshold)})." if current_threshold else "")
)
histories = lesion_histories(timeline)  # each lesion's images and scores by visit, from the timeline read above
follow_up_ui.history_rise_summary(histories)

visits_tab, map_tab, trend_tab, decisions_tab, outcomes_tab, export_tab = st.tabs(
    ["Visits", "Body map", "Lesion over time", "Decisions", "Histology & outcomes", "Export"]
)

with visits_tab:
    if not timeline.visits:
        st.info("No visits saved for this patient yet.")
    else:
        st.dataframe(
            timeline_table(timeline),
            hide_index=True,
            column_config={
                "highest P(melanoma)": st.column_config.ProgressColumn(
                    "highest P(melanoma)", min_value=0.0, max_value=1.0, format="percent"
                ),
            },
            key="visits_table",
        )
        visits = list(reversed(timeline.visits))
        # Back from a saved lesion's Saliency page (?visit=): that visit again, not the newest.
        linked_visit = st.query_params.get("visit")
        opened = next((i for i, v in enumerate(visits) if str(v.id) == linked_visit), 0)
        visit = st.selectbox(
            "Open a visit (read-only)", visits, index=opened, format_func=visit_choice_label, key="history_visit"
        )
        st.markdown(
            f"**Visit {visit.number or visit.id}** — {visit_date_text(visit)}, "
            f"{literal(visit.clinician)}, model {literal(visit.model_version)}"
        )
        if visit.notes:
            st.markdown(f"> {literal(visit.notes)}")
        st.download_button(  # built when clicked: stored images, saliency overlays, audited under the reader
            "Download visit report (PDF)",
            data=lambda vid=visit.id: report_data.visit_report(
                store, vid, predictor, validation=resources.checkpoint_validation()
            ),
            file_name=report_data.report_filename(visit),
            mime="application/pdf",
            on_click="ignore",
            icon=":material/picture_as_pdf:",
            key=f"visit_report_{visit.id}",
            help="A printable A4 report of this visit: ranked lesions with images and saliency overlays, scores "
            "with their uncertainty, decisions, the model and its validation figures. It names the patient's "
            "identifier; each download is recorded in the audit trail under your name.",
        )
        for lesion in visit.lesions:
            same_model = lesion.prediction is not None and lesion.prediction.model_id == current_model
            visit_lesion_card(lesion, current_threshold if same_model else None, visit.id)
        return_to_saved_card({lesion.image.id for lesion in visit.lesions})

with map_tab:  # where the lesions are, coloured by their latest score
    body_map_ui.history_map(lesions, current_threshold, store, user)

with trend_tab:  # two visits side by side (aligned overlay or difference) and the score trend with its band
    follow_up_ui.history_comparison(histories, current_threshold)

with decisions_tab:  # amendments keep the original; the form is for roles that may write
    outcomes_ui.decisions_panel(
        store, user, store.decision_history(patient.id), timeline.visits, undecided(timeline.visits)
    )

with outcomes_tab:  # histology per lesion, and the outcomes as labelled data
    outcomes_ui.histology_panel(store, user, patient.id, lesions)

with export_tab:
    if not user.can("patient.export"):
        st.info(f"Your role ({user.role}) may view records but not export them.", icon=":material/lock:")
        st.stop()
    st.markdown(
        "Download this patient's whole history (every visit, lesion, score and decision). "
        "Exports contain the patient identifier; each export is recorded in the audit trail under your name. "
        + EXPORT_CODES_NOTE
    )
    pid = patient.id
    for column, (fmt, mime) in zip(st.columns(2), (("csv", "text/csv"), ("json", "application/json")), strict=True):
        column.download_button(
            f"Download {fmt.upper()}",
            data=lambda fmt=fmt: store.export_patient_history(pid, fmt),
            file_name=export_filename(pid, fmt),
            mime=mime,
            icon=":material/download:",
            key=f"export_{fmt}",
        )
