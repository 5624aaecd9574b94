"""The pages at a 1024 px wide browser (a clinic's small screen or a laptop with the sidebar open), issue 12.

Every metric row (Case history, Model, the review's ranked results) shows its labels and values whole, at
1024 px and at 1280 px. And coming back to the ranked gallery from a lesion's saliency page puts that
lesion's card on screen, instead of the top of the page. Screenshots go to test-artifacts/
(e2e_layout_*.png).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import browser_session as e2e
import pytest
from test_browser_follow_up import _store
from test_history_outcomes_page import IDENT, save_visit

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(420),
    pytest.mark.skipif(not e2e.CHROMIUM.exists(), reason=f"{e2e.CHROMIUM} is missing (apt-get install -y chromium)"),
]

NARROW, WIDE = 1024, 1280
# A metric's parts that Streamlit cuts with an ellipsis (or lets spill) when its column is too narrow.
TRUNCATED_METRIC_TEXT = """() => [...document.querySelectorAll(
    ['stMetricLabel', 'stMetricValue'].flatMap(id => [`[data-testid=${id}]`, `[data-testid=${id}] *`]).join(',')
  )].filter(el => el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1).map(el => el.textContent.trim())"""

# The lesion cards' own labels: the saliency toggle's and the "Inspect saliency" link's text.
TRUNCATED_CARD_TEXT = """() => [...document.querySelectorAll(
    "[class*='st-key-card-'] [data-testid=stWidgetLabel] *, [class*='st-key-card-'] [data-testid=stPageLink] *"
  )].filter(el => el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1).map(el => el.textContent.trim())"""


@contextmanager
def _signed_in_page(started: tuple[str, Path]):
    """A clinician's page in a fresh browser 1024 px wide: screenshot on failure, server log checked after."""
    from playwright.sync_api import expect, sync_playwright

    base_url, log_path = started
    expect.set_options(timeout=60_000)  # the first scoring also loads the model
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(e2e.CHROMIUM), headless=True, args=e2e.CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": NARROW, "height": 800}).new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(base_url)
            e2e.sign_in(page, e2e.CLINICIAN)
            yield page
        except BaseException:
            e2e.shot(page, "layout_failure")
            raise
        finally:
            browser.close()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]


def _metrics_whole(page, name: str, count: int) -> None:
    """At both widths, the page's `count` metrics are drawn and none has a cut-off label or value."""
    from playwright.sync_api import expect

    for width in (NARROW, WIDE):
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_timeout(500)  # the columns re-flow
        expect(page.locator("[data-testid=stMetric]")).to_have_count(count)
        assert page.evaluate(TRUNCATED_METRIC_TEXT) == [], (name, width)
    page.set_viewport_size({"width": NARROW, "height": 800})
    e2e.shot(page, f"layout_{name}")


def test_metric_rows_are_whole_at_1024_px(server, tmp_path):
    from playwright.sync_api import expect

    with _store(tmp_path) as store:
        save_visit(store)
    with _signed_in_page(server) as page:
        page.get_by_role("link", name="Case history").first.click()
        search = page.get_by_label("Search patients by identifier", exact=True)
        search.fill(IDENT)
        search.press("Enter")
        expect(page.get_by_role("heading", name=IDENT).first).to_be_visible()
        e2e.wait_idle(page)
        _metrics_whole(page, "history", 3)
        page.get_by_role("link", name="Model").first.click()
        expect(page.get_by_role("heading", name="Model", exact=True)).to_be_visible()
        e2e.wait_idle(page)
        _metrics_whole(page, "model", 6)


def test_back_from_saliency_shows_the_lesion_in_the_gallery(server, lesion_files: list[Path]):
    from playwright.sync_api import expect

    with _signed_in_page(server) as page:
        page.get_by_label("Patient identifier (pseudonymous)", exact=True).fill("E2E-LAYOUT-1")
        page.get_by_label("Birth year", exact=True).fill("1966")
        page.get_by_role("button", name="Start review").click()
        page.locator("input[type=file]").first.set_input_files([str(p) for p in lesion_files])
        expect(page.get_by_text("5 image(s)", exact=True)).to_be_visible()
        page.get_by_role("button", name="Apply").click()  # every unknown site -> the first site offered
        e2e.wait_idle(page)
        page.get_by_role("button", name="Score and rank 5 lesion(s)").click()
        expect(page.get_by_text("4 · Ranked lesions")).to_be_visible(timeout=90_000)
        e2e.wait_idle(page)
        _metrics_whole(page, "review", 4)
        assert page.evaluate(TRUNCATED_CARD_TEXT) == []  # at 1024 px: the cards' toggle and link read whole

        last = page.locator("[class*='st-key-card-']").nth(4)  # rank #5: far below the first screen
        heading = last.get_by_role("heading").first.inner_text()
        last.get_by_role("link", name="Inspect saliency").click()
        expect(page.get_by_role("heading", name="Saliency inspection")).to_be_visible()
        e2e.wait_idle(page, 120_000)
        page.get_by_role("link", name="Back to the review in progress").click()
        expect(page.get_by_text("4 · Ranked lesions")).to_be_visible()
        e2e.wait_idle(page)
        card = page.locator("[class*='st-key-card-']").filter(has=page.get_by_role("heading", name=heading))
        expect(card).to_be_in_viewport(ratio=0.3)
        page.screenshot(path=str(e2e.ARTIFACTS / "e2e_layout_back_to_gallery.png"))  # what is on screen

        # Once: a later rerun (a decision on the top lesion) leaves the page where the clinician scrolled.
        page.get_by_test_id("stMain").evaluate("main => main.scrollTo(0, 0)")
        page.locator("[class*='st-key-card-']").first.get_by_role("radio", name="Monitor").click()
        e2e.wait_idle(page)
        page.wait_for_timeout(1000)  # longer than the scroll script's second try
        expect(card).not_to_be_in_viewport()
