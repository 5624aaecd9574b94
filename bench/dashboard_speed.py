"""Dashboard speed in a real browser: `streamlit run dashboard/serve.py` driven by Debian's Chromium (Playwright).

    python -m bench.dashboard_speed [--patient IP_4292424] [--lesions 20] [--visits 2] [--switches 3]

The session (server start, sign-in, upload, save, page switches, the profile option) and the report are here;
how one step is timed in the browser is bench/browser_timing.py.

What is timed: from the user's action (the click, the files chosen, Enter; recorded in the page) until the
page shows what it should and the last script run it caused has ended (``data-test-script-state`` back to
``notRunning``), on the browser's clock. The script's own running time and Playwright's wall clock (which
also counts waiting for a busy page to settle before the click) are printed beside it.

* first page: server process started -> the sign-in form is usable (the browser is launched beforehand;
  wall clock);
* sign-in: "Sign in" clicked -> Patient review is shown. The model is needed here: it is preloaded from
  the first page on, so it is ready if the person types for longer than it takes to load
  (``--sign-in-after S`` waits S seconds on the sign-in page first; 0, the default, is the worst case);
* upload: N real lesion images of one complete ISIC 2020 patient set on the uploader -> "N image(s)" shown;
* score + gallery: "Score and rank" clicked -> the ranked gallery shows all N lesion cards;
* save: "Save visit" clicked -> "This review is now read-only." shown;
* page switches: sidebar links Patient review -> Case history -> Saliency -> Patient review (the review
  page then redraws the saved visit's N cards), and a Case-history search that opens the patient.

A temporary SQLite database and image folder, and a temporary admin account (made with the users CLI, as an
administrator would) are used; nothing is written to var/. Visits after the first repeat the flow for a new
patient in the same session; the median over visits (and over switch rounds) is printed, and the worst.
Figures are printed, never asserted by a test: other processes share this CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.browser_server import CHROMIUM, CHROMIUM_ARGS, add_user, free_port, streamlit_command
from bench.browser_timing import SERVER, TIMEOUT_MS, WATCH_PAGE, Step, idle, server_cpu_s, timed
from dashboard.wording import rank_label
from data.settings import REPO_ROOT, environment

USERNAME = "bench.admin"
PASSWORD = "benchmark password 1234"
GOALS_S = {"first page": 5.0, "save": 1.0, "page switch": 1.5, "score + gallery": 5.0}


def patient_images(shared: Path, patient_id: str | None, count: int) -> tuple[str, list[Path]]:
    """``count`` images of one complete ISIC 2020 patient (the first with enough when none is named)."""
    root = shared / "datasets" / "isic2020_patients"
    table = pd.read_csv(root / "train.csv")
    if patient_id is None:
        sizes = table.groupby("patient_id").size()
        patient_id = str(sizes[sizes >= count].sort_values(kind="stable").index[0])
    names = table.loc[table["patient_id"] == patient_id, "image_name"].tolist()[:count]
    if len(names) < count:
        raise SystemExit(f"patient {patient_id} has {len(names)} images, fewer than {count}")
    return patient_id, [root / "train" / f"{name}.jpg" for name in names]


def _add_admin(env: dict[str, str], repo: Path) -> None:
    try:
        add_user(env, USERNAME, "admin", PASSWORD, repo=repo)
    except RuntimeError as exc:
        raise SystemExit(f"could not create the benchmark account: {exc}") from None


def _goto_until_up(page, url: str, proc: subprocess.Popen, deadline_s: float) -> None:
    start = time.perf_counter()
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"streamlit exited with code {proc.returncode}")
        try:
            page.goto(url, timeout=5_000)
            return
        except Exception:
            if time.perf_counter() - start > deadline_s:
                raise
            time.sleep(0.05)


def run(args: argparse.Namespace) -> dict[str, list[Step]]:
    from playwright.sync_api import sync_playwright

    shared = environment().shared_dir
    patient_id, images = patient_images(shared, args.patient, args.lesions)
    print(f"patient {patient_id}: {len(images)} images from {images[0].parent}", flush=True)
    times: dict[str, list[Step]] = {}
    with tempfile.TemporaryDirectory(prefix="dashboard-speed-") as tmp:
        env = {
            **{k: v for k, v in os.environ.items() if k != "TRIAGE_CHECKPOINT"},
            "DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.db'}",
            "TRIAGE_DATA_DIR": str(Path(tmp) / "images"),
            "TRIAGE_IDLE_TIMEOUT_MINUTES": "120",
            "PYTHONUNBUFFERED": "1",
        }
        _add_admin(env, args.repo)  # the database exists (migrated) before the server starts, as after an installation
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = Path(tmp) / "streamlit.log"
        with sync_playwright() as pw, open(log_path, "w") as log:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            page.add_init_script(WATCH_PAGE)
            page.set_default_timeout(TIMEOUT_MS)
            command = streamlit_command(port)
            if args.py_spy:  # sample every thread of the server (py-spy is a separate tool, not a dependency)
                spy = [args.py_spy, "record", "--format", "raw", "--threads", "-r", "50", "-o", args.profile_out]
                command = [*spy, "--", *command]
            start = time.perf_counter()
            proc = subprocess.Popen(command, cwd=args.repo, env=env, stdout=log, stderr=subprocess.STDOUT)
            if not args.py_spy:
                SERVER["pid"] = proc.pid
            try:
                _goto_until_up(page, base, proc, 120)
                page.get_by_label("Username", exact=True).wait_for(state="visible", timeout=TIMEOUT_MS)
                idle(page)
                first = time.perf_counter() - start
                _add(times, "first page", Step(first, float("nan"), first, server_cpu_s()))
                _flow(page, images, args, times)
            except BaseException:
                shot = REPO_ROOT / "test-artifacts" / "bench_dashboard_failure.png"
                shot.parent.mkdir(exist_ok=True)
                page.screenshot(path=str(shot))
                print(f"failed; screenshot {shot}; server log tail:\n{log_path.read_text()[-3000:]}", file=sys.stderr)
                raise
            finally:
                browser.close()
                proc.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT; streamlit stops too
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if "Traceback" in log_path.read_text():
            print(f"server log has a traceback:\n{log_path.read_text()[-3000:]}", file=sys.stderr)
    return times


def _add(times: dict[str, list[Step]], name: str, step: Step) -> None:
    times.setdefault(name, []).append(step)
    print(
        f"{name} {step.seconds:.2f} s (script {step.script_s:.2f} s; wall {step.wall_s:.2f} s; "
        f"server CPU {step.cpu_s:.2f} s; browser CPU {step.browser_cpu_s:.2f} s)",
        flush=True,
    )


def _flow(page, images: list[Path], args: argparse.Namespace, times: dict[str, list[Step]]) -> None:
    n = len(images)
    page.wait_for_timeout(1000 * args.sign_in_after)  # a person reading the page and typing
    page.get_by_label("Username", exact=True).fill(USERNAME)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    review_heading = page.get_by_role("heading", name="Patient review", exact=True)
    sign_in = page.get_by_role("button", name="Sign in").click
    _add(times, "sign-in -> review page", timed(page, sign_in, review_heading))

    for visit in range(args.visits):
        identifier = f"BENCH-{visit + 1:03d}"
        page.get_by_label("Patient identifier (pseudonymous)", exact=True).fill(identifier)
        timed(page, page.get_by_role("button", name="Start review").click, page.get_by_text("2 · Lesion images"))
        uploader = page.locator("input[type=file]").first
        _add(
            times,
            "upload",
            timed(
                page,
                lambda u=uploader: u.set_input_files([str(p) for p in images]),
                page.get_by_text(f"{n} image(s)", exact=True),
            ),
        )
        apply = page.get_by_role("button", name="Apply")
        if apply.count():
            timed(page, apply.click, page.get_by_role("button", name=f"Score and rank {n} lesion(s)"))
        _add(
            times,
            "score + gallery",
            timed(
                page,
                page.get_by_role("button", name=f"Score and rank {n} lesion(s)").click,
                page.get_by_text("4 · Ranked lesions"),
                page.get_by_role("heading", name=f"{rank_label(n)} ·"),  # the last card
            ),
        )
        _add(
            times,
            "save",
            timed(
                page,
                page.get_by_role("button", name="Save visit").click,
                page.get_by_text("This review is now read-only."),
            ),
        )
        if visit < args.visits - 1:
            timed(
                page,
                page.get_by_role("button", name="Start the next patient").click,
                page.get_by_label("Patient identifier (pseudonymous)", exact=True),
            )

    sidebar = page.locator("[data-testid=stSidebarNav]")

    def switch(link: str, heading: str) -> None:
        """Open a page from the sidebar; timed until its heading shows."""
        ready = page.get_by_role("heading", name=heading, exact=True)
        _add(times, f"switch -> {link}", timed(page, sidebar.get_by_role("link", name=link).click, ready))

    for _ in range(args.switches):
        switch("Case history", "Case history")
        search = page.get_by_label("Search patients by identifier", exact=True)
        search.fill("BENCH-001")
        _add(
            times,
            "history search -> patient",
            timed(page, lambda s=search: s.press("Enter"), page.get_by_role("heading", name="BENCH-001").first),
        )
        switch("Saliency", "Saliency inspection")
        _add(
            times,
            "switch -> Patient review",
            timed(page, sidebar.get_by_role("link", name="Patient review").click, review_heading),
        )


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f}, {five:.1f}, {fifteen:.1f}"


def report(times: dict[str, list[Step]], load_before: str, load_after: str) -> str:
    lines = [
        f"{os.cpu_count()} CPU core(s), Python {platform.python_version()}; "
        f"load average {load_before} (1/5/15 min) at the start, {load_after} at the end.",
        "",
        "| step | median s | worst s | runs | goal | script ran (median s) | Playwright wall (median s) "
        "| server CPU (median s) | browser CPU (median s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def row(name: str, steps: list[Step], goal: float | None) -> str:
        seconds = [s.seconds for s in steps]
        return (
            f"| {name} | {statistics.median(seconds):.2f} | {max(seconds):.2f} | {len(steps)} | "
            + (f"≤ {goal:g} s" if goal else "")
            + f" | {statistics.median(s.script_s for s in steps):.2f}"
            + f" | {statistics.median(s.wall_s for s in steps):.2f}"
            + f" | {statistics.median(s.cpu_s for s in steps):.2f}"
            + f" | {statistics.median(s.browser_cpu_s for s in steps):.2f} |"
        )

    for name, steps in times.items():
        goal = GOALS_S.get(name) or (GOALS_S["page switch"] if name.startswith("switch") else None)
        lines.append(row(name, steps, goal))
    switches = [step for name, steps in times.items() if name.startswith("switch") for step in steps]
    if switches:
        lines.append(row("all page switches", switches, GOALS_S["page switch"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patient", help="an isic2020_patients patient id (default: the first with enough images)")
    parser.add_argument("--lesions", type=int, default=20)
    parser.add_argument("--visits", type=int, default=2, help="visits reviewed and saved, one patient each")
    parser.add_argument("--switches", type=int, default=3, help="rounds of page switches")
    parser.add_argument(
        "--repo",
        type=Path,
        default=REPO_ROOT,
        help="the checkout whose dashboard is served (e.g. a git worktree "
        "of an older commit, for a before/after comparison on the same machine)",
    )
    parser.add_argument("--sign-in-after", type=float, default=0.0, help="seconds on the sign-in page first")
    parser.add_argument("--py-spy", help="path of a py-spy binary: profile the server while it is timed")
    parser.add_argument("--profile-out", default="dashboard_speed.pyspy.txt", help="py-spy's collapsed stacks")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing (apt-get install -y chromium)", file=sys.stderr)
        return 2
    load_before = _load()
    times = run(args)
    print()
    print(report(times, load_before, _load()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
