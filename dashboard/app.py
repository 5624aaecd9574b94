"""Melanoma triage dashboard — entry point: ``streamlit run dashboard/app.py``.

Pages (st.navigation), by role (dashboard/auth.py): Patient review (clinician, admin), Saliency and Case
history (everyone signed in), Model, Audit log and Users (admin). Without a valid session only the sign-in
page exists. The sidebar (this file) is shared by all pages: the signed-in user, the patient under review
and whether their review is unsaved, and the model in use.

The page scripts live in ``dashboard/views/``, deliberately not ``pages/``: a ``pages/`` folder beside the
entry point switches Streamlit into its legacy multipage mode (each page auto-listed, the entry point
skipped on reruns under AppTest), which fights ``st.navigation``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts dashboard/ on sys.path, not the repository root that holds the packages: found from
# this file, since data/settings.py (REPO_ROOT) cannot be imported before it is on the path.
_PACKAGES_ROOT = str(Path(__file__).resolve().parents[1])
if _PACKAGES_ROOT not in sys.path:
    sys.path.insert(0, _PACKAGES_ROOT)

import streamlit as st  # noqa: E402

from dashboard import auth_ui, components, navigation, resources  # noqa: E402
from data.settings import REPO_ROOT  # noqa: E402

# A local file: no icon is fetched from a font or emoji CDN (the dashboard must work offline).
ICON = REPO_ROOT / "dashboard" / "assets" / "icon.png"

st.set_page_config(
    page_title="Melanoma triage",
    page_icon=str(ICON),
    layout="wide",
    initial_sidebar_state="expanded",
)
components.hardening()

# Who is this? Without a valid session every URL (deep links too) shows only the sign-in page.
accounts = resources.get_accounts()  # stops with a clear page when the database cannot be opened
user = auth_ui.current_user(accounts)
if user is None:
    login = [st.Page(auth_ui.login_page, title="Sign in", icon=":material/login:", default=True)]
    # The app's other addresses also show the sign-in page, and keep their query string for after it.
    login += [
        st.Page(auth_ui.login_page, title="Sign in", url_path=path)
        for path in (spec.url_path for spec in navigation.PAGES.values() if spec.url_path)
    ]
    st.navigation(login, position="hidden").run()
    resources.page_drawn()  # the model preload (serve.py) may start now
    st.stop()

review, history = navigation.page("review"), navigation.page("history")
PAGES = []
if user.can("patient.write"):
    PAGES.append(review)
if user.can("patient.read"):
    saliency = navigation.page("saliency")
    # A viewer starts on Case history; a clinician on Patient review, with Saliency next to it.
    PAGES += [saliency, history] if user.can("patient.write") else [history, saliency]
    PAGES.append(navigation.page("worklist"))
PAGES.append(navigation.page("model"))
if user.can("audit.read"):
    PAGES.append(navigation.page("audit"))
if user.can("users.manage"):
    PAGES.append(navigation.page("users"))
# The first page this role may use opens at "/".

page = st.navigation(PAGES, position="sidebar")
components.inject_css()

if resources.model_loading():  # warming at server start: say so, and wait only on a page that needs it
    model_line = "loading…"
else:
    predictor, problem = resources.try_get_predictor()
    model_line = predictor.model_id if predictor is not None else problem
on_review_page = page.title == review.title
components.page_run_started(on_review_page)  # once per full run, before any page draws: see components.bind
components.sidebar_status(model_line, user, accounts, on_review_page=on_review_page)
components.idle_watch()

page.run()
resources.page_drawn()
