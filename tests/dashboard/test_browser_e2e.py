"""One real-browser run of the whole review: `streamlit run` + Debian's Chromium driven by Playwright.

Access first: an anonymous browser gets only the sign-in page, also on deep links. Then a dermatologist's
path: sign in, create a patient, drop 5 real lesion images and one corrupt file on the uploader, score
them, see the ranked gallery with a saliency overlay and the error card, record a decision, write a visit
note that is a Markdown image pointing outside, save, and find the patient again on the case-history page.
A viewer then cannot review or save, and the admin finds the clinician's save and decision in the audit
log under the clinician's username (and in its CSV export). Every request the browser makes, on every
page, goes to the dashboard's own host. Screenshots go to test-artifacts/.

Needs /usr/bin/chromium (`apt-get install -y chromium`); Playwright's own browser download is not used.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_session import ADMIN, ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, CLINICIAN, VIEWER, shot, sign_in, wait_idle

PATIENT = "E2E-PATIENT-0042"
NOTE = "![x](http://h.invalid/x.png) <img src=http://h.invalid/y.png> follow up in 6 months"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install -y chromium)"),
]


def test_review_end_to_end(server, lesion_files):
    from playwright.sync_api import expect, sync_playwright

    base_url, log_path = server
    expect.set_options(timeout=60_000)  # the first page load also loads the model
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)

        def new_page():
            page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            page.set_default_timeout(60_000)
            page.on("request", lambda request: requests.append(request.url))
            return page

        page = None
        try:
            page = new_page()
            _anonymous(page, base_url)
            page = new_page()
            _walk_through(page, base_url, lesion_files)
            page = new_page()
            _viewer(page, base_url)
            page = new_page()
            _admin_audit(page, base_url)
        except BaseException:
            if page is not None:
                shot(page, "failure")
            raise
        finally:
            browser.close()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]
    # Offline by design: no icon, font or image from anywhere but the dashboard itself (h.invalid included).
    assert requests, "no requests recorded"
    outside = sorted(
        {u for u in requests if urlsplit(u).scheme not in ("data", "blob") and _host(u) not in LOCAL_HOSTS}
    )
    assert outside == [], outside


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


def _anonymous(page, base_url: str) -> None:
    """Without signing in, every address (deep links included) is the sign-in page and nothing else."""
    from playwright.sync_api import expect

    for path in ("/", "/history?patient_id=1", "/saliency?visit=1&lesion=0123456789abcdef", "/audit", "/model"):
        page.goto(base_url + path)
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        wait_idle(page)
        for forbidden in ("Case history", "Patient review", "Audit log", "Download CSV", "Signed in as"):
            expect(page.get_by_text(forbidden, exact=True)).to_have_count(0)
        expect(page.locator("[data-testid=stSidebarNav]")).to_have_count(0)
    shot(page, "0_sign_in")


def _viewer(page, base_url: str) -> None:
    """A viewer reads the case history but has no review page and no save or export button."""
    from playwright.sync_api import expect

    page.goto(base_url + "/history?patient_id=1")  # a deep link: it opens after sign-in, not before
    sign_in(page, VIEWER)
    expect(page.get_by_role("heading", name="Case history", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Patient review")).to_have_count(0)
    expect(page.get_by_role("heading", name=PATIENT).first).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Save visit")).to_have_count(0)
    page.get_by_role("tab", name="Export").click()
    expect(page.get_by_text("may view records but not export them")).to_be_visible()
    expect(page.get_by_role("button", name="Download CSV")).to_have_count(0)
    shot(page, "7_viewer")


def _admin_audit(page, base_url: str) -> None:
    """The clinician's save and decision are in the admin's audit log, under the clinician's username."""
    from playwright.sync_api import expect

    page.goto(base_url)
    sign_in(page, ADMIN)
    page.get_by_role("link", name="Audit log").first.click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    user = page.get_by_label("User", exact=True)
    user.fill(CLINICIAN)
    user.press("Enter")
    wait_idle(page)
    for label in ("saved visits", "decisions"):  # the one save and the one decision of the walk-through
        _choose(page, "Action", label)
        expect(page.get_by_text(re.compile(r"^1 event\(s\), newest first"))).to_be_visible()
    shot(page, "8_audit")
    _choose(page, "Action", "all actions")
    # sign-in, searches, views, the save and the decision: more than one event
    expect(page.get_by_text(re.compile(r"^([2-9]|[1-9]\d+) event\(s\), newest first"))).to_be_visible()
    csv = Path(_download(page, page.get_by_role("button", name="Download CSV"))).read_text()
    for action in ("auth.login", "patient.search", "patient.view", "review.save", "decision.record"):
        assert f",{CLINICIAN},{action}," in csv, (action, csv)


def _choose(page, label: str, option: str) -> None:
    """Select `option` in the selectbox labelled `label`, and check that the box shows it.

    The option is typed into the box's filter and taken with Enter: in one CI run, clicking "all actions" in
    the open list left another option selected (the audit log then listed no event and its export button
    stayed disabled).
    """
    from playwright.sync_api import expect

    page.get_by_label(label, exact=True).click()
    page.keyboard.type(option)
    expect(page.get_by_role("option", name=option, exact=True)).to_be_visible()
    page.keyboard.press("Enter")
    wait_idle(page)
    expect(page.get_by_role("combobox", name=label, exact=True)).to_have_value(option)


