"""The Saliency page's panels: the original beside one overlay per CAM method, with the colour scale.

Streamlit parts only; the drawing is model/cam_overlay.py (registry OVERLAY_STYLES: colour in proportion to
the map, or contour lines; both leave low-attribution pixels as the original image). Two panels a row, so a
clinician sees the lesion's structures under the map.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st
from PIL import Image

from dashboard.lesion_views import SCALE_ALT, cam_label, colour_scale_png, default_cam_method
from dashboard.navigation import page
from dashboard.textsafe import literal
from dashboard.uploads import png_bytes
from model.cam_methods import COMPARE_BY_DEFAULT
from model.cam_overlay import OVERLAY_STYLE_LABELS, OVERLAY_STYLES

PANELS_PER_ROW = 2
SCALE_NOTE = (
    "Colour shows how much a region raised this lesion's score, from low (the image is left as it is) to high. "
    "Maps are approximate and differ between methods: they show what drove the model, not where a melanoma is."
)


def draw(style: str, image: Image.Image, heat: Any, opacity: float) -> Image.Image:
    if style == "contours":
        return OVERLAY_STYLES[style](image, heat)
    return OVERLAY_STYLES[style](image, heat, opacity=opacity)


def method_controls(methods: list[str]) -> tuple[list[str], float, str]:
    """Methods to compare (the registry's, its comparison set by default), overlay style and opacity."""
    c1, c2, c3 = st.columns([3, 1.6, 1.2], vertical_alignment="bottom")
    chosen = c1.multiselect(
        "Methods",
        methods,
        default=[m for m in COMPARE_BY_DEFAULT if m in methods] or methods[:2],
        format_func=cam_label,
        key="saliency_methods",
        help="Grad-CAM++, Grad-CAM and LayerCAM follow the gradient of the melanoma score (Grad-CAM++ covered the "
        "lesion best on average, bench/RESULTS.md); EigenCAM shows the dominant activation pattern without "
        "gradients.",
    )
    style = c2.radio(
        "Overlay",
        list(OVERLAY_STYLES),
        format_func=OVERLAY_STYLE_LABELS.get,
        key="saliency_style",
        horizontal=False,
    )
    opacity = c3.slider("Colour strength", 0.2, 1.0, 0.6, 0.05, key="saliency_opacity", disabled=style == "contours")
    return chosen or [default_cam_method(methods)], opacity, style


def cam_panels(
    display: Image.Image,
    heat_of: Callable[[str], Any],
    methods: list[str],
    opacity: float,
    stem: str,
    style: str = "blend",
) -> None:
    """The original beside one overlay per method (two a row), the colour scale above; failures named below."""
    st.image(colour_scale_png(1.0 if style == "contours" else opacity), caption=SCALE_NOTE, width=420, alt=SCALE_ALT)
    panels = [("Original", display, None)]
    failed = []
    for method in methods:
        try:
            with st.spinner(f"Computing {cam_label(method)}…"):
                heat = heat_of(method)
            panels.append((cam_label(method), draw(style, display, heat, opacity), method))
        except Exception as exc:
            failed.append(f"{method}: {type(exc).__name__}: {literal(exc)}")
    for start in range(0, len(panels), PANELS_PER_ROW):
        cols = st.columns(PANELS_PER_ROW)
        for col, (title, img, method) in zip(cols, panels[start : start + PANELS_PER_ROW], strict=False):
            with col:
                st.markdown(f"**{title}**")
                shows = "the lesion image as it is" if method is None else f"what raised its score ({style})"
                st.image(img, width="stretch", alt=f"{title}: {shows}")
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


def back_to_review() -> None:
    """A link back to the review in progress (its gallery), e.g. after inspecting one of its lesions."""
    st.page_link(page("review"), label="Back to the review in progress", icon=":material/arrow_back:")
