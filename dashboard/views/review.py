"""Patient review: patient → images → triage → ranked lesions → decisions → save.

The page and its sections 3–5; sections 1 and 2 are review_patient_ui.py and review_images_ui.py. Streamlit
code only: what the page checks, keeps and words lives in modules tested without Streamlit:
dashboard/review_state.py (the review), patient_form.py, review_draft.py, uploads.py, wording.py.
"""

from __future__ import annotations

import datetime as dt
import logging

import streamlit as st

from dashboard import (
    auth_ui,
    body_map_ui,
    follow_up_ui,
    resources,
    review_images_ui,
    review_patient_ui,
)
from dashboard import components as ui
from dashboard.errors import STORE_ERRORS, log_swallowed
from dashboard.lesion_views import cam_methods, lesion_card, return_to_remembered_card
from dashboard.model_evidence import mole_check_sentence
from dashboard.navigation import page
from dashboard.operating_point import operating_point
from dashboard.review_record import ReviewNotReady
from dashboard.textsafe import literal
from dashboard.uploads import UploadProblem
from dashboard.wording import pct, quoted_names
from data.settings import LIMITS
from model.checkpoint import weights_digest

logger = logging.getLogger(__name__)
user = auth_ui.require("patient.write")  # viewers never get here (the page is not in their navigation)
state = ui.review_state()
predictor = resources.get_predictor()  # stops with a "No model installed" page when there is none
store, store_problem = resources.try_get_user_store()  # role-checked, every access attributed to `user`
op = operating_point(predictor.config)
mole_check = mole_check_sentence(resources.checkpoint_validation(), predictor.config)

st.title("Patient review")
st.caption(
    "Load all of one patient's lesion images, let the model rank them, look first at the lesions at the top, "
    "record a decision for each and save the visit."
)
if store_problem:
    st.error(
        f"The case database is unavailable: {literal(store_problem)}. You can score lesions, but patients cannot be "
        "looked up and the visit cannot be saved until it is back.",
        icon=":material/database:",
    )


# ---------------------------------------------------------------- 3 · triage


def _triage_section() -> None:
    st.subheader("3 · Triage", divider="gray")
    if state.is_saved:
        st.caption("This review is saved; its scores are shown below.")
        return
    if state.result_is_stale:
        st.warning(
            "Images, sites or the patient's age on the day the images were taken changed after the triage ran. "
            "Run it again before saving.",
            icon=":material/sync_problem:",
        )
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    # One fixed test-time augmentation per model (its checkpoint says how many views), the same as the CLI's:
    # a setting that changed scores between visits would show a trend that is only the setting.
    right.caption(f"Each image is scored in {predictor.tta} orientations; the range shown with each score is theirs.")
    run = left.button(
        f"Score and rank {len(state.images)} lesion(s)",
        type="primary",
        icon=":material/play_arrow:",
        disabled=not state.images,
        key="run_triage",
    )
    if run:
        bar = st.progress(0.0, text="Scoring lesions…")

        def progress(done: int, total: int) -> None:
            bar.progress(min(1.0, done / max(total, 1)), text=f"Scored {done} of {total} image(s)…")

        try:
            # Earlier visits' lesions not imaged again join the ugly-duckling comparison (not ranked).
            known = follow_up_ui.review_histories(store, state.patient)
            state.run_triage(predictor, progress=progress, known_lesions=known)
        except ReviewNotReady as exc:
            st.error(str(exc))
            return
        except Exception as exc:  # broad on purpose: the model stack (torch, timm, PIL) raises many kinds, and
            # the page must show a message, never a stack trace, and keep the review; the log keeps where it failed
            log_swallowed(logger, "the triage", exc)
            st.error(f"The triage could not run: {type(exc).__name__}: {literal(exc)}", icon=":material/error:")
            return
        bar.empty()
        st.rerun()


# ---------------------------------------------------------------- 4 · results and decisions


