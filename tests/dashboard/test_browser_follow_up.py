"""Same mole, side by side, in a real browser (issue 12): two saved visits of one patient; a new photo is
linked through the thumbnail picker; Case history shows the flagged lesion's two images side by side, the
aligned difference and the trend with its band. Screenshots go to test-artifacts/ (e2e_follow_up_*.png).
"""

from __future__ import annotations

import datetime as dt

import pytest
from test_browser_e2e import CHROMIUM, CHROMIUM_ARGS, CLINICIAN, _shot, _sign_in, _wait_idle, server  # noqa: F401

from dashboard.store import CaseStore, LesionReview, ReviewToSave

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install -y chromium)"),
]

PATIENT = "E2E-FOLLOW-UP-7"
# HAM10000 keeps several photographs of one lesion: two of them stand in for two visits of the same mole.
SAME_MOLE = ("ISIC_0027419", "ISIC_0025030")


def _lesion(path, label: str, site: str, p: float, existing: int | None = None) -> LesionReview:
    return LesionReview(
        image_bytes=path.read_bytes(),
        original_filename=path.name,
        site=site,
        lesion_label=label,
        existing_lesion_id=existing,
        p_melanoma=p,
        p_spread=0.002,
        tta_views=2,
        triage_score=p,
        rank=1 if label == "scalp mole" else 2,
    )


def _two_visits(tmp_path, datasets_dir) -> None:
    ham = datasets_dir / "ham10000" / "images"
    isic = datasets_dir / "isic2020" / "train"
    with CaseStore.from_url(f"sqlite:///{tmp_path / 'e2e.db'}", tmp_path / "images") as store:

        def save(month: int, lesions: list[LesionReview]) -> None:
            store.save_review(
                ReviewToSave(
                    patient_identifier=PATIENT,
                    birth_year=1958,
                    sex="male",
                    clinician=CLINICIAN,
                    visit_time=dt.datetime(2026, month, 5, 9, tzinfo=dt.UTC),
                    model_version="m-e2e",
                    model_checksum="c",
                    lesions=lesions,
                )
            )

        save(
            1,
            [
                _lesion(ham / f"{SAME_MOLE[0]}.jpg", "scalp mole", "head/neck", 0.008),
                _lesion(isic / "ISIC_0229832.jpg", "left scapula", "torso", 0.012),
            ],
        )
        patient_id = store.search_patients(PATIENT)[0].id
        ids = {les.label: les.id for les in store.list_lesions(patient_id)}
        save(7, [_lesion(ham / f"{SAME_MOLE[1]}.jpg", "scalp mole", "head/neck", 0.031, ids["scalp mole"])])


def test_link_with_thumbnails_and_compare_side_by_side(server, tmp_path, datasets_dir):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    base_url, log_path = server
    _two_visits(tmp_path, datasets_dir)
    expect.set_options(timeout=60_000)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(base_url)
            _sign_in(page, CLINICIAN)

            # Visit 3: open the patient, drop a new photo, link it from the thumbnails.
            page.get_by_role("tab", name="Find an existing patient").click()
            page.get_by_label("Search by identifier").fill(PATIENT)
            page.keyboard.press("Enter")
            _wait_idle(page)
            page.get_by_role("button", name="Open patient").click()
            _wait_idle(page)
            new_photo = datasets_dir / "isic2020" / "train" / "ISIC_2311665.jpg"
            page.locator("input[type=file]").first.set_input_files([str(new_photo)])
            _wait_idle(page)
            page.get_by_role("button", name="Choose from thumbnails").first.click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_text("#1 scalp mole")).to_be_visible()
            expect(dialog.get_by_text("#2 left scapula")).to_be_visible()
            expect(dialog.get_by_text("Score rose 0.8% → 3.1%")).to_be_visible()
            dialog.get_by_text("torso", exact=True).click()  # the site filter
            _wait_idle(page)
            expect(dialog.get_by_text("#1 scalp mole")).to_have_count(0)
            _shot(page, "follow_up_1_picker")
            dialog.get_by_role("button", name="Follow-up of this lesion").click()
            _wait_idle(page)
            expect(page.get_by_role("dialog")).to_have_count(0)
            expect(page.get_by_label("Label", exact=True)).to_have_value("left scapula")  # the lesion's label
            expect(page.get_by_text("Choose from thumbnails")).to_be_visible()

            # Case history: the flag, the two photographs of the mole side by side, aligned, the trend.
            page.get_by_role("link", name="Case history").first.click()
            _wait_idle(page)
            page.get_by_label("Search patients by identifier").fill(PATIENT)
            page.keyboard.press("Enter")
            _wait_idle(page)
            expect(page.get_by_text("Score rose since the previous visit")).to_be_visible()
            page.get_by_role("tab", name="Lesion over time").click()
            _wait_idle(page)
            expect(page.get_by_text("visit 1 · 2026-01-05 — P(melanoma) 0.8% ± 0.4%")).to_be_visible()
            expect(page.get_by_text("visit 2 · 2026-07-05 — P(melanoma) 3.1% ± 0.4%")).to_be_visible()
            expect(page.get_by_text("true physical scale is unknown", exact=False)).to_be_visible()
            page.get_by_text("Difference", exact=True).click()
            _wait_idle(page)
            expect(page.get_by_text("matching skin and lesion landmarks", exact=False)).to_be_visible()
            expect(page.get_by_text("P(melanoma), axis zoomed to 0–5%")).to_be_visible()  # the trend's left axis
            expect(page.get_by_text("ugly-duckling", exact=False)).to_have_count(0)  # none stored: no second axis
            _shot(page, "follow_up_2_compare")
        except BaseException:
            _shot(page, "follow_up_failure")
            raise
        finally:
            browser.close()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]
