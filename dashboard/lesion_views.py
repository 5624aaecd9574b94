"""Lesion cards: one ranked lesion of the review in progress (editable), or of a saved visit (read-only)."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st
from PIL import Image

from dashboard import components as ui
from dashboard import follow_up_ui, resources
from dashboard.choices import DECISION_HELP, DECISIONS, REVIEW_MONTHS, decision_label
from dashboard.follow_up import read_stored_image
from dashboard.navigation import page
from dashboard.review_state import ReviewState
from dashboard.textsafe import literal
from dashboard.wording import pct, rank_label, reason_lines, review_interval, score_band
from model.cam_methods import CAM_LABELS, CAM_METHODS, DEFAULT_METHOD
from model.ugly_duckling import z_text

# image | score and reasons | decision: wide enough at 1024 px for the image column's "Saliency map" toggle and
# "Inspect saliency" link (narrower, both were cut)
CARD_COLUMNS = (1.25, 1.5, 1.15)
GALLERY_OPACITY = 0.6  # the colour's weight at the map's maximum (model/cam_overlay.py)
RETURN_TO_CARD = "gallery_return_card"  # session_state: the image key of the lesion last shown on Saliency
RETURN_TO_SAVED_CARD = "history_return_card"  # session_state: the stored image id last shown on Saliency


def cam_methods() -> list[str]:
    """Names of the saliency methods, in model/cam_methods.py's registry order."""
    return list(CAM_METHODS)


def cam_label(method: str, short: bool = True) -> str:
    """Display name of a CAM method; the long form carries model/cam_methods.py's note on what it shows."""
    label = CAM_LABELS.get(method, method)
    return label.split(" (")[0] if short else label


def default_cam_method(methods: list[str]) -> str | None:
    if not methods:
        return None
    return DEFAULT_METHOD if DEFAULT_METHOD in methods else methods[0]


def heatmap_for(state: ReviewState, predictor: Any, sha256: str, method: str) -> Any:
    """Grad-CAM heatmap of one image of the review, computed once per (image, method)."""
    cache_key = (sha256, method)
    if cache_key not in state.heatmaps:
        image = state.images[sha256]
        state.heatmaps[cache_key] = resources.explain(
            predictor, image.display_image(), image.site, state.patient_info(), method
        )
    return state.heatmaps[cache_key]


def saliency_link(lesion_key: str, visit_id: int | None = None) -> None:
    """A lesion card's "Inspect saliency" link: the Saliency page opens on that lesion.

    ``?lesion=`` is the image's short SHA-256 key; ``?visit=`` is added for an image of a saved visit,
    which the page then reads from the case store instead of the review in progress.
    """
    params = {"lesion": lesion_key} if visit_id is None else {"visit": str(visit_id), "lesion": lesion_key}
    st.page_link(page("saliency"), label="Inspect saliency", query_params=params)


def remember_gallery_card(image_key: str) -> None:
    """The lesion the Saliency page shows: back on the review, the gallery opens at its card."""
    st.session_state[RETURN_TO_CARD] = image_key


def return_to_remembered_card(shown_keys: set[str]) -> None:
    """Once, back on the review: scroll the gallery to the card of the lesion last inspected on another page,
    if the gallery shows it (the page would open at its top, far from a lesion low in the ranking)."""
    key = st.session_state.pop(RETURN_TO_CARD, None)
    if key in shown_keys:  # keys are hex: safe in the selector; the card's key is card-<band>-<image key>
        ui.scroll_into_view(f'[class*="st-key-card-"][class*="-{key}"]')


def remember_saved_card(image_id: int) -> None:
    """The saved lesion image the Saliency page shows: back on Case history, the visit opens at its card."""
    st.session_state[RETURN_TO_SAVED_CARD] = int(image_id)


def return_to_saved_card(shown_ids: set[int]) -> None:
    """Once, back on Case history: scroll to the card of the saved image last inspected, if the visit shows it."""
    image_id = st.session_state.pop(RETURN_TO_SAVED_CARD, None)
    if image_id in shown_ids:  # an int: safe in the selector; an exact class, so id 12 never matches 123
        ui.scroll_into_view(f".st-key-card-saved-{int(image_id)}")


def overlay_image(base: Image.Image, heatmap: Any, opacity: float) -> Image.Image:
    """The map drawn over the image in proportion to its value: low-attribution pixels stay the original."""
    from model.cam import overlay

    return overlay(base, heatmap, opacity)


SCALE_ALT = "Colour scale: from no contribution to the score (the image as it is) to the highest"


@st.cache_data(max_entries=8, show_spinner=False)
def colour_scale_png(opacity: float) -> bytes:
    """The "low → high contribution" bar that goes with an overlay of this opacity."""
    from dashboard.uploads import png_bytes
    from model.cam_overlay import colour_scale

    return png_bytes(colour_scale(width=300, height=40, opacity=opacity))