def _results_section() -> None:
    from dashboard import figures

    table = state.scored_table()
    errors = state.triage_errors()
    st.subheader("4 · Ranked lesions", divider="gray")
    ui.disclaimer()
    ui.performance_note(op, mole_check)

    n_above = int(table["suspicious"].astype(bool).sum()) if not table.empty else 0
    n_outliers = int(table["outlier"].astype(bool).sum()) if not table.empty else 0
    with ui.metric_row():
        st.metric("Lesions scored", len(table), border=True)
        st.metric("Above threshold", n_above, border=True, help=f"P(melanoma) ≥ {pct(op.threshold)}")
        st.metric(
            "Ugly ducklings",
            n_outliers,
            border=True,
            help="Lesions that look unlike this patient's other lesions.",
        )
        st.metric("Could not be scored", len(errors), border=True)

    if state.is_saved:  # the error cards were for the work in progress; a saved visit just says what was left out
        if len(errors):
            st.caption(f":material/info: {len(errors)} image(s) could not be scored and were not saved.")
    else:
        for row in errors.itertuples():
            ui.problem_card(UploadProblem(getattr(row, "filename", None) or str(row.image_id)[:12], row.reason))
    for note in getattr(state.result, "notes", []) or []:
        st.caption(f":material/info: {literal(note)}")  # notes quote upload file names
    if table.empty:
        st.warning("No image could be scored.")
        return

    # Only the open tab is built and sent (a tab click reruns): the gallery's cards and the two charts are
    # not all drawn on every click.
    gallery, duck_map, chart = st.tabs(
        ["Ranked gallery", "Ugly-duckling map", "All scores"], key="results_tab", on_change="rerun"
    )
    if gallery.open:
        with gallery:
            flagged = table["suspicious"].astype(bool) | table["outlier"].astype(bool)
            show = st.segmented_control(
                "Show",
                ["All lesions", "Flagged only"],
                default="All lesions",
                required=True,
                key="gallery_filter",
                help="Flagged: above the threshold, or an ugly duckling. The order is always the triage rank.",
            )
            shown = table[flagged] if show == "Flagged only" else table
            if shown.empty:
                st.info("No lesion is flagged.")
            cams = cam_methods()
            for title, rows in body_map_ui.gallery_groups(shown, body_map_ui.group_toggle()):
                if title:
                    st.markdown(f"**{literal(title)}**")
                for row in rows:
                    lesion_card(state, row, op.threshold, predictor, cams, editable=not state.is_saved)
            return_to_remembered_card({state.images[sha].key for sha in shown["image_id"]})
    if duck_map.open:
        with duck_map:
            _duck_map(table)
    if chart.open:
        with chart:
            st.plotly_chart(figures.ranked_scores(table, op.threshold), key="scores_chart")
    _save_section(table)


def _duck_map(table) -> None:
    from dashboard.ugly_duckling_map import MIN_LESIONS, thumbnail_uri, too_few_message, ugly_duckling_map

    earlier = getattr(state.result, "reference_xy", None)
    compared = getattr(state.result, "compared", None)  # copies of one photo count once
    if compared is None:
        compared = len(table) + (0 if earlier is None else len(earlier))
    if compared < MIN_LESIONS:
        st.info(too_few_message(compared), icon=":material/info:")
        return
    st.caption(
        "Each picture is one of this patient's lesions, placed by how the model sees it: similar-looking "
        "lesions sit together. Each carries its rank; a violet frame marks an outlier — an “ugly duckling” worth a "
        "second look; the corner marker's colour is its score band (red above the threshold, orange near, green "
        "below)."
        + (
            " Grey rings are lesions known from earlier visits, compared against but not ranked."
            if compared > len(table)
            else ""
        )
    )
    thumbs = {sha: thumbnail_uri(state.images[sha].thumbnail) for sha in table["image_id"]}
    st.plotly_chart(ugly_duckling_map(table, thumbs, earlier, op.threshold), key="duck_map")


