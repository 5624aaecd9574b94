"""Melanoma triage dashboard — entry point: ``streamlit run dashboard/app.py``.

Four pages (st.navigation): Patient review, Saliency, Case history, Model. The sidebar (this file)
is shared by all pages: the reviewing clinician, the patient under review and whether their review
is unsaved, and the model in use.

The page scripts live in ``dashboard/views/``, deliberately not ``pages/``: a ``pages/`` folder beside the
entry point switches Streamlit into its legacy multipage mode (each page auto-listed, the entry point
skipped on reruns under AppTest), which fights ``st.navigation``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts dashboard/ on sys.path, not the repository root that holds the packages.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import streamlit as st  # noqa: E402

from dashboard import components, resources  # noqa: E402

st.set_page_config(
    page_title="Melanoma triage",
    page_icon=":material/dermatology:",
    layout="wide",
    initial_sidebar_state="expanded",
)

PAGES = [
    st.Page("views/review.py", title="Patient review", icon=":material/patient_list:", default=True),
    st.Page("views/saliency.py", title="Saliency", icon=":material/visibility:", url_path="saliency"),
    st.Page("views/history.py", title="Case history", icon=":material/history:", url_path="history"),
    st.Page("views/model_card.py", title="Model", icon=":material/model_training:", url_path="model"),
]

page = st.navigation(PAGES, position="sidebar")
components.inject_css()

predictor, problem = resources.try_get_predictor()
model_line = predictor.model_id if predictor is not None else problem
components.sidebar_status(model_line)

page.run()
