"""The pages at a 1024 px wide browser (a clinic's small screen or a laptop with the sidebar open), issue 12.

Every metric row (Case history, Model) shows its labels and values whole, at 1024 px and at 1280 px.
Screenshots go to test-artifacts/ (e2e_layout_*.png).
"""

from __future__ import annotations

import pytest
import test_browser_e2e as e2e
from test_browser_e2e import server  # noqa: F401 - fixtures
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


def _browser_page(pw, width: int):
    browser = pw.chromium.launch(executable_path=str(e2e.CHROMIUM), headless=True, args=e2e.CHROMIUM_ARGS)
    page = browser.new_context(viewport={"width": width, "height": 800}).new_page()
    page.set_default_timeout(60_000)
    return browser, page


def _metrics_whole(page, name: str, count: int) -> None:
    """At both widths, the page's `count` metrics are drawn and none has a cut-off label or value."""
    from playwright.sync_api import expect

    for width in (NARROW, WIDE):
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_timeout(500)  # the columns re-flow
        expect(page.locator("[data-testid=stMetric]")).to_have_count(count)
        assert page.evaluate(TRUNCATED_METRIC_TEXT) == [], (name, width)
    page.set_viewport_size({"width": NARROW, "height": 800})
    e2e._shot(page, f"layout_{name}")


def test_metric_rows_are_whole_at_1024_px(server, tmp_path):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    base_url, log_path = server
    with _store(tmp_path) as store:
        save_visit(store)
    expect.set_options(timeout=60_000)
    with sync_playwright() as pw:
        browser, page = _browser_page(pw, NARROW)
        try:
            page.goto(base_url)
            e2e._sign_in(page, e2e.CLINICIAN)
            page.get_by_role("link", name="Case history").first.click()
            search = page.get_by_label("Search patients by identifier", exact=True)
            search.fill(IDENT)
            search.press("Enter")
            expect(page.get_by_role("heading", name=IDENT).first).to_be_visible()
            e2e._wait_idle(page)
            _metrics_whole(page, "history", 3)
            page.get_by_role("link", name="Model").first.click()
            expect(page.get_by_role("heading", name="Model", exact=True)).to_be_visible()
            e2e._wait_idle(page)
            _metrics_whole(page, "model", 6)
        except BaseException:
            e2e._shot(page, "layout_failure")
            raise
        finally:
            browser.close()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]
