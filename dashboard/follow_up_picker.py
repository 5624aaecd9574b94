"""The follow-up picker: under an image of the review, "Choose from thumbnails" opens a dialog with the
patient's known lesions (the latest saved image of each, its site, last score and score-rise badge), filtered
by site and (by default) most alike first (dashboard/lesion_likeness.py), to link the image as a follow-up of one
of them or mark it as a new lesion. The comparison view and
the rise helpers are in follow_up_ui.py; the linking rules in ReviewState.link_lesion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from dashboard.comparison import fit_into_box
from dashboard.follow_up import (
    ALL_SITES,
    LesionHistory,
    LesionVisit,
    comparable,
    default_site_filter,
    filter_by_site,
    read_stored_image,
    site_filter_options,
)
from dashboard.follow_up_ui import rise_badge, rise_margin
from dashboard.lesion_likeness import Likeness, evidence_text, likeness
from dashboard.score_rise import lesion_rise
from dashboard.textsafe import literal
from dashboard.wording import pct, score_interval
from data.images import jpeg_bytes

THUMB_PX = 180
PICKER_FOR = "follow_up_picker_for"  # sha256 of the image whose picker dialog is open
PICK_ERROR = "follow_up_pick_error"

# Not "#2": "#" is a lesion's number in the patient's record, shown on the tile just below the badge.
ALIKE_BADGES = {1: "Most alike", 2: "2nd most alike", 3: "3rd most alike"}


@st.cache_data(max_entries=512, show_spinner=False)
def _thumbnail_jpeg(path: str, sha256: str, px: int) -> bytes | None:
    """A stored image's thumbnail (the SHA-256 keys the cache: files are content-addressed)."""
    image = read_stored_image(path, px)
    if image is None:
        return None
    return jpeg_bytes(fit_into_box(image, px), quality=88)  # square: the cards line up


def _visit_thumbnail(visit: LesionVisit, px: int = THUMB_PX) -> bytes | None:
    if visit.image is None:
        return None
    return _thumbnail_jpeg(str(visit.image.path), visit.image.sha256, px)


def picker_button(image: Any, disabled: bool) -> None:
    """Under an image's "Follow-up of" box: open the picker with thumbnails of the known lesions."""
    st.button(
        "Choose from thumbnails",
        key=f"pick_thumbs_{image.key}",
        icon=":material/grid_view:",
        type="tertiary",
        disabled=disabled,
        on_click=_open_picker,
        args=(image.sha256,),
    )


def _open_picker(sha: str) -> None:
    st.session_state[PICKER_FOR] = sha


def show_open_picker(state: Any, histories: list[LesionHistory], on_linked: Callable[[str], None]) -> None:
    """Draw the picker dialog if one was asked for (call once per page run, after the image grid)."""
    sha = st.session_state.get(PICKER_FOR)
    if sha and sha in state.images and histories:
        _picker_dialog(state, sha, histories, on_linked)


def _close_picker() -> None:
    st.session_state.pop(PICKER_FOR, None)


def _pick(state: Any, sha: str, lesion_id: int | None, on_linked: Callable[[str], None]) -> None:
    try:
        state.link_lesion(sha, lesion_id)
    except ValueError as exc:
        st.session_state[PICK_ERROR] = str(exc)
        return
    on_linked(sha)
    _close_picker()


def _likeness(image: Any, histories: list[LesionHistory]) -> Likeness | None:
    """The "most alike first" order, when asked for and a model is loaded (else None: the usual order)."""
    on = st.toggle(
        "Most alike first",
        value=True,
        key=f"pick_alike_{image.key}",
        help="Orders the known lesions by how alike their latest photo and this image look to the model. "
        "A suggestion to shorten the search, never a link: compare the photos before you pick.",
    )
    if not on:
        return None
    from dashboard import resources

    predictor, problem = resources.try_get_predictor()
    if predictor is None:
        st.caption(f"Most alike first is unavailable: {literal(problem or 'no model')}.")
        return None
    n = len(comparable(histories))
    with st.spinner(f"Comparing this image with the patient's {n} known lesions…"):
        alike = likeness(predictor, image.sha256, image.image, histories)
    note = evidence_text(resources.checkpoint_validation())
    if alike.unreadable:
        note += f" {alike.unreadable} stored photo(s) could not be read: those lesions are listed last."
    st.caption(note)
    return alike


