"""Server start: the sign-in page needs no model libraries, and the model is warmed once, in the background.

The loader and warm-up steps are replaced by recorders, so these tests check what runs and in which
order, not how long anything takes.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from dashboard import resources
from data.settings import REPO_ROOT


@pytest.fixture()
def fresh_preload(monkeypatch):
    """No preload started yet in this process, no page drawn; the model loader and steps record calls."""
    calls: list[str] = []
    monkeypatch.setattr(resources, "_preload", None)
    monkeypatch.setattr(resources, "_first_page_drawn", threading.Event())
    monkeypatch.setattr(resources, "model_problem", lambda: None)
    monkeypatch.setattr(resources, "_warm_predictor", lambda: calls.append("load") or "predictor")
    monkeypatch.setattr(
        resources,
        "WARM_STEPS",
        (lambda p: calls.append(f"fold {p}"), lambda p: calls.append(f"cam {p}")),
    )
    return calls


def test_the_preload_starts_one_thread_however_often_it_is_asked(fresh_preload):
    first = resources.preload_model(wait_for_page_s=0)
    again = resources.preload_model(wait_for_page_s=0)
    assert again is first and first.daemon
    first.join(timeout=60)
    assert not first.is_alive()
    assert fresh_preload == ["load", "fold predictor", "cam predictor"]  # loaded once, then warmed in order
    assert resources.preload_model() is first and fresh_preload == ["load", "fold predictor", "cam predictor"]
    assert not resources.model_loading()


def test_the_preload_waits_for_the_first_page_before_loading(fresh_preload):
    thread = resources.preload_model(wait_for_page_s=600)
    thread.join(timeout=0.2)
    assert thread.is_alive() and fresh_preload == []  # the sign-in page gets the interpreter first
    assert resources.model_loading()  # the sidebar says "loading…" instead of waiting
    resources.page_drawn()
    thread.join(timeout=60)
    assert fresh_preload[0] == "load" and not thread.is_alive()


def test_a_failing_preload_ends_quietly_and_leaves_the_error_to_the_page(fresh_preload, monkeypatch, caplog):
    def broken() -> None:
        raise OSError("checkpoint unreadable")

    monkeypatch.setattr(resources, "_warm_predictor", broken)
    thread = resources.preload_model(wait_for_page_s=0)
    thread.join(timeout=60)
    assert not thread.is_alive() and fresh_preload == []
    assert "preloading the model failed" in caplog.text


def test_no_model_installed_means_nothing_is_preloaded(fresh_preload, monkeypatch):
    monkeypatch.setattr(resources, "model_problem", lambda: "no model installed")
    resources.preload_model(wait_for_page_s=0).join(timeout=60)
    assert fresh_preload == []


def test_the_sign_in_page_imports_no_model_library():
    """What app.py imports before anyone has signed in: no torch, timm or sklearn (seconds on 2 cores)."""
    code = (
        "import sys; from dashboard import auth_ui, components, navigation, resources; "
        "print(sorted(m for m in ('torch', 'timm', 'sklearn', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize(
    ("name", "text"),
    [("TRIAGE_LOGIN_MAX_FAILURES", "0"), ("TRIAGE_LOGIN_LOCK_MINUTES", "soon"), ("TRIAGE_IDLE_TIMEOUT_MINUTES", "nan")],
)
def test_an_unusable_setting_stops_the_server_start_naming_the_variable(fresh_preload, monkeypatch, name, text):
    monkeypatch.setenv(name, text)
    with pytest.raises(SystemExit, match=f"error: {name} must be .*the dashboard was not started"):
        resources.preload_model(wait_for_page_s=0)
    assert resources._preload is None and fresh_preload == []  # nothing started


def test_serve_py_exits_non_zero_with_the_message_on_an_unusable_setting():
    """What `streamlit run dashboard/serve.py` (make run) executes first: the module itself, in a fresh process."""
    code = "import runpy; runpy.run_path('dashboard/serve.py')"
    env = {"PATH": "", "TRIAGE_LOGIN_MAX_FAILURES": "0", "TRIAGE_CHECKPOINT": "/nonexistent"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "error: TRIAGE_LOGIN_MAX_FAILURES must be a whole number from 1 to 100, not '0'" in done.stderr
