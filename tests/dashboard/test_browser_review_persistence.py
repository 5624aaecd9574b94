"""A review survives a trip to another page, in a real browser (from a browser audit: HIGH, data loss).

On the Patient review page a clinician labels the lesions, scores them, records "Biopsy" with a comment on the
top lesion, starts typing the visit notes and, without clicking elsewhere first, opens Case history from the
sidebar. Back on Patient review, every box must show what the review holds (the decision, the comment, the
notes, the labels), and the next click (Monitor on the second lesion) must add to the review, not blank it:
before the fix the boxes came back empty and that click saved the visit with no notes, no biopsy and no
comment. What was saved is read back from the database the server wrote.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from browser_session import CHROMIUM, CHROMIUM_ARGS, CLINICIAN, shot, sign_in, wait_idle

from dashboard.store import CaseStore

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install -y chromium)"),
]

PATIENT = "E2E-PERSIST-0007"
COMMENT = "irregular network, excise"
NOTES = "Patient asked about sun protection; review in 3 months"
LABELS = ("left shoulder", "right calf", "upper back", "left forearm")


@pytest.fixture()
def four_lesions(datasets_dir) -> list[Path]:
    """4 real images of one ISIC 2020 patient."""
    train = pd.read_csv(datasets_dir / "isic2020" / "train.csv")
    names = train[train["patient_id"] == "IP_6648913"]["image_name"].tolist()[:4]
    paths = [datasets_dir / "isic2020" / "train" / f"{n}.jpg" for n in names]
    assert len(paths) == 4 and all(p.is_file() for p in paths)
    return paths


def _cards(page):
    return page.locator("[class*='st-key-card-']")


def _pressed(pill) -> bool:
    """Whether a decision pill is the one selected (Streamlit marks it aria-checked or aria-pressed)."""
    return "true" in (pill.get_attribute("aria-checked"), pill.get_attribute("aria-pressed"))


def _leave_and_return(page) -> None:
    """Open Case history from the sidebar, then come back to Patient review the same way.

    The first click on the link may only take the focus from the notes box (its rerun can swallow the page
    switch): then the link is clicked again, as a clinician would.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    history = page.get_by_role("heading", name="Case history", exact=True)
    link = page.locator("[data-testid=stSidebar]").get_by_role("link", name="Case history")
    link.click(delay=100)  # a person's click: the button is down for a moment
    try:
        history.wait_for(timeout=10_000)
    except PlaywrightTimeout:
        wait_idle(page)
        link.click()
    expect(history).to_be_visible()
    wait_idle(page)
    page.locator("[data-testid=stSidebar]").get_by_role("link", name="Patient review").click()
    expect(page.get_by_text("4 · Ranked lesions")).to_be_visible()
    wait_idle(page)


def test_review_kept_across_a_page_switch(server, tmp_path, four_lesions):
    from playwright.sync_api import expect, sync_playwright

    base_url, log_path = server
    expect.set_options(timeout=60_000)  # the first scoring also loads the model
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(base_url)
            sign_in(page, CLINICIAN)
            page.get_by_label("Patient identifier (pseudonymous)", exact=True).fill(PATIENT)
            page.get_by_role("button", name="Start review").click()
            expect(page.get_by_text("2 · Lesion images")).to_be_visible()
            page.locator("input[type=file]").first.set_input_files([str(p) for p in four_lesions])
            expect(page.get_by_text("4 image(s)", exact=True)).to_be_visible()
            for path, label in zip(four_lesions, LABELS, strict=True):
                box = page.locator("[class*='st-key-upload-']").filter(has_text=path.name).get_by_label("Label")
                box.fill(label)
                box.press("Enter")
                wait_idle(page)
            page.get_by_role("button", name="Apply").click()  # every unknown site -> the first site offered
            wait_idle(page)
            page.get_by_role("button", name="Score and rank 4 lesion(s)").click()
            expect(page.get_by_text("4 · Ranked lesions")).to_be_visible(timeout=120_000)
            # Every card drawn before the first click (as test_browser_e2e waits): on a loaded CI machine a click
            # on a card still being drawn was lost, and no decision was recorded.
            for rank in range(1, 5):
                expect(page.get_by_role("heading", name=f"Rank {rank} ·")).to_be_visible()
            expect(_cards(page).first.locator("img").first).to_be_visible()
            wait_idle(page)

            # Biopsy and a comment on the top lesion, committed (a click elsewhere).
            first = _cards(page).first
            first_label = first.get_by_role("heading").first.inner_text().split("·", 1)[1].strip()
            first.get_by_role("radio", name="Biopsy").click()
            wait_idle(page)
            assert _pressed(first.get_by_role("radio", name="Biopsy")), "the Biopsy click did not register"
            comment = first.get_by_label("Comment", exact=True)
            comment.fill(COMMENT)
            page.locator("h1").first.click()
            wait_idle(page)
            expect(page.get_by_text("Decisions recorded for 1 of 4")).to_be_visible()

            # Notes typed, and the page left straight from the box (no click elsewhere first).
            page.get_by_label("Visit notes (optional)", exact=True).fill(NOTES)
            _leave_and_return(page)
            shot(page, "persist_1_back")

            # Every box shows what the review holds.
            first = _cards(page).first
            assert _pressed(first.get_by_role("radio", name="Biopsy")), "Biopsy no longer shown on lesion #1"
            expect(first.get_by_label("Comment", exact=True)).to_have_value(COMMENT)
            expect(page.get_by_label("Visit notes (optional)", exact=True)).to_have_value(NOTES)
            for path, label in zip(four_lesions, LABELS, strict=True):
                card = page.locator("[class*='st-key-upload-']").filter(has_text=path.name)
                expect(card.get_by_label("Label")).to_have_value(label)

            # The next click adds to the review.
            second = _cards(page).nth(1)
            second_label = second.get_by_role("heading").first.inner_text().split("·", 1)[1].strip()
            second.get_by_role("radio", name="Monitor").click()
            wait_idle(page)
            expect(page.get_by_text("Decisions recorded for 2 of 4")).to_be_visible()
            assert _pressed(_cards(page).first.get_by_role("radio", name="Biopsy"))

            # Once more, with everything committed: a second trip keeps it all too.
            _leave_and_return(page)
            expect(page.get_by_label("Visit notes (optional)", exact=True)).to_have_value(NOTES)
            expect(_cards(page).first.get_by_label("Comment", exact=True)).to_have_value(COMMENT)

            page.get_by_role("button", name="Save visit").click()
            expect(page.get_by_text("This review is now read-only.")).to_be_visible()
            wait_idle(page)
        except BaseException:
            shot(page, "persist_failure")
            raise
        finally:
            browser.close()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]
    log = log_path.read_text()
    assert "default value but also had its value set via" not in log, log[-3000:]

    with CaseStore.from_url(f"sqlite:///{tmp_path / 'e2e.db'}", tmp_path / "images") as store:
        patient_id = store.search_patients(PATIENT)[0].id
        (visit,) = store.patient_timeline(patient_id).visits
    assert visit.notes == NOTES
    decisions = {
        lesion.label: (lesion.decision.action, lesion.decision.comment) if lesion.decision else None
        for lesion in visit.lesions
    }
    assert sorted(decisions) == sorted(LABELS)
    assert decisions[first_label] == ("biopsy", COMMENT), decisions
    assert decisions[second_label] == ("monitor", ""), decisions
    assert sum(d is not None for d in decisions.values()) == 2, decisions