@st.dialog("Follow-up of which lesion?", width="large", on_dismiss=_close_picker)
def _picker_dialog(state: Any, sha: str, histories: list[LesionHistory], on_linked: Callable[[str], None]) -> None:
    if st.session_state.get(PICKER_FOR) != sha:
        st.rerun()  # picked or dismissed: close
    image = state.images[sha]
    current = image.existing_lesion_id
    taken = {i.existing_lesion_id for s, i in state.images.items() if s != sha and i.existing_lesion_id}
    head_img, head_text = st.columns([1, 3], vertical_alignment="center")
    head_img.image(image.thumbnail_jpeg(), width="stretch", alt=f"The new image {image.filename}")
    site = "site not set yet" if image.site == "unknown" else image.site
    head_text.markdown(f"**This image:** {literal(image.filename)} · {site}")
    head_text.caption(
        "Pick the known lesion this image shows again (each shows its latest saved image), or mark it as new. "
        "A lesion does not move: linking takes the lesion's recorded site and label."
    )
    head_text.button(
        "New lesion (first time seen)",
        key=f"pick_new_{image.key}",
        type="secondary",  # not the obvious button: a known lesion marked new starts a second history of it
        icon=":material/add_circle:",
        on_click=_pick,
        args=(state, sha, None, on_linked),
    )
    error = st.session_state.pop(PICK_ERROR, None)
    if error:
        st.error(literal(error))
    options = site_filter_options(histories)
    site = st.segmented_control(
        "Site",
        options,
        default=default_site_filter(image.site, histories),
        key=f"pick_site_{image.key}",
    )
    shown = filter_by_site(histories, site or ALL_SITES, keep_lesion_id=current)
    if not shown:
        st.info("No known lesion on this site.")
    alike = _likeness(image, histories) if shown and len(histories) > 1 else None
    if alike is not None:
        shown = alike.order(shown)
    margin = rise_margin()
    places = alike.places([h for h in shown if h.lesion_id not in taken]) if alike is not None else {}
    per_row = 4
    for start in range(0, len(shown), per_row):
        for col, lesion in zip(st.columns(per_row), shown[start : start + per_row], strict=False):
            with col, st.container(border=True, key=f"pick-{image.key}-{lesion.lesion_id}"):
                place = places.get(lesion.lesion_id)
                if place is not None and place <= 3:  # above the photo: seen without scrolling
                    st.badge(ALIKE_BADGES[place], color="blue", icon=":material/compare:")
                thumb = _visit_thumbnail(lesion.latest)
                if thumb is None:
                    st.caption(":material/broken_image: stored image unreadable")
                else:
                    st.image(thumb, width="stretch", alt=f"Latest stored image of {lesion.title()}")
                st.markdown(f"**{literal(lesion.title())}**")
                latest = lesion.latest
                score = (
                    f"P(melanoma) {pct(latest.p_melanoma)} ({score_interval(latest.p_melanoma, latest.p_spread)})"
                    if latest.p_melanoma is not None
                    else "not scored"
                )
                st.caption(
                    f"{literal(lesion.where())} · last seen {latest.date} (visit {latest.visit_number}) · {score}"
                )
                rise_badge(lesion_rise(lesion, margin))
                if lesion.lesion_id == current:
                    st.button("Linked now", key=f"pick_{image.key}_{lesion.lesion_id}", disabled=True)
                elif lesion.lesion_id in taken:
                    st.button("Linked to another image", key=f"pick_{image.key}_{lesion.lesion_id}", disabled=True)
                else:
                    st.button(
                        "Follow-up of this lesion",
                        key=f"pick_{image.key}_{lesion.lesion_id}",
                        icon=":material/link:",
                        on_click=_pick,
                        args=(state, sha, lesion.lesion_id, on_linked),
                    )
