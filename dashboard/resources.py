"""Long-lived resources (the model, the case store) with clear pages when they are unavailable.

Both are cached per process with ``st.cache_resource`` keyed by where they come from, so a change of
``TRIAGE_CHECKPOINT`` / ``DATABASE_URL`` / ``TRIAGE_DATA_DIR`` gets a fresh one. A failure is not
cached: the next rerun tries again (e.g. after the database comes back).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, NoReturn

import streamlit as st

from dashboard.store import config as store_config

logger = logging.getLogger(__name__)

CHECKPOINT_ENV = "TRIAGE_CHECKPOINT"


def checkpoint_folder() -> Path:
    """``$TRIAGE_CHECKPOINT`` if set, else the committed default model."""
    from model.checkpoint import DEFAULT_CHECKPOINT

    env = os.environ.get(CHECKPOINT_ENV, "").strip()
    return Path(env).expanduser() if env else DEFAULT_CHECKPOINT


def _stop_with(title: str, message: str, hint: str | None = None) -> NoReturn:
    st.title(title)
    st.error(message, icon=":material/error:")
    if hint:
        st.markdown(hint)
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises; this keeps type checkers honest


# ---------------------------------------------------------------- the model


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def _load_predictor(folder: str) -> Any:
    from model.predictor import Predictor

    return Predictor.from_checkpoint(folder)


def model_problem() -> str | None:
    """Why no model can be used, or None when a checkpoint folder is present."""
    folder = checkpoint_folder()
    if not (folder / "config.json").is_file():
        return f"no model installed (no checkpoint at {folder})"
    return None


def get_predictor() -> Any:
    """The predictor, or a clear error page (the page stops here)."""
    folder = checkpoint_folder()
    if not (folder / "config.json").is_file():
        _stop_with(
            "No model installed",
            f"No model checkpoint was found at `{folder}`, so lesions cannot be scored.",
            "An administrator must install a checkpoint folder (`config.json` + `model.safetensors`) at "
            "`model/weights/default/`, or start the dashboard with `TRIAGE_CHECKPOINT=/path/to/checkpoint`. "
            "The **Model** and **Case history** pages still work.",
        )
    try:
        return _load_predictor(str(folder.resolve()))
    except Exception as exc:  # a broken checkpoint must never show a stack trace to the clinician
        logger.exception("model checkpoint at %s could not be loaded", folder)
        _stop_with(
            "The model could not be loaded",
            f"The checkpoint at `{folder}` is not usable: {exc}",
            "Ask an administrator to reinstall the model. Nothing was scored.",
        )


def try_get_predictor() -> tuple[Any | None, str | None]:
    """(predictor, None) or (None, reason) — for pages that work without a model."""
    problem = model_problem()
    if problem:
        return None, problem
    try:
        return _load_predictor(str(checkpoint_folder().resolve())), None
    except Exception as exc:
        logger.exception("model checkpoint could not be loaded")
        return None, f"the model could not be loaded ({exc})"


def explain(predictor: Any, image: Any, site: str, patient: Any, method: str) -> Any:
    """Heatmap (H, W) of the melanoma score; model/cam.py serialises and caches explanations itself."""
    from model.cam import explain as cam_explain

    return cam_explain(predictor, image, site, patient, method)


# ---------------------------------------------------------------- the case store


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable database URL)"


@st.cache_resource(show_spinner="Opening the case database…", max_entries=4)
def _open_store(url: str, data_dir: str) -> Any:
    from dashboard.store.api import CaseStore

    return CaseStore.from_url(url, data_dir)


def store_location() -> tuple[str, str]:
    return store_config.database_url(None), str(store_config.data_dir(None))


def get_store() -> Any:
    """The case store, or a clear error page (the page stops here)."""
    url, data_dir = store_location()
    try:
        return _open_store(url, data_dir)
    except Exception as exc:
        logger.exception("case store could not be opened")
        read_only = any(word in str(exc).lower() for word in ("readonly", "read-only", "read only"))
        _stop_with(
            "The case database is unavailable",
            f"The case database at `{_safe_url(url)}` (images in `{data_dir}`) could not be opened: "
            f"{type(exc).__name__}: {_first_line(exc)}",
            (
                "The database (or its folder) is **read-only**, e.g. a read-only mount or a backup copy. The "
                "dashboard records every view and save, so it needs write access; to inspect a read-only copy use "
                "`python -m dashboard.store.integrity`, which opens it read-only."
            )
            if read_only
            else "Reviews cannot be saved or looked up until it is back. Check `DATABASE_URL` / `TRIAGE_DATA_DIR` "
            "or ask an administrator. Unsaved work in this browser tab is kept; try again in a moment.",
        )


def try_get_store() -> tuple[Any | None, str | None]:
    url, data_dir = store_location()
    try:
        return _open_store(url, data_dir), None
    except Exception as exc:
        logger.exception("case store could not be opened")
        return None, f"the case database at {_safe_url(url)} could not be opened ({_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# ---------------------------------------------------------------- accounts and the signed-in user's store


def get_accounts() -> Any:
    """The local accounts (in the case store), or the case-store error page."""
    from dashboard.auth import Accounts

    return Accounts(get_store())


def get_user_store() -> Any:
    """The case store as the signed-in user may use it (role-checked, attributed), or a clear stop."""
    from dashboard.auth import UserStore
    from dashboard.auth_ui import signed_in

    user = signed_in()
    if user is None:
        st.error("Sign in first.", icon=":material/lock:")
        st.stop()
    return UserStore(get_store(), user)


def try_get_user_store() -> tuple[Any | None, str | None]:
    from dashboard.auth import UserStore
    from dashboard.auth_ui import signed_in

    store, problem = try_get_store()
    user = signed_in()
    if store is None or user is None:
        return None, problem or "not signed in"
    return UserStore(store, user), None