def _download(page, button) -> str:
    """Click a download button and return the downloaded file's path.

    On a loaded machine a click that lands while Streamlit re-renders the button can be lost (seen once in CI:
    no download within 60 s). Then the button is clicked once more, after the page is idle; a download that
    never starts still fails. (Chromium holds back a page's second automatic download, so the first click's
    download must not have started when the second click is made: only a click without one is retried.)
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    for attempt in (1, 2):
        wait_idle(page)
        expect(button).to_be_enabled()
        try:
            with page.expect_download(timeout=30_000 * attempt) as download:
                button.click()
            return download.value.path()
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _walk_through(page, base_url: str, lesion_files: list[Path]) -> None:
    from playwright.sync_api import expect

    page.goto(base_url)
    sign_in(page, CLINICIAN)
    expect(page.get_by_role("heading", name="Patient review", exact=True)).to_be_visible()

    # Which patient.
    page.get_by_label("Patient identifier (pseudonymous)", exact=True).fill(PATIENT)
    page.get_by_label("Birth year", exact=True).fill("1966")
    page.get_by_role("button", name="Start review").click()
    expect(page.get_by_text("2 · Lesion images")).to_be_visible()
    shot(page, "1_patient")

    # All images at once, plus a corrupt file.
    page.locator("input[type=file]").first.set_input_files([str(p) for p in lesion_files])
    expect(page.get_by_text("5 image(s)", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_text("corrupt_lesion.jpg").first).to_be_visible()
    page.get_by_role("button", name="Apply").click()  # every unknown site -> the first site offered
    wait_idle(page)
    shot(page, "2_uploaded")
    # Unsaved work: a reload/close of the tab now asks first (beforeunload guard armed).
    assert page.evaluate("() => window.__triageUnsaved") is True

    # Score and rank.
    page.get_by_role("button", name="Score and rank 5 lesion(s)").click()
    expect(page.get_by_text("4 · Ranked lesions")).to_be_visible(timeout=90_000)
    expect(page.get_by_text("Decision support, not a diagnosis.").first).to_be_visible()
    for rank in range(1, 6):
        expect(page.get_by_role("heading", name=f"Rank {rank} ·")).to_be_visible()
    expect(page.get_by_text("corrupt_lesion.jpg").first).to_be_visible()  # the error card stays

    # Grad-CAM on the top lesion.
    page.get_by_text("Saliency map", exact=True).first.click()
    wait_idle(page, 90_000)
    expect(page.get_by_text("Saliency map unavailable")).to_have_count(0)
    first_card = page.locator("[class*='st-key-card-']").first
    expect(first_card.locator("img").first).to_be_visible()
    first_card.get_by_role("radio", name="Biopsy").click()
    wait_idle(page)
    shot(page, "3_ranked")
    first_card.screenshot(path=str(ARTIFACTS / "e2e_3b_top_card.png"))

    # A visit note that would load an outside image if it were rendered as Markdown / HTML.
    notes = page.get_by_label("Visit notes (optional)", exact=True)
    notes.fill(NOTE)
    notes.blur()
    wait_idle(page)

    # Save the visit.
    page.get_by_role("button", name="Save visit").click()
    expect(page.get_by_text("This review is now read-only.")).to_be_visible(timeout=60_000)
    wait_idle(page)
    assert page.evaluate("() => window.__triageUnsaved") is False
    shot(page, "4_saved")

    # Ugly-duckling map tab renders a plotly chart.
    # (scoped to the tab: the page has other plotly charts, e.g. the body map, that may be hidden)
    page.get_by_role("tab", name="Ugly-duckling map").click()
    expect(page.get_by_role("tabpanel", name="Ugly-duckling map").locator(".js-plotly-plot").first).to_be_visible()

    # The patient is in the case history.
    page.get_by_role("link", name="Case history").first.click()
    expect(page.get_by_role("heading", name="Case history", exact=True)).to_be_visible()
    search = page.get_by_label("Search patients by identifier", exact=True)
    search.fill("PATIENT-0042")
    search.press("Enter")
    expect(page.get_by_role("heading", name=PATIENT).first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Decision: Biopsy")).to_be_visible()
    note = page.get_by_text("follow up in 6 months")
    expect(note).to_be_visible()
    assert note.inner_text().replace("\u2060", "").strip() == NOTE  # the note, as the text it is (word joiners
    # keep GFM from linking the bare URLs; they are invisible)
    expect(page.locator("img[src*='h.invalid'], a[href*='h.invalid']")).to_have_count(0)  # no image, no link
    shot(page, "5_history")

    page.get_by_role("link", name="Model").first.click()
    expect(page.get_by_role("heading", name="Model", exact=True)).to_be_visible()
    expect(page.get_by_text("CC BY-NC 4.0").first).to_be_visible()
    shot(page, "6_model")
