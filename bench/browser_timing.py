"""Timing a step of the dashboard in a real browser (bench/dashboard_speed.py): from the user's action to the end
of the last Streamlit script run it caused, on the browser's clock, with the script's running time, Playwright's
wall clock and the CPU time the server and the browser used meanwhile.

    page.add_init_script(WATCH_PAGE)   # before the first page load: records actions and script-run states
    SERVER["pid"] = proc.pid           # the streamlit process, for its CPU time (Linux /proc)
    step = timed(page, button.click, page.get_by_text("done"))
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench.browser_server import wait_idle

TIMEOUT_MS = 180_000


def idle(page) -> None:
    wait_idle(page, TIMEOUT_MS, settle_ms=0)


# In the page: when the user acted (click, file chosen, Enter) and when Streamlit's script-run state changed.
# A step is timed in the browser from the action to the end of the last script run it caused, so the time
# Playwright spends before the click (scrolling, waiting for a busy page to settle) is not counted; the
# script's own running time is kept too, to split server work from the rest (messages, drawing the page).
WATCH_PAGE = """
(() => {
  window.__runs = [];
  window.__acts = [];
  const act = () => window.__acts.push(performance.now());
  document.addEventListener('click', act, true);
  document.addEventListener('change', e => { if (e.target.type === 'file') act(); }, true);
  document.addEventListener('keydown', e => { if (e.key === 'Enter') act(); }, true);
  const watch = () => {
    const app = document.querySelector('[data-testid=stApp]');
    if (!app) { setTimeout(watch, 20); return; }
    new MutationObserver(() => window.__runs.push([app.getAttribute('data-test-script-state'), performance.now()]))
      .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  };
  watch();
})();
"""
VERBOSE = bool(os.environ.get("BENCH_VERBOSE"))  # print each step's state changes


@dataclass
class Step:
    seconds: float  # from the user's action to the end of the last script run it caused (browser clock)
    script_s: float  # of which the script was running
    wall_s: float  # Playwright's wall clock, from before the click (includes waiting for the page to settle)
    cpu_s: float = float("nan")  # CPU time the server process used meanwhile: what a busy machine inflates less
    browser_cpu_s: float = float("nan")  # CPU time of the browser's processes meanwhile (rendering the page)


SERVER: dict[str, int] = {}  # "pid" of the streamlit process, for its CPU time


def _stat(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_of(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_s() -> float:
    """User + system CPU seconds of the server process so far (Linux /proc), NaN when unknown."""
    try:
        return _cpu_of(_stat(SERVER["pid"]))
    except (KeyError, OSError, IndexError, ValueError):
        return float("nan")


def _browser_cpu_s() -> float:
    """CPU seconds so far of this benchmark's other descendants: Playwright's driver and Chromium's processes."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(entry.name)
                parents[int(entry.name)], cpu[int(entry.name)] = int(fields[1]), _cpu_of(fields)
            except (OSError, IndexError, ValueError):
                continue
    mine, grown = {os.getpid()}, True
    while grown:
        more = {pid for pid, parent in parents.items() if parent in mine} - mine
        grown, mine = bool(more), mine | more
    return sum(cpu[pid] for pid in mine - {os.getpid(), SERVER.get("pid")})


def _browser_times(page, since_ms: float, wall_s: float) -> Step:
    runs, acts = page.evaluate("() => [window.__runs || [], window.__acts || []]")
    runs = [(state, at) for state, at in runs if at >= since_ms]
    acted = next((at for at in acts if at >= since_ms), since_ms)
    if VERBOSE:
        print("   after the action (s):", [(state, round((at - acted) / 1000, 2)) for state, at in runs])
    script, started = 0.0, None
    for state, at in runs:
        if state == "running" and started is None:
            started = at
        elif state != "running" and started is not None:
            script, started = script + (at - started), None
    ended = max((at for state, at in runs if state == "notRunning"), default=acted + 1000 * wall_s)
    return Step((ended - acted) / 1000, script / 1000, wall_s)


def timed(page, action, *ready) -> Step:
    """Time ``action()`` until every locator in ``ready`` is visible and the script run has ended."""
    from playwright.sync_api import expect

    since = page.evaluate("() => performance.now()")
    cpu, browser_cpu = server_cpu_s(), _browser_cpu_s()
    start = time.perf_counter()
    action()
    for locator in ready:
        expect(locator).to_be_visible(timeout=TIMEOUT_MS)
    idle(page)
    wall = time.perf_counter() - start
    page.wait_for_timeout(50)  # let the observer record the last change
    step = _browser_times(page, since, wall)
    step.cpu_s = server_cpu_s() - cpu
    step.browser_cpu_s = _browser_cpu_s() - browser_cpu
    return step
