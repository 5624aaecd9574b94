"""Long-lived resources (the model, the case store) with clear pages when they are unavailable.

Both are cached per process with ``st.cache_resource`` keyed by where they come from, so a change of
``TRIAGE_CHECKPOINT`` / ``DATABASE_URL`` / ``TRIAGE_DATA_DIR`` gets a fresh one. A failure is not
cached: the next rerun tries again (e.g. after the database comes back).

The model is warmed at server start (``preload_model``, called by serve.py) in a background thread, so
the sign-in page opens at once and the model is ready by the time a review starts; a page that needs
it sooner waits for that same load under the "Loading the model…" spinner.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import streamlit as st

from dashboard.session import signed_in
from dashboard.store import config as store_config
from dashboard.store.db_url import error_line, redacted
from data import settings

logger = logging.getLogger(__name__)


def checkpoint_folder() -> Path:
    """``$TRIAGE_CHECKPOINT`` if set, else the committed default model."""
    return settings.environment().checkpoint or settings.DEFAULT_CHECKPOINT


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


def checkpoint_validation() -> dict[str, Any] | None:
    """The checkpoint's validation.json (None when it has none), read once per version of the file rather than
    on every rerun of a page that words its figures; shared, so callers must not change it."""
    path = checkpoint_folder() / "validation.json"
    try:
        version = path.stat().st_mtime_ns
    except OSError:
        return None
    return _read_validation(str(path.parent), version)


@st.cache_resource(show_spinner=False, max_entries=2)
def _read_validation(folder: str, version: int) -> dict[str, Any] | None:
    # `version` (the file's mtime) is part of the cache key: a replaced file is read again.
    from dashboard.model_card_data import checkpoint_file_json

    return checkpoint_file_json(Path(folder), "validation.json")


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
    except Exception as exc:  # broad on purpose, as in get_predictor: torch/safetensors/timm raise many kinds
        logger.exception("model checkpoint could not be loaded")
        return None, f"the model could not be loaded ({exc})"


# ---------------------------------------------------------------- warming the model at server start

# The preload waits this long for the first page to be drawn (page_drawn): loading torch in parallel
# would hold the interpreter lock the sign-in page needs; after it, the model loads even with no visitor.
FIRST_PAGE_WAIT_S = 15.0
_first_page_drawn = threading.Event()
_preload_lock = threading.Lock()
_preload: threading.Thread | None = None


def _warm_predictor() -> Any:
    return _load_predictor(str(checkpoint_folder().resolve()))


def _warm_fast_cpu(predictor: Any) -> None:
    from model.fast_cpu import inference_predictor

    inference_predictor(predictor)  # the folded CPU twin the first triage would otherwise build


def _warm_cam(predictor: Any) -> None:
    from model.cam import target_layer_name

    target_layer_name(predictor)  # the Grad-CAM copy of the network the first overlay would otherwise build


# What a first review would otherwise wait for, in order; each is cached per predictor where it is defined.
WARM_STEPS: tuple[Callable[[Any], None], ...] = (_warm_fast_cpu, _warm_cam)


def page_drawn() -> None:
    """Called by app.py once a page is on screen: a preload waiting for the first visitor may start."""
    _first_page_drawn.set()


def check_settings() -> None:
    """Stop the server at start when a dashboard setting is unusable (a lockout or idle setting that cannot be
    read or is out of range), with the message naming the variable: otherwise the server runs and every page
    fails on it."""
    try:
        settings.dashboard_settings()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}; the dashboard was not started") from None


def preload_model(wait_for_page_s: float = FIRST_PAGE_WAIT_S) -> threading.Thread:
    """Check the settings (``check_settings``: exits when one is unusable), then load the model in a background
    thread, once per process; returns that thread (the same on every call). serve.py calls it at server start.

    Nothing here stops a page: without a model, or when it fails to load, the thread logs and ends, and the
    pages that need the model show their usual clear error when they try again.
    """
    global _preload
    check_settings()
    with _preload_lock:
        if _preload is None:
            _preload = threading.Thread(target=_run_preload, args=(wait_for_page_s,), name="model-preload", daemon=True)
            _preload.start()
        return _preload


def _run_preload(wait_for_page_s: float) -> None:
    _first_page_drawn.wait(wait_for_page_s)
    try:
        if model_problem():
            return
        predictor = _warm_predictor()
        for step in WARM_STEPS:
            step(predictor)
    except Exception:  # the review page loads it again and shows the error to whoever needs the model
        logger.exception("preloading the model failed")


def model_loading() -> bool:
    """Whether the preload is still running (the sidebar then says so instead of waiting for it)."""
    return _preload is not None and _preload.is_alive()


def explain(predictor: Any, image: Any, site: str, patient: Any, method: str) -> Any:
    """Heatmap (H, W) of the melanoma score; model/cam.py serialises and caches explanations itself."""
    from model.cam import explain as cam_explain

    return cam_explain(predictor, image, site, patient, method)


# ---------------------------------------------------------------- the case store


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
    except Exception as exc:  # broad on purpose: opening connects (driver errors), migrates (Alembic's own
        # errors) and creates folders; the page must show which, never a stack trace
        logger.exception("case store could not be opened")
        _stop_if_newer_database(exc, url)
        read_only = any(word in str(exc).lower() for word in ("readonly", "read-only", "read only"))
        _stop_with(
            "The case database is unavailable",
            (
                f"The case database at `{redacted(url)}` (images in `{data_dir}`) could not be opened: "
                f"{type(exc).__name__}: {error_line(exc, url)}"
                if _may_see_server_details()
                else "The case database could not be opened. The server's log names the cause (an administrator "
                "who signs in sees it here too)."
            ),
            (
                "The database (or its folder) is **read-only**, e.g. a read-only mount or a backup copy. The "
                "dashboard records every view and save, so it needs write access; to inspect a read-only copy use "
                "`python -m dashboard.store.integrity`, which opens it read-only."
            )
            if read_only
            else "Reviews cannot be saved or looked up until it is back. Check `DATABASE_URL` / `TRIAGE_DATA_DIR` "
            "or ask an administrator. Unsaved work in this browser tab is kept; try again in a moment.",
        )


def _may_see_server_details() -> bool:
    """Database addresses, user names and folders are shown to a signed-in administrator only: the error page
    comes before sign-in, and anyone who can reach the server would read them."""
    user = signed_in()
    return user is not None and user.can("users.manage")


def _stop_if_newer_database(exc: Exception, url: str) -> None:
    """A database a newer release upgraded will not open however often the page is reloaded: say so."""
    from dashboard.store.migrate import NewerDatabase

    if isinstance(exc, NewerDatabase):
        where = f" at `{redacted(url)}`" if _may_see_server_details() else ""
        _stop_with(
            "The case database is from a newer version",
            f"The case database{where} cannot be used: {exc}.",
            "Nothing was changed in it. An administrator must start the dashboard version that upgraded it, or "
            "restore the database backup taken before that update (then run this version).",
        )


def try_get_store() -> tuple[Any | None, str | None]:
    url, data_dir = store_location()
    try:
        return _open_store(url, data_dir), None
    except Exception as exc:  # broad on purpose, as in get_store
        logger.exception("case store could not be opened")
        if _may_see_server_details():
            return None, f"the case database at {redacted(url)} could not be opened ({error_line(exc, url)})"
        return None, "the case database could not be opened (the server's log names the cause)"


# ---------------------------------------------------------------- accounts and the signed-in user's store


def get_accounts() -> Any:
    """The local accounts (in the case store), or the case-store error page."""
    from dashboard.accounts import Accounts

    return Accounts(get_store())


def get_user_store() -> Any:
    """The case store as the signed-in user may use it (role-checked, attributed), or a clear stop."""
    from dashboard.user_store import UserStore

    user = signed_in()
    if user is None:
        st.error("Sign in first.", icon=":material/lock:")
        st.stop()
    return UserStore(get_store(), user)


def try_get_user_store() -> tuple[Any | None, str | None]:
    from dashboard.user_store import UserStore

    store, problem = try_get_store()
    user = signed_in()
    if store is None or user is None:
        return None, problem or "not signed in"
    return UserStore(store, user), None
