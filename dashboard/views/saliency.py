"""Saliency inspection: one lesion, the original beside overlays from several CAM methods.

The lesion comes from the review in progress (``?lesion=<key>``, linked from its lesion cards), or from a
saved visit (``?visit=<id>&lesion=<key>``, linked from the read-only cards on Case history): that image is
read from the case store and explained by the model loaded now.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import streamlit as st
from PIL import Image

from dashboard import auth_ui, resources
from dashboard import components as ui
from dashboard.history_data import StoredImageError, StoredLesionImage, stored_lesion_image
from dashboard.lesion_views import cam_label, cam_methods, default_cam_method, heatmap_for, overlay_image
from dashboard.navigation import page
from dashboard.operating_point import operating_point
from dashboard.textsafe import literal
from dashboard.uploads import png_bytes
from dashboard.wording import pct, score_band
from model.cam import COMPARE_BY_DEFAULT

STORED_CACHE = "saliency_stored"  # session_state: ((visit, lesion) query, StoredLesionImage) last opened


def method_controls(methods: list[str]) -> tuple[list[str], float]:
    c1, c2 = st.columns([3, 1.2], vertical_alignment="bottom")
    chosen = c1.multiselect(
        "Methods",
        methods,
        default=[m for m in COMPARE_BY_DEFAULT if m in methods] or methods[:2],
        format_func=cam_label,
        key="saliency_methods",
        help="Grad-CAM and Grad-CAM++ follow the gradient of the melanoma score; Eigen-CAM shows the dominant "
        "activation pattern without gradients; Layer-CAM keeps finer detail.",
    )
    opacity = c2.slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05, key="saliency_opacity")
    return chosen or [default_cam_method(methods)], opacity


def cam_panels(display: Image.Image, heat_of: Callable[[str], Any], methods: list[str], opacity: float, stem: str):
    """The original beside one overlay per method, each with a PNG download; failures named below."""
    panels = [("Original", display, None)]
    failed = []
    for method in methods:
        try:
            with st.spinner(f"Computing {method}…"):
                heat = heat_of(method)
            panels.append((cam_label(method), overlay_image(display, heat, opacity), method))
        except Exception as exc:
            failed.append(f"{method}: {type(exc).__name__}: {literal(exc)}")
    per_row = min(4, len(panels))
    for start in range(0, len(panels), per_row):
        cols = st.columns(per_row)
        for col, (title, img, method) in zip(cols, panels[start : start + per_row], strict=False):
            with col:
                st.markdown(f"**{title}**")
                st.image(img, width="stretch")
                if method and cam_label(method, short=False) != title:
                    st.caption(cam_label(method, short=False)[len(title) :].strip(" ()").capitalize() + ".")
                if method:
                    st.download_button(
                        "Download PNG",
                        data=lambda img=img: png_bytes(img),  # encoded on the click, not on every run
                        file_name=f"{stem}_{method}.png".replace("/", "_").replace(" ", "_"),
                        mime="image/png",
                        key=f"download_{method}",
                        icon=":material/download:",
                    )
    for message in failed:
        st.error(f"Saliency map unavailable — {message}")


def open_stored(visit_param: str, lesion_param: str) -> StoredLesionImage:
    """The saved lesion image named in the URL (decoded once per selection), or a clear error page."""
    wanted = (visit_param, lesion_param)
    cached = st.session_state.get(STORED_CACHE)
    if cached and cached[0] == wanted:
        return cached[1]
    store = resources.get_user_store()  # role-checked; a clear page when the database cannot be opened
    try:
        stored = stored_lesion_image(store, visit_param, lesion_param)
    except StoredImageError as exc:
        st.error(literal(exc), icon=":material/broken_image:")
        st.page_link(page("history"), label="Go to Case history")
        st.stop()
        raise AssertionError("unreachable") from None  # st.stop() raises
    st.session_state[STORED_CACHE] = (wanted, stored)
    with contextlib.suppress(Exception):  # the audit trail must not block reading a record
        store.record_view(
            "image.view",
            stored.visit.patient_id,
            {"page": "saliency", "visit_id": stored.visit.id, "lesion_id": stored.lesion.lesion_id},
        )
    return stored


user = auth_ui.require("patient.read")
state = ui.review_state()
st.title("Saliency inspection")
st.caption(
    "Where in the image did the model look? Warm colours mark the regions that most raised this lesion's "
    "score. Saliency maps are approximate and differ between methods: they show what drove the model, not "
    "where a melanoma is."
)

predictor = resources.get_predictor()
methods = cam_methods()
if not methods:
    st.error(
        "The saliency module (model/cam.py) is not installed, so no overlays can be drawn.",
        icon=":material/error:",
    )
    st.stop()

visit_param = st.query_params.get("visit")
if visit_param is not None:  # a lesion image of a saved visit, linked from Case history
    stored = open_stored(visit_param, st.query_params.get("lesion", ""))
    lesion, scored_by = stored.lesion, stored.scored_by
    st.info(f"**Image from a saved visit (read-only).** {literal(stored.source_line())}", icon=":material/history:")
    st.page_link(
        page("history"),
        label="Back to case history",
        icon=":material/arrow_back:",
        query_params={"patient_id": str(stored.visit.patient_id)},
    )
    if scored_by is None:
        model_note = "This image was not scored at that visit."
    elif scored_by == predictor.model_id:
        model_note = f"The same model id (`{scored_by}`) scored this image at that visit."
    else:
        model_note = (
            f"At that visit this image was scored by model `{scored_by}`: these maps explain the current model's "
            "score, not the stored one."
        )
    st.warning(
        f"The saliency maps are computed now by the **current model `{predictor.model_id}`**, which may differ "
        f"from the model that scored this image at that visit. {model_note}",
        icon=":material/model_training:",
    )
    chosen, opacity = method_controls(methods)
    with st.container(border=True):
        pred = lesion.prediction
        score = (
            f" · P(melanoma) at that visit **{pct(pred.p_melanoma)}** (rank #{pred.rank}, model `{pred.model_id}`)"
            if pred
            else ""
        )
        number = lesion.lesion_number or lesion.lesion_id
        st.markdown(f"**Lesion #{number} {literal(lesion.label)}** · {stored.site}{score}")
        ui.disclaimer()
        cam_panels(
            stored.image,
            lambda method: resources.explain(predictor, stored.image, stored.site, stored.patient, method),
            chosen,
            opacity,
            f"visit{stored.visit.id}_{lesion.label or stored.key}",
        )
    st.stop()

table = state.scored_table()
if table.empty:
    if not user.can("patient.write"):
        st.info("Open a saved visit on **Case history** and follow a lesion's “Inspect saliency” link.")
        st.stop()
    st.info(
        "No lesions have been scored yet. Load and score a patient's lesions on **Patient review** first.",
        icon=":material/info:",
    )
    st.page_link(page("review"), label="Go to Patient review")
    st.stop()

keys = list(table["image_id"])
wanted = st.query_params.get("lesion")
default_index = next((i for i, sha in enumerate(keys) if wanted and sha.startswith(wanted)), 0)
labels = {  # selectbox options are plain text: no escaping needed
    row.image_id: f"#{int(row.rank)} · {row.label} · P(melanoma) {pct(row.p_melanoma)}" for row in table.itertuples()
}
sha = st.selectbox("Lesion", keys, index=default_index, format_func=labels.get, key="saliency_lesion")
st.query_params["lesion"] = sha[:16]
row = next(table[table["image_id"] == sha].itertuples())
op = operating_point(predictor.config)
band = score_band(float(row.p_melanoma), op.threshold, float(row.p_spread))

chosen, opacity = method_controls(methods)
image = state.images[sha]
with st.container(border=True):
    st.markdown(
        f"**#{int(row.rank)} {literal(image.label)}** · {image.site} · P(melanoma) **{pct(row.p_melanoma)}** "
        f"± {100 * float(row.p_spread):.1f} pts · :{band.colour}[{band.title}]"
    )
    ui.disclaimer()
    cam_panels(
        image.display_image(),
        lambda method: heatmap_for(state, predictor, sha, method),
        chosen,
        opacity,
        image.label or sha[:12],
    )
