"""The dashboard in a real browser for the tests (test_browser_*.py): the accounts the `server` fixture makes
(tests/dashboard/conftest.py), signing in, screenshots into test-artifacts/. The server and Chromium
themselves are bench/browser_server.py's, shared with the dashboard benchmark."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.browser_server import (
    CHROMIUM,
    CHROMIUM_ARGS,
    add_user,
    free_port,
    streamlit_command,
    wait_healthy,
    wait_idle,
)
from data.settings import REPO_ROOT

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "wait_idle"]  # the tests' one import of the browser harness

ARTIFACTS = REPO_ROOT / "test-artifacts"
HEALTH_TIMEOUT_S = 20.0
CLINICIAN = "dr.e2e"
VIEWER = "viewer.e2e"
ADMIN = "admin.e2e"
PASSWORD = "correct horse battery staple"


def add_account(env: dict[str, str], username: str, role: str, name: str = "") -> None:
    add_user(env, username, role, PASSWORD, name)


@contextmanager
def running_server(tmp_path: Path, environ: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """`streamlit run` as `make run` starts it: the committed default model, an empty local database, three
    accounts (a clinician whose display name is a Markdown/HTML payload, a viewer, an admin). Yields the
    base URL and the server's log file."""
    port = free_port()
    env = {
        **{k: v for k, v in environ.items() if k != "TRIAGE_CHECKPOINT"},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}",
        "TRIAGE_DATA_DIR": str(tmp_path / "images"),
        "PYTHONUNBUFFERED": "1",
    }
    with open(tmp_path / "streamlit.log", "w") as log:
        proc = subprocess.Popen(streamlit_command(port), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            add_account(
                env,
                CLINICIAN,
                "clinician",
                "Dr E2E ![me](http://h.invalid/avatar.png) <img src=http://h.invalid/a.png>",
            )
            add_account(env, VIEWER, "viewer")
            add_account(env, ADMIN, "admin")
            elapsed = wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, HEALTH_TIMEOUT_S)
            assert elapsed < HEALTH_TIMEOUT_S
            # Framing protection and a Content-Security-Policy on the page itself (dashboard/serve.py).
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                assert response.headers["X-Frame-Options"] == "DENY"
                csp = response.headers["Content-Security-Policy"]
                assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
                assert response.headers["Cache-Control"] == "no-store"
            yield f"http://127.0.0.1:{port}", tmp_path / "streamlit.log"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def shot(page, name: str) -> None:
    """Whole-page screenshot: Streamlit scrolls inside its main block, so grow the viewport to fit it."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...['stMain', 'stMainBlockContainer', 'stSidebarContent']"
        ".map(id => document.querySelector(`[data-testid=${id}]`)?.scrollHeight || 0))"
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height) + 80, 9000))})
    page.wait_for_timeout(400)
    page.screenshot(path=str(ARTIFACTS / f"e2e_{name}.png"))
    page.set_viewport_size(size)


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in as").first).to_be_visible()
    wait_idle(page)
