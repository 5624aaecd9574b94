"""Streamlit parts of Case history after saving: decide a lesion saved undecided, amend a decision, record
histology, list and download the outcomes. The logic is in outcomes.py; the store checks every role again
and audits every change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import streamlit as st

from dashboard import outcomes
from dashboard.auth import AuthUser
from dashboard.choices import DEFAULT_REVIEW_MONTHS, EXPORT_CODES_NOTE, REVIEW_MONTHS, decision_label
from dashboard.store.models import ACTIONS, HISTOLOGY_RESULTS
from dashboard.store.records import DecisionView, LesionSummary, VisitView
from dashboard.store.worklist import add_months
from dashboard.textsafe import literal

# The last submit's message, per panel, shown once after the rerun (every tab is drawn on each run).
AMEND_FEEDBACK = "outcomes_amend_feedback"
HISTOLOGY_FEEDBACK = "outcomes_histology_feedback"
# A recorded result renames its lesion in the "Lesion" box (the label names the histology), and Streamlit
# resets a box whose chosen option is gone to its first option: the page would jump to another lesion right
# after saving. So each recorded result draws a new box (a new key), on the lesion just recorded.
HISTOLOGY_RECORDED = "outcomes_histology_recorded"  # how many results were recorded on this page
HISTOLOGY_LAST_LESION = "outcomes_histology_last_lesion"
# The forms keep what was entered when a save is refused (a missing date must not cost the result and the
# note) and start empty after a save: each save draws the form anew under a new key.
AMENDED = "outcomes_amended"
LATE_DECIDED = "outcomes_late_decided"
# The form last submitted stays open: a refusal's message above it (or a count in its title) changed what
# Streamlit took for the expander, which then closed over the entries it kept.
OPEN_FORM = "outcomes_open_form"


def _saves(key: str) -> int:
    return int(st.session_state.get(key, 0))


def _after_submit(form: str, saves_key: str, feedback: outcomes.Feedback) -> None:
    """A refused form stays open over the entries it kept; a saved one closes and is drawn anew, empty."""
    if feedback.ok:
        st.session_state.pop(OPEN_FORM, None)
        st.session_state[saves_key] = _saves(saves_key) + 1
    else:
        st.session_state[OPEN_FORM] = form


def _show_feedback(key: str) -> None:
    feedback = st.session_state.pop(key, None)
    if feedback is not None:
        (st.success if feedback.ok else st.error)(literal(feedback.message))


def decisions_panel(
    store: Any,
    user: AuthUser,
    decisions: Sequence[DecisionView],
    visits: Sequence[VisitView],
    undecided: Sequence[outcomes.UndecidedLesion] = (),
) -> None:
    """Every decision (amendments and what they replaced, and which a later visit superseded; ``visits``: the
    patient's timeline), and for clinicians the forms to decide a lesion saved undecided and to amend a
    decision in force."""
    _show_feedback(AMEND_FEEDBACK)
    if decisions:
        st.dataframe(outcomes.decision_record_table(decisions, visits), hide_index=True, key="decisions_table")
    else:
        st.info("No decisions recorded.")
    if not decisions and not undecided:
        return
    if not user.can("patient.write"):
        st.caption(f"Your role ({user.role}) may read decisions but not amend them.")
        return
    if undecided:
        _late_decision_form(store, undecided)
    in_force = outcomes.amendable(decisions, visits)
    if not in_force:
        return
    with st.expander(
        "Amend a decision", icon=":material/edit_note:", expanded=st.session_state.get(OPEN_FORM) == "amend"
    ):
        st.caption("The original decision stays in the record; the amendment names you, the time and the reason.")
        # Outside the form, so that the interval box below starts at the chosen decision's own interval.
        decision = st.selectbox("Decision", in_force, format_func=outcomes.decision_choice_label, key="amend_which")
        gen = _saves(AMENDED)
        with st.form(f"amend_decision_{gen}", border=False):
            action = st.selectbox(
                "New decision",
                ACTIONS,
                index=ACTIONS.index(decision.action),
                format_func=decision_label,
                key=f"amend_action_{decision.id}_{gen}",
            )
            months = _interval_box(f"amend_months_{decision.id}_{gen}", decision.review_in_months, decision.visit_date)
            comment = st.text_area("Comment", key=f"amend_comment_{gen}", height=68)
            reason = st.text_input("Reason for the amendment (required)", key=f"amend_reason_{gen}")
            if st.form_submit_button("Save amendment", icon=":material/save:"):
                feedback = outcomes.submit_amendment(store, decision, action, comment, reason, months)
                st.session_state[AMEND_FEEDBACK] = feedback
                _after_submit("amend", AMENDED, feedback)
                st.rerun()


def _late_decision_form(store: Any, undecided: Sequence[outcomes.UndecidedLesion]) -> None:
    """Lesions saved without a decision (e.g. while waiting for a colleague) are decided here, after saving."""
    title = f"Decide a lesion saved without a decision ({len(undecided)})"
    with st.expander(title, icon=":material/pending_actions:", expanded=st.session_state.get(OPEN_FORM) == "late"):
        st.caption("The decision is recorded for that visit under your name, with today's time.")
        gen = _saves(LATE_DECIDED)
        with st.form(f"late_decision_{gen}", border=False):
            item = st.selectbox(
                "Lesion", undecided, format_func=outcomes.undecided_choice_label, key=f"late_which_{gen}"
            )
            action = st.selectbox(
                "Decision",
                ACTIONS,
                index=None,
                format_func=decision_label,
                placeholder="Choose the decision",
                key=f"late_action_{gen}",
            )
            months = _interval_box(f"late_months_{gen}", None, None)
            comment = st.text_area("Comment", key=f"late_comment_{gen}", height=68)
            if st.form_submit_button("Save decision", icon=":material/save:"):
                feedback = outcomes.submit_decision(store, item, action, comment, months)
                st.session_state[AMEND_FEEDBACK] = feedback
                _after_submit("late", LATE_DECIDED, feedback)
                st.rerun()


def _interval_box(key: str, current: int | None, counted_from: dt.date | None) -> int:
    """A form's repeat-imaging interval, starting at ``current`` (a form cannot show it only once "monitor" is
    picked: it is kept for a monitor decision and ignored for the others). With ``counted_from`` (the deciding
    visit's day), the due day each choice gives."""
    options = tuple(sorted({*REVIEW_MONTHS, current})) if current else REVIEW_MONTHS
    chosen = st.selectbox(
        "Repeat imaging in (a monitor decision only)",
        options,
        index=options.index(current or DEFAULT_REVIEW_MONTHS),
        format_func=lambda m: f"{m} months" + (f" (due {add_months(counted_from, m)})" if counted_from else ""),
        key=key,
    )
    if counted_from:
        st.caption(f"The due day counts from the deciding visit ({counted_from.isoformat()}), not from today.")
    return chosen


def histology_panel(store: Any, user: AuthUser, patient_id: int, lesions: Sequence[LesionSummary]) -> None:
    """Per lesion: record or correct its histology result; this patient's outcomes; the downloads."""
    _show_feedback(HISTOLOGY_FEEDBACK)
    if not lesions:
        st.info("No lesions recorded.")
        return
    by_id = {les.id: les for les in lesions}
    last = st.session_state.get(HISTOLOGY_LAST_LESION)
    lesion_id = st.selectbox(
        "Lesion",
        list(by_id),
        index=list(by_id).index(last) if last in by_id else 0,
        format_func=lambda key: outcomes.lesion_choice_label(by_id[key]),
        key=f"histology_lesion_{st.session_state.get(HISTOLOGY_RECORDED, 0)}",
    )
    lesion = by_id[lesion_id]
    history = store.histology_history(lesion.id)
    if history:
        st.dataframe(outcomes.histology_table(history), hide_index=True, key="histology_table")
    else:
        st.caption("No histology recorded for this lesion.")
    if user.can("patient.write"):
        _histology_form(store, lesion, corrects=bool(history))
    else:
        st.caption(f"Your role ({user.role}) may read histology but not record it.")

    st.subheader("Outcomes: labelled data", anchor=False)
    rows = store.outcomes(patient_id)
    st.caption(
        "Lesions of this patient with a histology result, one row per scored (dermoscopic) image: overview photos "
        "are never scored. Results recorded as not done carry no label and are left out."
    )
    if rows:
        st.dataframe(
            outcomes.outcomes_table(rows),
            hide_index=True,
            key="outcomes_table",
            column_config={
                "P(melanoma)": st.column_config.NumberColumn(format="percent"),
                "± spread": st.column_config.NumberColumn(format="percent"),
            },
        )
    else:
        st.info("No histology results recorded for this patient yet.")
    if not user.can("patient.export"):
        return
    st.caption(
        "The CSV files are pseudonymous (database ids and image hashes, no identifier or file name), for the next "
        "model evaluation; each download is recorded in the audit trail under your name. " + EXPORT_CODES_NOTE
    )
    mine, everyone = st.columns(2)
    _export_button(mine, store, patient_id, "Download this patient's outcomes (CSV)", ":material/download:", not rows)
    _export_button(everyone, store, None, "Download all patients' outcomes (CSV)", ":material/dataset:")


def _export_button(
    column: Any, store: Any, patient_id: int | None, label: str, icon: str, disabled: bool = False
) -> None:
    """The outcomes CSV of one patient (None: of all), written by the store only when the button is clicked."""
    column.download_button(
        label,
        data=lambda: store.export_outcomes(patient_id),
        file_name=outcomes.outcomes_filename(patient_id),
        mime="text/csv",
        on_click="ignore",
        icon=icon,
        key="outcomes_all_csv" if patient_id is None else "outcomes_patient_csv",
        disabled=disabled,
    )


def _histology_form(store: Any, lesion: LesionSummary, *, corrects: bool) -> None:
    title = "Correct the histology result" if corrects else "Record the histology result"
    gen = _saves(HISTOLOGY_RECORDED)
    with st.form(f"histology_{lesion.id}_{gen}"):
        st.markdown(f"**{title}**")
        result = st.radio(
            "Result",
            HISTOLOGY_RESULTS,
            index=None,  # no preset answer: see outcomes.submit_histology
            format_func=outcomes.HISTOLOGY_LABELS.get,
            horizontal=True,
            key=f"histology_result_{lesion.id}_{gen}",
        )
        reported_on = st.date_input(
            "Date of the histology report",
            value=None,
            max_value=dt.date.today(),
            key=f"histology_date_{lesion.id}_{gen}",
            help="Needed for every result except 'not done'.",
        )
        note = st.text_input("Note (optional)", key=f"histology_note_{lesion.id}_{gen}")
        if st.form_submit_button("Save histology", icon=":material/save:"):
            feedback = outcomes.submit_histology(store, lesion, result, reported_on, note)
            st.session_state[HISTOLOGY_FEEDBACK] = feedback
            if feedback.ok:
                st.session_state[HISTOLOGY_RECORDED] = st.session_state.get(HISTOLOGY_RECORDED, 0) + 1
                st.session_state[HISTOLOGY_LAST_LESION] = lesion.id
            st.rerun()