def _save_section(table) -> None:
    st.subheader("5 · Save the visit", divider="gray")
    if state.is_saved:
        st.success(
            f"Saved as {state.saved_visit_label()} of this patient. This review is now read-only.",
            icon=":material/check_circle:",
        )
        c1, c2 = st.columns([1, 3])
        if state.patient and state.patient.patient_id is not None:
            c1.page_link(
                page("history"),
                label="Open in case history",
                icon=":material/history:",
                query_params={"patient_id": str(state.patient.patient_id)},
            )
        if c2.button("Start the next patient", icon=":material/person_add:", key="next_patient"):
            ui.reset_review()
            st.rerun()
        return
    decided = sum(1 for row in table.itertuples() if state.decision(row.image_id).action)
    st.markdown(f"Decisions recorded for **{decided} of {len(table)}** lesion(s).")
    undecided = state.undecided_suspicious()
    if undecided:
        st.warning(
            f"No decision yet for {len(undecided)} flagged lesion(s): {quoted_names(undecided)}. You can still save.",
            icon=":material/flag:",
        )
    st.text_area(
        "Visit notes (optional)",
        key=ui.bind("visit_notes", state.notes),
        on_change=lambda: setattr(state, "notes", st.session_state["visit_notes"]),
    )
    _taken_on_input()
    st.caption(f"Saved as reviewed by **{literal(user.label)}**, with the model id {literal(predictor.model_id)}.")
    st.button(
        "Save visit",
        type="primary",
        icon=":material/save:",
        key="save_visit",
        disabled=store is None or state.result_is_stale,
        on_click=_request_save,
    )
    problem = st.session_state.pop(SAVE_PROBLEM, None)
    if problem:
        message, icon = problem
        st.error(message, icon=icon)


TAKEN_ON_PROBLEM = "taken_on_problem"


def _taken_on_input() -> None:
    """The day the images were taken, for images taken before today; the save time is recorded as well."""
    birth_year = state.patient.birth_year if state.patient else None
    st.date_input(
        "Date the images were taken (empty: today)",
        key=ui.bind("visit_taken_on", state.taken_on),
        min_value=dt.date(birth_year or LIMITS.earliest_birth_year, 1, 1),
        max_value=dt.date.today(),
        on_change=_on_taken_on,
        help="For images taken before today, e.g. photos from an earlier appointment: the visit is dated, and "
        "ordered among this patient's visits, by this day.",
    )
    problem = st.session_state.pop(TAKEN_ON_PROBLEM, None)
    if problem:
        st.error(problem, icon=":material/event_busy:")


def _on_taken_on() -> None:
    try:
        state.set_taken_on(st.session_state["visit_taken_on"])
    except ValueError as exc:
        st.session_state[TAKEN_ON_PROBLEM] = f"Date not taken: {exc}."


# The click only asks for the save; the visit is saved at the top of the next run, after every widget's
# callback (a comment typed just before the click included), and the page is then drawn once, read-only,
# instead of drawing the whole gallery, saving at its end and drawing it all again.
SAVE_REQUESTED = "save_requested"
SAVE_PROBLEM = "save_problem"  # (message, icon) of a save that failed, shown under the button


def _request_save() -> None:
    st.session_state[SAVE_REQUESTED] = True


def _save_if_requested() -> None:
    if not st.session_state.pop(SAVE_REQUESTED, False) or state.is_saved or store is None:
        return
    clinician = ui.clinician()  # the signed-in user; the store records it whatever is passed
    try:
        state.save(store, clinician, predictor.model_id, weights_digest(predictor.config) or "unknown")
    except ReviewNotReady as exc:
        st.session_state[SAVE_PROBLEM] = (str(exc), None)
    except ValueError as exc:
        st.session_state[SAVE_PROBLEM] = (f"The visit was not saved: {literal(exc)}", ":material/error:")
    except STORE_ERRORS as exc:  # the database or the image files; ValueError (rejected input) is caught above
        log_swallowed(logger, "saving the visit", exc)
        st.session_state[SAVE_PROBLEM] = (
            f"The visit was not saved (database error: {type(exc).__name__}). Nothing was written; "
            "your review is still here — try again.",
            ":material/error:",
        )
    else:
        st.toast(f"Saved as {state.saved_visit_label()}.", icon=":material/check_circle:")
        st.rerun()  # cheap here, before any section is drawn: the sidebar (drawn first) then says "saved" too


_save_if_requested()
review_patient_ui.patient_section(state, store)
if state.patient is not None:
    review_images_ui.images_section(state, store, op.threshold)
    if state.images or state.result is not None:
        _triage_section()
    if state.result is not None:
        _results_section()
review_patient_ui.keep_draft_on_server(store, state)
ui.review_widgets_drawn()  # the last line: a run cut short leaves its widgets to be set again next run
