"""Patient review, section 2 · Lesion images: upload (every unusable file named with its reason), each image's
label, anatomic site and follow-up link, the body map and the overview photos.

Streamlit code only; the review itself (its images: dashboard/review_images.py) checks and keeps what is entered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from dashboard import body_map_ui, follow_up_picker, follow_up_ui, overview_ui
from dashboard import components as ui
from dashboard.choices import SITES
from dashboard.patient_form import NEW_LESION
from dashboard.store.privacy import filename_looks_personal
from dashboard.textsafe import literal
from dashboard.uploads import UPLOAD_FILE_MB, upload_help, uploader_label
from data.settings import LIMITS

if TYPE_CHECKING:
    from dashboard.review_state import ReviewState
    from dashboard.user_store import UserStore


# Widget callbacks run before the page's script: they reach the review through the session.
def _on_site(sha: str, key: str) -> None:
    ui.review_state().set_site(sha, st.session_state[key])
    _sync_image_widgets(sha)


def _on_label(sha: str, key: str) -> None:
    ui.review_state().set_label(sha, st.session_state[key])


def _on_link(sha: str, key: str) -> None:
    try:
        ui.review_state().link_lesion(sha, st.session_state[key])
    except ValueError as exc:
        st.session_state[f"link_error_{sha[:16]}"] = str(exc)
    _sync_image_widgets(sha)


def link_widget_key(image) -> str:
    """The "Follow-up of" box's key names the current link: whenever the review links or unlinks the image
    (a re-uploaded image, a changed site), a new box is drawn showing exactly that link."""
    return f"link_{image.key}_{image.existing_lesion_id or NEW_LESION}"


def _sync_image_widgets(sha: str) -> None:
    image = ui.review_state().images[sha]
    st.session_state[f"site_{image.key}"] = image.site
    st.session_state[f"label_{image.key}"] = image.label


def _apply_bulk_site() -> None:
    site = st.session_state["bulk_site"]
    state = ui.review_state()
    state.set_sites_where_unknown(site)
    for sha in state.images:
        _sync_image_widgets(sha)


def images_section(state: ReviewState, store: UserStore | None, threshold: float) -> None:
    """Section 2: upload, per-image label, site and follow-up link, body map and overview photos."""
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
        state.flag_saved_for_other_patients(store, report.added)
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
        _image_grid(state, store, locked)
    body_map_ui.review_panel(state, threshold, locked)
    overview_ui.review_panel(state, locked)


def _image_grid(state: ReviewState, store: UserStore | None, locked: bool) -> None:
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
                st.image(image.thumbnail_jpeg(), width="stretch", alt=f"Uploaded image {image.filename}")
                st.caption(f"{literal(image.filename)} · {image.width}×{image.height}")
                if filename_looks_personal(image.filename):
                    st.caption(
                        ":material/privacy_tip: This file name reads like a name or a date: it is not saved, "
                        "nor used as the label."
                    )
                st.text_input(
                    "Label",
                    key=ui.bind(f"label_{image.key}", image.label),
                    disabled=locked,
                    on_change=_on_label,
                    args=(image.sha256, f"label_{image.key}"),
                    max_chars=LIMITS.label_max,
                )
                st.selectbox(
                    "Anatomic site",
                    SITES,
                    key=ui.bind(f"site_{image.key}", image.site),
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
