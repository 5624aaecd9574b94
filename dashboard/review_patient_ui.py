"""Patient review, section 1 · Patient: start a new patient (pseudonym checked), find one in the case database,
resume a review kept on the server, or leave the current one (asking before unsaved work is discarded).

Streamlit code only; what it checks and keeps lives in patient_form.py, review_draft.py and store/privacy.py.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import streamlit as st

from dashboard import components as ui
from dashboard.choices import SEX_OPTIONS
from dashboard.errors import STORE_ERRORS, log_swallowed
from dashboard.patient_form import (
    PatientContext,
    merge_form_into_existing,
    patient_from_store,
    search_choice_label,
    validate_new_patient,
)
from dashboard.review_draft import draft_fingerprint, draft_summary, keep_draft, resume_draft
from dashboard.store.privacy import PSEUDONYM_HELP, identifier_warnings
from dashboard.textsafe import literal
from data.settings import LIMITS

if TYPE_CHECKING:
    from dashboard.review_state import ReviewState
    from dashboard.user_store import UserStore

logger = logging.getLogger(__name__)

CONFIRM_NEW = "confirm_new_patient"
PSEUDONYM_PENDING = "pseudonym_pending"  # an identifier that looked like a name or a date, awaiting confirmation
PSEUDONYM_CONFIRMED = "pseudonym_confirmed"  # set while the "discard unsaved work?" question is open
DISCARDED = "review_discarded"  # the user confirmed discarding the review: its server draft goes too


def _answer_new_patient(discard: bool) -> None:
    st.session_state[CONFIRM_NEW] = False
    if discard:
        ui.reset_review()
        st.session_state[DISCARDED] = True


# The answer is taken in button callbacks, so it counts whether the dialog reruns alone (browser) or
# with the whole page; the dialog then closes itself on its next run.
@st.dialog("Start a new patient?", on_dismiss=lambda: _answer_new_patient(False))
def _confirm_new_patient() -> None:
    if not st.session_state.get(CONFIRM_NEW):
        st.rerun()
    st.markdown(literal(ui.review_state().unsaved_summary()))
    st.write("Starting a new patient discards this unsaved work.")
    left, right = st.columns(2)
    # The safe answer is the highlighted one; discarding is a plain button with a warning icon.
    left.button("Keep working", type="primary", key="cancel_discard", on_click=_answer_new_patient, args=(False,))
    right.button(
        "Discard and start new",
        type="secondary",
        icon=":material/delete_forever:",
        key="confirm_discard",
        on_click=_answer_new_patient,
        args=(True,),
    )


def _open_patient(store: UserStore | None, context: PatientContext) -> None:
    if context.patient_id is not None and store is not None:
        store.record_view("patient.open", context.patient_id, {"page": "review"})
    ui.reset_review()
    ui.review_state().patient = context
    st.rerun()


DRAFT_FINGERPRINT = "draft_fingerprint"  # of the review as last kept on the server (this tab)


def _offer_draft(store: UserStore | None) -> bool:
    """After a reload (or on another workstation): offer to resume the review kept on the server."""
    discarded = st.session_state.pop(DISCARDED, False)  # once: a later run must not delete a newer draft
    if store is None:
        return False
    if discarded:
        # Discarded means gone: not offered back at once, nor kept on the server with its photos.
        try:
            store.delete_draft()
        except STORE_ERRORS as exc:
            log_swallowed(logger, "deleting the discarded review's draft", exc)
        st.session_state.pop(DRAFT_FINGERPRINT, None)
        return False
    try:
        draft = store.load_draft(with_images=False)  # the offer needs the count; the bytes only on resume
    except STORE_ERRORS as exc:
        log_swallowed(logger, "reading the kept review", exc)
        return False  # the offer must not block starting a review
    if draft is None:
        return False
    with st.container(border=True, key="draft_offer"):
        st.markdown(f"##### :material/restore_page: {literal(draft_summary(draft))}")
        st.caption(
            "Resume it to get back its images, sites, follow-up links, decisions and notes (run the triage "
            "again: scores are not kept). Discarding it deletes it; starting another review replaces it."
        )
        left, right = st.columns(2)
        resume = left.button("Resume this review", type="primary", icon=":material/restore:", key="draft_resume")
        discard = right.button("Discard it", icon=":material/delete_forever:", key="draft_discard")
    if resume:
        try:
            draft = store.load_draft()
            if draft is None:
                raise ValueError("it was deleted meanwhile (saved or discarded in another tab)")
            resumed = resume_draft(draft, store)
        except STORE_ERRORS as exc:  # the patient gone from the store, the draft unreadable (ValueError)
            st.error(f"The kept review could not be resumed: {literal(exc)}", icon=":material/error:")
            return True
        resumed.flag_saved_for_other_patients(store, resumed.images)  # the upload's warning, again after a reload
        ui.reset_review()
        resumed.uploader_generation = ui.review_state().uploader_generation
        st.session_state[ui.REVIEW_KEY] = resumed
        st.session_state[DRAFT_FINGERPRINT] = draft_fingerprint(resumed)
        if resumed.patient.patient_id is not None:
            store.record_view("patient.open", resumed.patient.patient_id, {"page": "review", "draft": True})
        st.rerun()
    if discard:
        store.delete_draft()
        st.rerun()
    st.divider()
    return False


def keep_draft_on_server(store: UserStore | None, state: ReviewState) -> None:
    """One write per change: the review in progress is kept on the server; gone once saved or discarded."""
    if store is None:
        return
    try:
        st.session_state[DRAFT_FINGERPRINT] = keep_draft(store, state, st.session_state.get(DRAFT_FINGERPRINT))
    except STORE_ERRORS as exc:
        log_swallowed(logger, "keeping the review in progress as a draft", exc)
        st.warning(
            f"The review in progress could not be kept on the server ({type(exc).__name__}); "
            "it is still here, but a reload would lose it.",
            icon=":material/cloud_off:",
        )


def patient_section(state: ReviewState, store: UserStore | None) -> None:
    """Section 1: the patient being reviewed, or a new / found / resumed one to start with."""
    st.subheader("1 · Patient", divider="gray")
    if state.patient is not None:
        patient = state.patient
        with st.container(border=True):
            left, right = st.columns([4, 1], vertical_alignment="center")
            with left:
                ui.patient_banner(
                    patient.identifier,
                    f"{patient.describe(state.visit_day())} — {patient.history_line()}",
                    role="Reviewing",
                )
            if right.button("New patient…", icon=":material/person_add:", key="new_patient"):
                if not state.has_unsaved_work:
                    ui.reset_review()
                    st.rerun()
                st.session_state[CONFIRM_NEW] = True
        if st.session_state.get(CONFIRM_NEW):
            _confirm_new_patient()
        return

    if _offer_draft(store):
        return
    new_tab, find_tab = st.tabs(["New patient", "Find an existing patient"])
    with new_tab, st.form("new_patient_form", border=False):
        c1, c2, c3 = st.columns([2, 1, 1])
        identifier = c1.text_input(
            "Patient identifier (pseudonymous)", max_chars=LIMITS.identifier_max, help=PSEUDONYM_HELP
        )
        birth_year = c2.number_input(
            "Birth year",
            min_value=LIMITS.earliest_birth_year,
            max_value=dt.date.today().year,
            value=None,
            step=1,
            format="%d",
            help="Optional. The model uses the approximate age.",
        )
        sex = c3.selectbox("Sex", SEX_OPTIONS, index=SEX_OPTIONS.index("unknown"))
        submitted = st.form_submit_button("Start review", type="primary", icon=":material/arrow_forward:")
    pending = st.session_state.get(PSEUDONYM_PENDING)
    if pending:
        with new_tab:
            st.warning(
                f"“{literal(pending)}” may not be pseudonymous: {'; '.join(identifier_warnings(pending))}. "
                + PSEUDONYM_HELP
                + " If it really is the clinic's pseudonym, tick the box and press **Start review** again.",
                icon=":material/badge:",
            )
            confirmed = st.checkbox(
                f"“{literal(pending)}” is the clinic's pseudonym, not a name or a date of birth",
                key="pseudonym_confirm_box",
            )
        st.session_state[PSEUDONYM_CONFIRMED] = pending if confirmed else None
    if submitted:
        birth_year = int(birth_year) if birth_year is not None else None
        problems = validate_new_patient(identifier, birth_year, sex)
        if problems:
            for p in problems:
                new_tab.error(p)
            return
        identifier = identifier.strip()
        if identifier_warnings(identifier) and st.session_state.get(PSEUDONYM_CONFIRMED) != identifier:
            st.session_state[PSEUDONYM_PENDING] = identifier  # asked below; "Start review" again proceeds
            st.rerun()
        st.session_state.pop(PSEUDONYM_PENDING, None)
        existing = store.find_patient_id(identifier) if store else None
        if existing is not None:
            context = patient_from_store(store, existing)
            conflicts = merge_form_into_existing(context, birth_year, sex)
            if conflicts:  # the stored birth year / sex are shown: a read of the record, audited as one
                store.record_view("patient.view", existing, {"page": "review", "via": "new-patient form"})
                new_tab.error(
                    f"“{literal(identifier)}” is already recorded with {' and '.join(conflicts)}. "
                    "Check the identifier, "
                    "or open the existing patient from “Find an existing patient”."
                )
                return
            st.toast(f"“{literal(identifier)}” is already in the case database: opened the existing record.")
            _open_patient(store, context)
        _open_patient(store, PatientContext(identifier=identifier, birth_year=birth_year, sex=sex))

    with find_tab:
        if store is None:
            st.info("The case database is unavailable, so existing patients cannot be looked up.")
            return
        query = st.text_input("Search by identifier", key="patient_search", placeholder="part of the identifier")
        if not query.strip():
            return
        matches = store.search_patients(query)
        if st.session_state.get("patient_searched") != query.strip():  # one audit entry per search (ids only)
            store.record_view("patient.search", None, {"page": "review", "patient_ids": [p.id for p in matches]})
            st.session_state["patient_searched"] = query.strip()
        if not matches:
            st.info(f"No patient identifier contains “{literal(query.strip())}”.")
            return
        choice = st.radio(
            "Matching patients",
            matches,
            format_func=search_choice_label,  # the identifier escaped: radio options render Markdown
            key="patient_pick",
        )
        if st.button("Open patient", type="primary", key="open_patient"):
            _open_patient(store, patient_from_store(store, choice.id))
