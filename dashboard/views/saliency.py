"""Saliency inspection: one lesion, the original beside overlays from several CAM methods."""

from __future__ import annotations

import streamlit as st

from dashboard import components as ui
from dashboard import resources
from dashboard.lesion_views import cam_label, cam_methods, default_cam_method, heatmap_for, overlay_image
from dashboard.services import operating_point, pct, png_bytes, score_band

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

table = state.scored_table()
if table.empty:
    st.info(
        "No lesions have been scored yet. Load and score a patient's lesions on **Patient review** first.",
        icon=":material/info:",
    )
    st.page_link("views/review.py", label="Go to Patient review", icon=":material/patient_list:")
    st.stop()

keys = list(table["image_id"])
wanted = st.query_params.get("lesion")
default_index = next((i for i, sha in enumerate(keys) if wanted and sha.startswith(wanted)), 0)
labels = {
    row.image_id: f"#{int(row.rank)} · {row.label} · P(melanoma) {pct(row.p_melanoma)}" for row in table.itertuples()
}
sha = st.selectbox("Lesion", keys, index=default_index, format_func=labels.get, key="saliency_lesion")
st.query_params["lesion"] = sha[:16]
row = next(table[table["image_id"] == sha].itertuples())
op = operating_point(predictor.config)
band = score_band(float(row.p_melanoma), op.threshold, float(row.p_spread))

c1, c2 = st.columns([3, 1.2], vertical_alignment="bottom")
chosen = c1.multiselect(
    "Methods",
    methods,
    default=[m for m in ("gradcam", "gradcam++", "eigencam") if m in methods] or methods[:2],
    format_func=cam_label,
    key="saliency_methods",
    help="Grad-CAM and Grad-CAM++ follow the gradient of the melanoma score; Eigen-CAM shows the dominant "
    "activation pattern without gradients; Layer-CAM keeps finer detail.",
)
opacity = c2.slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05, key="saliency_opacity")

image = state.images[sha]
with st.container(border=True):
    st.markdown(
        f"**#{int(row.rank)} {image.label}** · {image.site} · P(melanoma) **{pct(row.p_melanoma)}** "
        f"± {100 * float(row.p_spread):.1f} pts · :{band.colour}[{band.title}]"
    )
    ui.disclaimer()
    display = image.display_image()
    panels = [("Original", display, None)]
    failed = []
    for method in chosen or [default_cam_method(methods)]:
        try:
            with st.spinner(f"Computing {method}…"):
                heat = heatmap_for(state, predictor, sha, method)
            panels.append((cam_label(method), overlay_image(display, heat, opacity), method))
        except Exception as exc:
            failed.append(f"{method}: {type(exc).__name__}: {exc}")
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
                        data=png_bytes(img),
                        file_name=f"{image.label or sha[:12]}_{method}.png".replace("/", "_").replace(" ", "_"),
                        mime="image/png",
                        key=f"download_{method}",
                        icon=":material/download:",
                    )
    for message in failed:
        st.error(f"Saliency map unavailable — {message}")
