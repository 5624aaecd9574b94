"""The dashboard's pages, defined once: the navigation (app.py) and every page link build them from here.

A page is named by its key ("history"), never by a script path typed again in another file.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class PageSpec:
    script: str  # relative to dashboard/app.py, the entry point
    title: str
    icon: str
    url_path: str | None = None  # None: the entry page's default path


PAGES: dict[str, PageSpec] = {
    "review": PageSpec("views/review.py", "Patient review", ":material/patient_list:"),
    "saliency": PageSpec("views/saliency.py", "Saliency", ":material/visibility:", "saliency"),
    "history": PageSpec("views/history.py", "Case history", ":material/history:", "history"),
    "worklist": PageSpec("views/worklist.py", "Worklist", ":material/event_upcoming:", "worklist"),
    "model": PageSpec("views/model_card.py", "Model", ":material/model_training:", "model"),
    "audit": PageSpec("views/audit.py", "Audit log", ":material/policy:", "audit"),
    "users": PageSpec("views/users.py", "Users", ":material/group:", "users"),
}


def page(key: str) -> st.Page:
    spec = PAGES[key]
    kwargs = {"url_path": spec.url_path} if spec.url_path else {}
    return st.Page(spec.script, title=spec.title, icon=spec.icon, **kwargs)
