"""The dashboard in a real browser, for the browser tests and bench/dashboard_speed.py: Debian's Chromium
(Playwright's own browser download is not used), `streamlit run dashboard/serve.py` as `make run` starts it,
accounts made with the users CLI as an administrator would, and waiting for Streamlit to finish a run."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from data.settings import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCRIPT_DONE = (
    "() => document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state') === 'notRunning'"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def streamlit_command(port: int) -> list[str]:
    """The server as `make run` starts it, on 127.0.0.1:``port``."""
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/serve.py", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    return [*command, "--browser.gatherUsageStats", "false"]


def add_user(
    env: dict[str, str], username: str, role: str, password: str, name: str = "", repo: Path = REPO_ROOT
) -> None:
    """An account made as an administrator makes one: the users CLI, the password on standard input."""
    done = subprocess.run(
        [sys.executable, "-m", "dashboard.users", "add", username, "--role", role, "--name", name, "--password-stdin"],
        cwd=repo,
        env=env,
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"could not create the account {username!r}: {done.stderr}")


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> float:
    """Seconds until ``url`` answers 200 (the server's health endpoint); an error if the server exits first."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not healthy within {timeout:.0f} s")


def wait_idle(page, timeout: float = 60_000, settle_ms: int = 300) -> None:
    """Wait until Streamlit has finished the script run a click or an upload started (``settle_ms`` first, so
    that the rerun request reaches the server)."""
    if settle_ms:
        page.wait_for_timeout(settle_ms)
    page.wait_for_function(SCRIPT_DONE, timeout=timeout)
