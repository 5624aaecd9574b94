"""Patient review: patient → images → triage → ranked lesions → decisions → save.

Over 400 lines because it is the page of five sections, each a few widgets wired to the review; it holds
only Streamlit code. What the page checks, keeps and words lives in modules tested without Streamlit:
dashboard/review_state.py (the review), patient_form.py, review_draft.py, uploads.py, wording.py.
"""

from __future__ import annotations

import datetime as dt
import logging

import streamlit as st

from dashboard import auth_ui, body_map_ui, follow_up_picker, follow_up_ui, overview_ui, resources
from dashboard import components as ui
from dashboard.choices import SEX_OPTIONS, SITES
from dashboard.errors import STORE_ERRORS, log_swallowed
from dashboard.lesion_views import cam_methods, lesion_card, return_to_remembered_card
from dashboard.navigation import page
from dashboard.operating_point import operating_point
from dashboard.patient_form import (
    NEW_LESION,
    PatientContext,
    find_exact_patient,
    merge_form_into_existing,
    patient_from_store,
    search_choice_label,
    validate_new_patient,
)
from dashboard.review_draft import draft_summary, keep_draft, resume_draft
from dashboard.review_state import ReviewNotReady, model_checksum
from dashboard.store.privacy import PSEUDONYM_HELP, identifier_warnings
from dashboard.textsafe import literal
from dashboard.uploads import UPLOAD_FILE_MB, UploadProblem, upload_help, uploader_label
from dashboard.wording import pct, quoted_names
from data.settings import LIMITS

logger = logging.getLogger(__name__)
user = auth_ui.require("patient.write")  # viewers never get here (the page is not in their navigation)
state = ui.review_state()
predictor = resources.get_predictor()  # stops with a "No model installed" page when there is none
store, store_problem = resources.try_get_user_store()  # role-checked, every access attributed to `user`
op = operating_point(predictor.config)

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


def _bind(key: str, value: object) -> str:
    """Initialise a widget's state from the review model (widgets then take no default)."""
    if key not in st.session_state:
        st.session_state[key] = value
    return key


# ---------------------------------------------------------------- 1 · patient


CONFIRM_NEW = "confirm_new_patient"
PSEUDONYM_PENDING = "pseudonym_pending"  # an identifier that looked like a name or a date, awaiting confirmation
PSEUDONYM_CONFIRMED = "pseudonym_confirmed"  # set while the "discard unsaved work?" question is open


def _answer_new_patient(discard: bool) -> None:
    st.session_state[CONFIRM_NEW] = False
    if discard:
        ui.reset_review()


# The answer is taken in button callbacks, so it counts whether the dialog reruns alone (browser) or
# with the whole page; the dialog then closes itself on its next run.
@st.dialog("Start a new patient?", on_dismiss=lambda: _answer_new_patient(False))
def _confirm_new_patient() -> None:
    if not st.session_state.get(CONFIRM_NEW):
        st.rerun()
    st.markdown(literal(state.unsaved_summary()))
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


def _open_patient(context: PatientContext) -> None:
    if context.patient_id is not None and store is not None:
        store.record_view("patient.open", context.patient_id, {"page": "review"})
    ui.reset_review()
    ui.review_state().patient = context
    st.rerun()


DRAFT_FINGERPRINT = "draft_fingerprint"  # of the review as last kept on the server (this tab)


def _offer_draft() -> bool:
    """After a reload (or on another workstation): offer to resume the review kept on the server."""
    if store is None:
        return False
    try:
        draft = store.load_draft()
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
            resumed = resume_draft(draft, store)
        except STORE_ERRORS as exc:  # the patient gone from the store, the draft unreadable (ValueError)
            st.error(f"The kept review could not be resumed: {literal(exc)}", icon=":material/error:")
            return True
        ui.reset_review()
        resumed.uploader_generation = ui.review_state().uploader_generation
        st.session_state[ui.REVIEW_KEY] = resumed
        st.session_state[DRAFT_FINGERPRINT] = resumed.draft_fingerprint()
        if resumed.patient.patient_id is not None:
            store.record_view("patient.open", resumed.patient.patient_id, {"page": "review", "draft": True})
        st.rerun()
    if discard:
        store.delete_draft()
        st.rerun()
    st.divider()
    return False


def _keep_draft() -> None:
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


