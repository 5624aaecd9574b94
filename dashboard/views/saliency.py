"""Saliency inspection: one lesion, the original beside overlays from several CAM methods.

The lesion comes from the review in progress (``?lesion=<key>``, linked from its lesion cards), or from a
saved visit (``?visit=<id>&lesion=<key>``, linked from the read-only cards on Case history): that image is
read from the case store and explained by the model loaded now.
"""

from __future__ import annotations

import streamlit as st

from dashboard import auth_ui, resources
from dashboard import components as ui
from dashboard.history_data import StoredImageError, StoredLesionImage, stored_lesion_image
from dashboard.lesion_views import cam_methods, heatmap_for, remember_gallery_card, remember_saved_card
from dashboard.navigation import page
from dashboard.operating_point import operating_point
from dashboard.saliency_panels import back_to_review, cam_panels, method_controls
from dashboard.textsafe import literal
from dashboard.wording import pct, rank_label, score_band, score_interval

STORED_CACHE = "saliency_stored"  # session_state: ((visit, lesion) query, StoredLesionImage) last opened


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
    ui.record_read_or_stop(
        store,
        "image.view",
        stored.visit.patient_id,
        {"page": "saliency", "visit_id": stored.visit.id, "lesion_id": stored.lesion.lesion_id},
        "saved image view",
    )
    st.session_state[STORED_CACHE] = (wanted, stored)  # kept once its view is audited
    return stored


user = auth_ui.require("patient.read")
state = ui.review_state()
st.title("Saliency inspection")
st.caption(
    "Where in the image did the model look? Colour marks the regions that most raised this lesion's score; "
    "where the map is low the image is shown as it is. Saliency maps are approximate and differ between "
    "methods: they show what drove the model, not where a melanoma is."
)

predictor = resources.get_predictor()
methods = cam_methods()
if not methods:
    st.error(
        "No saliency method is registered (model/cam_methods.py), so no overlays can be drawn.",
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
        query_params={"patient_id": str(stored.visit.patient_id), "visit": str(stored.visit.id)},
    )
    remember_saved_card(lesion.image.id)  # back on Case history: this visit, scrolled to this lesion's card
    now = f"The saliency maps are computed now by the **current model `{predictor.model_id}`**"
    if scored_by == predictor.model_id:  # said once, without a "may differ" before it
        st.info(
            f"{now}, the model id (`{scored_by}`) that scored this image at that visit.",
            icon=":material/model_training:",
        )
    else:
        model_note = (
            "This image was not scored at that visit."
            if scored_by is None
            else f"At that visit it was scored by model `{scored_by}`: these maps explain the current model's "
            "score, not the stored one."
        )
        st.warning(f"{now}. {model_note}", icon=":material/model_training:")
    chosen, opacity, style = method_controls(methods)
    with st.container(border=True):
        pred = lesion.prediction
        score = (
            f" · P(melanoma) at that visit **{pct(pred.p_melanoma)}** "
            f"({score_interval(pred.p_melanoma, pred.p_spread)}; {rank_label(pred.rank).lower()} at that visit, "
            f"model `{pred.model_id}`)"
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
            f"visit{stored.visit.id}_lesion{number}",  # ids only: a label is free text, a file name travels
            style,
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

back_to_review()
keys = list(table["image_id"])
wanted = st.query_params.get("lesion")
default_index = next((i for i, sha in enumerate(keys) if wanted and sha.startswith(wanted)), 0)
labels = {  # selectbox options are plain text: no escaping needed
    row.image_id: f"{rank_label(row.rank)} · {row.label} · P(melanoma) {pct(row.p_melanoma)}"
    for row in table.itertuples()
}
sha = st.selectbox("Lesion", keys, index=default_index, format_func=labels.get, key="saliency_lesion")
st.query_params["lesion"] = sha[:16]
row = next(table[table["image_id"] == sha].itertuples())
op = operating_point(predictor.config)
band = score_band(float(row.p_melanoma), op.threshold, float(row.p_spread))

chosen, opacity, style = method_controls(methods)
image = state.images[sha]
remember_gallery_card(image.key)  # "Back to the review" then opens the gallery at this lesion's card
with st.container(border=True):
    st.markdown(
        f"**{rank_label(row.rank)} · {literal(image.label)}** · {image.site} · P(melanoma) **{pct(row.p_melanoma)}** "
        f"({score_interval(float(row.p_melanoma), float(row.p_spread))}) · :{band.colour}[{band.title}]"
    )
    st.caption(band.explanation)  # the threshold's value, and whether the interval reaches across it
    ui.disclaimer()
    cam_panels(
        image.display_image(),
        lambda method: heatmap_for(state, predictor, sha, method),
        chosen,
        opacity,
        f"rank{int(row.rank)}_{sha[:12]}",  # no label: free text, and a downloaded file name travels
        style,
    )