def _badges(band_title: str, band_colour: str, outlier: bool, linked: int | None) -> None:
    # Below the threshold is not "fine": no tick and no green on the badge (the charts keep the band colours).
    looks = {
        "red": ("red", ":material/priority_high:"),
        "orange": ("orange", ":material/help:"),
        "green": ("gray", ":material/arrow_downward:"),
    }
    colour, icon = looks[band_colour]
    with st.container(horizontal=True, gap="small"):
        st.badge(band_title, color=colour, icon=icon)  # type: ignore[arg-type]
        if outlier:
            st.badge("Ugly duckling", color="violet", icon=":material/flag:")
        if linked is not None:
            st.badge(f"Follow-up of lesion #{linked}", color="blue", icon=":material/history:")


def _ud_text(value: Any, outlier_z: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "Ugly-duckling comparison: not computed (needs at least 3 lesions)."
    z = float(value)
    cut = f"; ≥ {outlier_z:.1f} flags an outlier" if outlier_z is not None else ""
    if outlier_z is not None and z >= outlier_z:
        verdict = "looks unlike this patient's other lesions"
    elif z <= 1.0:
        verdict = "typical for this patient"
    else:
        verdict = "somewhat unusual for this patient"
    return f"Ugly-duckling score **{z_text(z)}** — {verdict} (robust z{cut})."


def lesion_card(
    state: ReviewState, row: Any, threshold: float, predictor: Any, cams: list[str], editable: bool
) -> None:
    """One ranked lesion of the review: image (or overlay), score, flags, reasons, decision."""
    sha = row.image_id
    image = state.images[sha]
    band = score_band(float(row.p_melanoma), threshold, float(row.p_spread))
    with st.container(border=True, key=f"card-{band.name}-{image.key}"):
        # The heading first, above the columns: a screen reader (and a narrow window, where the columns stack)
        # meets the card's name before its image, source warning and links, not after them.
        st.markdown(f"#### {rank_label(row.rank)} · {literal(image.label)}")
        c_img, c_info, c_decide = st.columns(CARD_COLUMNS, gap="medium")
        with c_img:
            method = default_cam_method(cams)
            show = st.toggle(
                "Saliency map",
                key=f"cam_{image.key}",
                disabled=method is None,
                help="Colours the regions that most raised this lesion's score; the rest of the image is shown "
                "as it is." + ("" if method else " (No saliency method is registered.)"),
            )
            shown = image.thumbnail_jpeg()
            if show and method:
                method = st.selectbox(
                    "Method",
                    cams,
                    index=cams.index(method),
                    format_func=cam_label,
                    key=f"cam_method_{image.key}",
                    label_visibility="collapsed",
                    help="The default covered the lesion best on average (bench/RESULTS.md).",
                )
                try:
                    with st.spinner("Computing the saliency map…"):
                        heat = heatmap_for(state, predictor, sha, method)
                    shown = overlay_image(image.thumbnail, heat, GALLERY_OPACITY)
                except Exception as exc:
                    st.error(f"Saliency map unavailable: {type(exc).__name__}: {literal(exc)}")
            st.image(shown, width="stretch", alt=f"Lesion {image.label}" + (", saliency map over it" if show else ""))
            if show and method:
                st.image(colour_scale_png(GALLERY_OPACITY), width="stretch", alt=SCALE_ALT)
            caveat = state.source_caveats.get(sha)
            if caveat:
                st.warning(caveat, icon=":material/photo_camera:")
            saliency_link(image.key)
        with c_info:
            st.caption(f"{image.site} · {literal(image.filename)}")
            linked = image.existing_lesion_id
            _badges(
                band.title,
                band.colour,
                bool(row.outlier),
                None if linked is None else (state.patient.lesion_number(linked) or linked),
            )
            if linked is not None:  # a follow-up: its score against the last visit's, and a side-by-side view
                follow_up_ui.review_lesion_over_time(state, image, row, threshold)
            ui.score_bar(float(row.p_melanoma), threshold, float(row.p_spread), band)
            if band.title.endswith("(borderline)") or band.name == "near":
                st.caption(band.explanation)  # the uncertainty straddles the threshold: say so
            settings = getattr(state.result, "settings", None) or {}
            st.markdown(_ud_text(row.ugly_duckling, settings.get("ud_outlier_z")))
            lines = reason_lines(row.reasons)
            if lines:
                st.markdown("\n".join(f"- {literal(line)}" for line in lines))
        with c_decide:
            decision = state.decision(sha)
            if not editable:
                _decision_text(decision.action, decision.comment, None, decision.review_months)
                return
            # Both boxes show the review's decision on every run (ui.bind): back from another page, a box
            # showing nothing while the review holds a decision would send that blank at the next click.
            key = ui.bind(f"decision_{image.key}", decision.action)
            st.pills(
                "Decision",
                DECISIONS,
                key=key,
                format_func=decision_label,
                wrap=True,
                on_change=lambda: state.set_decision(sha, st.session_state[key]),
                help=" · ".join(f"{decision_label(k)}: {v}" for k, v in DECISION_HELP.items()),
            )
            if decision.action == "monitor":
                mkey = ui.bind(f"review_months_{image.key}", decision.review_months)
                st.segmented_control(
                    "Repeat imaging in",
                    REVIEW_MONTHS,
                    key=mkey,
                    format_func=lambda m: f"{m} mo",  # "12 months" did not fit the card's column
                    required=True,
                    on_change=lambda: state.set_decision(sha, "monitor", review_months=st.session_state[mkey]),
                    help="The lesion is listed on the Worklist as due on this visit's day plus this interval, "
                    "until it is imaged again.",
                )
            ckey = ui.bind(f"comment_{image.key}", decision.comment)
            st.text_area(
                "Comment",
                key=ckey,
                height=80,
                placeholder="optional",
                on_change=lambda: state.set_decision(sha, state.decision(sha).action, st.session_state[ckey]),
            )


def visit_lesion_card(lesion: Any, threshold: float | None, visit_id: int | None = None) -> None:
    """One lesion of a saved visit (VisitLesion), read-only; with ``visit_id``, a link to its saliency maps."""
    pred = lesion.prediction
    with st.container(border=True, key=f"card-saved-{lesion.image.id}"):
        rank = f"{rank_label(pred.rank)} · " if pred else ""
        st.markdown(f"#### {rank}{literal(lesion.label)}")  # first, as on the review's cards
        c_img, c_info, c_decide = st.columns(CARD_COLUMNS, gap="medium")
        with c_img:
            img = read_stored_image(lesion.image.path, 384)
            if img is not None:
                st.image(img, width="stretch", alt=f"Stored image of lesion {lesion.label}")
            else:
                st.error("Stored image file is missing or unreadable.", icon=":material/broken_image:")
            if visit_id is not None:
                saliency_link(lesion.image.sha256[:16], visit_id)
            _overview_thumbnails(getattr(lesion, "overviews", ()))
        with c_info:
            number = lesion.lesion_number or lesion.lesion_id
            st.caption(f"lesion #{number} · {lesion.site} · {literal(lesion.image.original_filename)}")
            if pred:
                t = threshold if threshold is not None else 0.5
                band = score_band(pred.p_melanoma, t, pred.p_spread or 0.0)
                _badges(
                    band.title + ("" if threshold is not None else f" ({pct(t)})"),
                    band.colour,
                    bool(pred.outlier),
                    None,
                )
                ui.score_bar(pred.p_melanoma, t, pred.p_spread, band)
                if band.title.endswith("(borderline)") or band.name == "near":
                    st.caption(band.explanation)
                st.caption(saved_uncertainty_note(pred.p_spread, pred.tta_views))
                ud = pred.ugly_duckling
                st.caption(
                    f"Model {literal(pred.model_id)} · triage score {pct(pred.triage_score, 1)}"
                    + (f" · ugly-duckling z {z_text(ud)}" if ud is not None else "")
                )
                if pred.source_caveat:  # as the review showed it when this score was saved
                    st.warning(literal(pred.source_caveat), icon=":material/photo_camera:")
        with c_decide:
            decision = lesion.decision
            if decision:
                _decision_text(
                    decision.action,
                    decision.comment,
                    f"by {decision.clinician}, {decision.decided_at.astimezone():%Y-%m-%d %H:%M}",
                    decision.review_in_months,
                )
            else:
                _decision_text(None, "", None)


def _overview_thumbnails(overviews: Any) -> None:
    """A saved lesion's overview photos (where it is on the body; never scored), small, under its image."""
    if not overviews:
        return
    st.caption(f"{len(overviews)} overview photo(s), not scored")
    for column, overview in zip(st.columns(min(len(overviews), 4)), overviews, strict=False):
        img = read_stored_image(overview.path, 192)
        if img is not None:
            column.image(
                img,
                caption=literal(overview.original_filename),
                width="stretch",
                alt=f"Overview photo {overview.original_filename}",
            )
        else:
            column.caption("overview photo missing")


def saved_uncertainty_note(spread: float | None, views: int | None) -> str:
    """What a saved score's range means (the same caveat as the live review's), or that none was recorded."""
    if spread is None:
        return "No uncertainty was recorded with this score (saved before the TTA spread was stored)."
    across = f"{views} orientations" if views else "rotated/flipped views"
    return (
        f"The range is P(melanoma) across {across} of the image (rotations/flips): it shows only how much the "
        "score depends on the orientation, not the model's overall error."
    )


def _decision_text(action: str | None, comment: str, byline: str | None, review_months: int | None = None) -> None:
    if not action:
        st.caption("No decision recorded.")
        return
    st.markdown(f"**Decision:** {decision_label(action)}{review_interval(review_months)}")
    if comment:
        st.markdown(f"> {literal(comment)}")
    if byline:
        st.caption(literal(byline))