def _patient_section() -> None:
    st.subheader("1 · Patient", divider="gray")
    if state.patient is not None:
        patient = state.patient
        with st.container(border=True):
            left, right = st.columns([4, 1], vertical_alignment="center")
            with left:
                ui.patient_banner(
                    patient.identifier, f"{patient.describe()} — {patient.history_line()}", role="Reviewing"
                )
            if right.button("New patient…", icon=":material/person_add:", key="new_patient"):
                if not state.has_unsaved_work:
                    ui.reset_review()
                    st.rerun()
                st.session_state[CONFIRM_NEW] = True
        if st.session_state.get(CONFIRM_NEW):
            _confirm_new_patient()
        return

    if _offer_draft():
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
        existing = find_exact_patient(store, identifier) if store else None
        if existing is not None:
            context = patient_from_store(store, existing)
            conflicts = merge_form_into_existing(context, birth_year, sex)
            if conflicts:
                new_tab.error(
                    f"“{literal(identifier)}” is already recorded with {' and '.join(conflicts)}. "
                    "Check the identifier, "
                    "or open the existing patient from “Find an existing patient”."
                )
                return
            st.toast(f"“{literal(identifier)}” is already in the case database: opened the existing record.")
            _open_patient(context)
        _open_patient(PatientContext(identifier=identifier, birth_year=birth_year, sex=sex))

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
            _open_patient(patient_from_store(store, choice.id))


# ---------------------------------------------------------------- 2 · images


def _on_site(sha: str, key: str) -> None:
    state.set_site(sha, st.session_state[key])
    _sync_image_widgets(sha)


def _on_label(sha: str, key: str) -> None:
    state.set_label(sha, st.session_state[key])


def _on_link(sha: str, key: str) -> None:
    try:
        state.link_lesion(sha, st.session_state[key])
    except ValueError as exc:
        st.session_state[f"link_error_{sha[:16]}"] = str(exc)
    _sync_image_widgets(sha)


def link_widget_key(image) -> str:
    """The "Follow-up of" box's key names the current link: whenever the review links or unlinks the image
    (a re-uploaded image, a changed site), a new box is drawn showing exactly that link."""
    return f"link_{image.key}_{image.existing_lesion_id or NEW_LESION}"


def _sync_image_widgets(sha: str) -> None:
    image = state.images[sha]
    st.session_state[f"site_{image.key}"] = image.site
    st.session_state[f"label_{image.key}"] = image.label


def _apply_bulk_site() -> None:
    site = st.session_state["bulk_site"]
    state.set_sites_where_unknown(site)
    for sha in state.images:
        _sync_image_widgets(sha)


def _images_section() -> None:
    st.subheader("2 · Lesion images", divider="gray")
    locked = state.is_saved
    files = st.file_uploader(
        uploader_label(),
        # Any file type: the review's own checks name each file a clinician cannot use and why
        # (Streamlit's extension filter would reject it without saying which file).
        type=None,
        accept_multiple_files=True,
        key=f"uploader_{state.uploader_generation}",
        # Streamlit's caption under the drop zone shows this limit: the app's own, not the server's 500 MB.
        max_upload_size=UPLOAD_FILE_MB,
        disabled=locked,
        help=upload_help(),
    )
    if files:
        report = state.add_files([(f.name, f.getvalue()) for f in files])
        state.uploader_generation += 1  # empty the uploader: its files now live in the review
        if report.added:
            st.toast(f"{len(report.added)} image(s) added.", icon=":material/add_photo_alternate:")
        st.rerun()

    if state.problems:
        with st.container(key="upload_problems"):
            for problem in state.problems:
                ui.problem_card(problem)
            st.button(
                "Dismiss these messages",
                key="dismiss_problems",
                on_click=state.clear_problems,
                type="tertiary",
            )

    if not state.images:
        st.caption("No images yet.")
        return

    collapsed = state.result is not None and not state.result_is_stale
    with st.expander(
        f"Images, anatomic sites and follow-up links ({len(state.images)})",
        expanded=not collapsed,
        icon=":material/photo_library:",
    ):
        _image_grid(locked)
    body_map_ui.review_panel(state, op.threshold, locked)
    overview_ui.review_panel(state, locked)


def _image_grid(locked: bool) -> None:
    head, bulk_site, bulk_button = st.columns([3, 1.3, 1], vertical_alignment="bottom")
    unknown = sum(1 for i in state.images.values() if i.site == "unknown")
    head.markdown(
        f"**{len(state.images)} image(s)** — set each lesion's anatomic site"
        + (" and link follow-ups to lesions seen before" if state.patient.known_lesions else "")
        + (f". :orange[{unknown} site(s) still unknown.]" if unknown else ".")
    )
    if unknown and not locked:
        bulk_site.selectbox("Site for all unknown", [s for s in SITES if s != "unknown"], key="bulk_site")
        bulk_button.button("Apply", on_click=_apply_bulk_site, key="bulk_apply")

    lesion_ids = state.patient.follow_up_options()
    per_row = 4
    images = list(state.images.values())
    for start in range(0, len(images), per_row):
        cols = st.columns(per_row)
        for col, image in zip(cols, images[start : start + per_row], strict=False):
            with col, st.container(border=True, key=f"upload-{image.key}"):
                st.image(image.thumbnail_jpeg(), width="stretch")
                st.caption(f"{literal(image.filename)} · {image.width}×{image.height}")
                st.text_input(
                    "Label",
                    key=_bind(f"label_{image.key}", image.label),
                    disabled=locked,
                    on_change=_on_label,
                    args=(image.sha256, f"label_{image.key}"),
                    max_chars=LIMITS.label_max,
                )
                st.selectbox(
                    "Anatomic site",
                    SITES,
                    key=_bind(f"site_{image.key}", image.site),
                    disabled=locked,
                    on_change=_on_site,
                    args=(image.sha256, f"site_{image.key}"),
                )
                body_map_ui.pick_checkbox(state, image.sha256, locked)
                if len(lesion_ids) > 1:
                    link_key = link_widget_key(image)
                    current = image.existing_lesion_id or NEW_LESION
                    st.selectbox(
                        "Follow-up of",
                        lesion_ids,
                        index=lesion_ids.index(current) if current in lesion_ids else 0,
                        key=link_key,
                        format_func=state.patient.lesion_choice_label,
                        disabled=locked,
                        on_change=_on_link,
                        args=(image.sha256, link_key),
                    )
                    error = st.session_state.pop(f"link_error_{image.key}", None)
                    if error:
                        st.error(error)
                    follow_up_picker.picker_button(image, disabled=locked)
                if not locked:
                    st.button(
                        "Remove",
                        key=f"remove_{image.key}",
                        icon=":material/delete:",
                        type="tertiary",
                        on_click=state.remove_image,
                        args=(image.sha256,),
                    )
    follow_up_picker.show_open_picker(state, follow_up_ui.review_histories(store, state.patient), _sync_image_widgets)


# ---------------------------------------------------------------- 3 · triage


def _triage_section() -> None:
    st.subheader("3 · Triage", divider="gray")
    if state.is_saved:
        st.caption("This review is saved; its scores are shown below.")
        return
    if state.result_is_stale:
        st.warning(
            "Images or sites changed after the triage ran. Run it again before saving.",
            icon=":material/sync_problem:",
        )
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    # One fixed test-time augmentation per model (its checkpoint says how many views), the same as the CLI's:
    # a setting that changed scores between visits would show a trend that is only the setting.
    right.caption(f"Each image is scored in {predictor.tta} orientations; their spread is the ± shown with each score.")
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
    ui.performance_note(op)

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
        st.caption(f":material/info: {note}")
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
    compared = len(table) + (0 if earlier is None else len(earlier))
    if compared < MIN_LESIONS:
        st.info(too_few_message(compared), icon=":material/info:")
        return
    st.caption(
        "Each picture is one of this patient's lesions, placed by how the model sees it: similar-looking "
        "lesions sit together. A violet frame marks an outlier — an “ugly duckling” worth a second look; the "
        "corner marker's colour is P(melanoma)."
        + (
            " Grey rings are lesions known from earlier visits, compared against but not ranked."
            if compared > len(table)
            else ""
        )
    )
    thumbs = {sha: thumbnail_uri(state.images[sha].thumbnail) for sha in table["image_id"]}
    st.plotly_chart(ugly_duckling_map(table, thumbs, earlier), key="duck_map")


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
        key=_bind("visit_notes", state.notes),
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
        key=_bind("visit_taken_on", state.taken_on),
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
        state.save(store, clinician, predictor.model_id, model_checksum(predictor.config))
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
_patient_section()
if state.patient is not None:
    _images_section()
    if state.images or state.result is not None:
        _triage_section()
    if state.result is not None:
        _results_section()
_keep_draft()
