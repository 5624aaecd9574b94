"""Two visits of one patient in a real browser (issue 12), from the first review to the printed report.

Visit 1 (images taken half a year ago): three lesions are labelled, placed on the body map by clicking
regions (one alone, two at once), scored and saved with the day the images were taken. Visit 2 (today):
the patient is opened again, a second photograph of the same mole is linked through the thumbnail picker,
a new lesion is placed on the map, and the visit is scored and saved. In Case history a saved lesion is
moved on the body map, the mole's two visits are compared side by side and aligned, its trend has
P(melanoma) and the ugly-duckling score on their own axes, a histology result is recorded, and the visit
report is downloaded: its first page is rendered with pdftoppm and checked as a picture. Every number the
pages should show is read back from the store the server wrote. Screenshots go to test-artifacts/
(e2e_follow_up_*.png).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
from browser_session import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, CLINICIAN, shot, sign_in, wait_idle
from test_visit_report import pdf_text, render_page

from dashboard.body_map import SELECTED_FILL, diagram_point
from dashboard.figures import UD_TREND_NAME
from dashboard.follow_up import lesion_histories
from dashboard.report import MARGIN, PICTURE_GAP, PICTURE_MM, TEXT_X
from dashboard.score_rise import RiseMargin, lesion_rise
from dashboard.store import CaseStore
from dashboard.wording import pct, score_interval
from data.body_sites import REGIONS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(420),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install -y chromium)"),
    pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm is missing (apt-get install poppler-utils)"),
]

PATIENT = "E2E-FOLLOW-UP-7"
# HAM10000 keeps several photographs of one lesion (a histologically proven benign keratosis of the scalp):
# two of them stand in for two visits of the same mole.
SAME_MOLE = ("ISIC_0027419", "ISIC_0025030")
# label -> (image, region it is placed on in visit 1); the last two are placed with one click.
VISIT_1 = {
    "scalp mole": (f"ham10000/images/{SAME_MOLE[0]}.jpg", "scalp"),
    "left scapula": ("isic2020/train/ISIC_0229832.jpg", "upper_back"),
    "mid back": ("isic2020/train/ISIC_2311665.jpg", "upper_back"),
}
NEW_AT_VISIT_2 = ("right forearm", "isic2020/train/ISIC_0164603.jpg", "right_forearm_front")
PDF_DPI = 100


def test_two_visits_of_one_patient(server, tmp_path, datasets_dir):
    from playwright.sync_api import expect, sync_playwright

    base_url, log_path = server
    taken_on = dt.date.today() - dt.timedelta(days=182)  # the first visit's photos: six months ago
    expect.set_options(timeout=60_000)  # the first scoring also loads the model
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True).new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(base_url)
            sign_in(page, CLINICIAN)
            _first_visit(page, datasets_dir, taken_on)
            _second_visit(page, datasets_dir)
            with _store(tmp_path) as store:
                patient_id = store.search_patients(PATIENT)[0].id
                lesions = {les.label: les for les in store.list_lesions(patient_id)}
            _history_body_map(page, tmp_path, lesions)
            _history_comparison(page, tmp_path, patient_id, lesions["scalp mole"].id, taken_on)
            _history_histology(page, lesions["scalp mole"])
            _visit_report(page, tmp_path, patient_id)
        except BaseException:
            shot(page, "follow_up_failure")
            raise
        finally:
            browser.close()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]


def _store(tmp_path: Path) -> CaseStore:
    """The server's own database and image folder (the `server` fixture puts them in tmp_path)."""
    return CaseStore.from_url(f"sqlite:///{tmp_path / 'e2e.db'}", tmp_path / "images")


def _card(page, filename: str):
    """An uploaded image's card in the review's image grid."""
    return page.locator("[class*='st-key-upload-']").filter(has_text=filename)


def _click_region(page, chart, key: str) -> None:
    """Click a body-map region's centre: its point on the shared diagram axes, turned into screen pixels by
    the plot's own axes (the region's hit point, or a lesion marker already there, lies under it)."""
    x, y = diagram_point(REGIONS[key], REGIONS[key].centre)
    chart.scroll_into_view_if_needed()
    px, py = chart.evaluate(
        """(gd, [x, y]) => {
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
            return [box.left + xa._offset + xa.l2p(x), box.top + ya._offset + ya.l2p(y)];
        }""",
        [x, y],
    )
    page.mouse.click(px, py)
    wait_idle(page)


def _review_map(page):
    return (
        page.locator("[data-testid=stExpander]").filter(has=page.locator(".js-plotly-plot")).locator(".js-plotly-plot")
    )


def _set_date(page, field, day: dt.date) -> None:
    """Type a day into a Streamlit date box (its year, month and day segments, in that order) and click
    away: the box takes the value when the focus leaves it by a click (Enter or Tab do not commit it)."""
    field.get_by_role("spinbutton").first.focus()
    page.keyboard.type(day.strftime("%Y%m%d"))
    page.locator("h1").first.click()


def _first_visit(page, datasets_dir: Path, taken_on: dt.date) -> None:
    from playwright.sync_api import expect

    page.get_by_label("Patient identifier (pseudonymous)", exact=True).fill(PATIENT)
    page.get_by_label("Birth year", exact=True).fill("1946")
    page.get_by_role("button", name="Start review").click()
    expect(page.get_by_text("2 · Lesion images")).to_be_visible()
    page.locator("input[type=file]").first.set_input_files([str(datasets_dir / p) for p, _ in VISIT_1.values()])
    expect(page.get_by_text("3 image(s)", exact=True)).to_be_visible()
    for label, (path, _) in VISIT_1.items():
        box = _card(page, Path(path).name).get_by_label("Label", exact=True)
        box.fill(label)
        box.press("Enter")
        wait_idle(page)

    # The body map: tick images, click a region; their site becomes the region's.
    for region, labels in (("scalp", ["scalp mole"]), ("upper_back", ["left scapula", "mid back"])):
        for label in labels:
            _card(page, Path(VISIT_1[label][0]).name).get_by_text("Select for the body map").click()
            wait_idle(page)
        expect(page.get_by_text(f"{len(labels)} image(s) selected")).to_be_visible()
        _click_region(page, _review_map(page), region)
        expected = f"{len(labels)} image(s) placed on {REGIONS[region].label}: anatomic site “{REGIONS[region].site}”."
        expect(page.get_by_text(expected)).to_be_visible()
    for path, region in VISIT_1.values():
        card = _card(page, Path(path).name)
        expect(card.get_by_text(f"{REGIONS[region].label} ({REGIONS[region].site})")).to_be_visible()
    expect(page.get_by_text("site(s) still unknown")).to_have_count(0)
    shot(page, "follow_up_1_body_map")

    page.get_by_role("button", name="Score and rank 3 lesion(s)").click()
    expect(page.get_by_text("4 · Ranked lesions")).to_be_visible(timeout=120_000)
    _set_date(page, page.get_by_label("Date the images were taken (empty: today)", exact=True), taken_on)
    wait_idle(page)
    page.get_by_role("button", name="Save visit").click()
    expect(page.get_by_text("This review is now read-only.")).to_be_visible()
    wait_idle(page)


def _second_visit(page, datasets_dir: Path) -> None:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Start the next patient").click()
    wait_idle(page)
    page.get_by_role("tab", name="Find an existing patient").click()
    page.get_by_label("Search by identifier").fill(PATIENT)
    page.keyboard.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Open patient").click()
    wait_idle(page)
    mole = datasets_dir / "ham10000" / "images" / f"{SAME_MOLE[1]}.jpg"
    new_label, new_path, new_region = NEW_AT_VISIT_2
    page.locator("input[type=file]").first.set_input_files([str(mole), str(datasets_dir / new_path)])
    expect(page.get_by_text("2 image(s)", exact=True)).to_be_visible()
    highlighted = "(gd, fill) => gd.layout.shapes.filter(s => s.fillcolor === fill).length"
    assert _review_map(page).evaluate(highlighted, SELECTED_FILL) == 0  # not visit 1's last region

    # The mole again: linked from the thumbnails of the patient's known lesions, filtered by site.
    mole_card = _card(page, mole.name)
    mole_card.get_by_role("button", name="Choose from thumbnails").click()
    dialog = page.get_by_role("dialog")
    for label in VISIT_1:
        lesion_tile = dialog.locator("[class*='st-key-pick-']").filter(has_text=label)
        expect(lesion_tile.locator("img")).to_be_visible()  # each known lesion shows its latest image
    dialog.get_by_text("head/neck", exact=True).click()  # the site filter
    wait_idle(page)
    expect(dialog.get_by_text("left scapula")).to_have_count(0)
    shot(page, "follow_up_2_picker")
    dialog.get_by_role("button", name="Follow-up of this lesion").click()
    wait_idle(page)
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(mole_card.get_by_label("Label", exact=True)).to_have_value("scalp mole")  # the lesion's label
    expect(mole_card.get_by_text("Scalp (head/neck)")).to_be_visible()  # a lesion does not move

    # A lesion seen for the first time: labelled and placed on the map.
    new_card = _card(page, Path(new_path).name)
    new_card.get_by_label("Label", exact=True).fill(new_label)
    new_card.get_by_label("Label", exact=True).press("Enter")
    wait_idle(page)
    new_card.get_by_text("Select for the body map").click()
    wait_idle(page)
    _click_region(page, _review_map(page), new_region)
    expect(page.get_by_text(f"1 image(s) placed on {REGIONS[new_region].label}")).to_be_visible()

    page.get_by_role("button", name="Score and rank 2 lesion(s)").click()
    expect(page.get_by_text("4 · Ranked lesions")).to_be_visible(timeout=120_000)
    page.get_by_role("button", name="Save visit").click()
    expect(page.get_by_text("This review is now read-only.")).to_be_visible()
    wait_idle(page)
    page.get_by_role("link", name="Open in case history").click()
    expect(page.get_by_role("heading", name=PATIENT).first).to_be_visible()
    wait_idle(page)


def _history_body_map(page, tmp_path: Path, lesions: dict) -> None:
    """Every lesion is on the map at the region it was given; a saved one is moved by clicking."""
    from playwright.sync_api import expect

    moved = lesions["mid back"]
    page.get_by_role("tab", name="Body map").click()
    panel = page.get_by_role("tabpanel", name="Body map")
    panel.get_by_role("combobox", name="Place a lesion on the map (then click its region)").click()
    page.get_by_role("option", name=f"#{moved.number} mid back").click()
    wait_idle(page)
    _click_region(page, panel.locator(".js-plotly-plot"), "lower_back")
    expect(panel.get_by_text(f"#{moved.number} mid back placed on Lower back.")).to_be_visible()
    chooser = panel.get_by_role("combobox", name="Place a lesion on the map (then click its region)")
    expect(chooser).to_have_value(f"#{moved.number} mid back · torso · Lower back")  # not the region it left
    with _store(tmp_path) as store:
        placed = {les.label: les.body_region for les in store.list_lesions(moved.patient_id)}
    assert placed == {
        "scalp mole": "scalp",
        "left scapula": "upper_back",
        "mid back": "lower_back",
        NEW_AT_VISIT_2[0]: NEW_AT_VISIT_2[2],
    }
    # The chart draws each lesion's marker at its region, by its latest score (customdata: region first).
    drawn = panel.locator(".js-plotly-plot").evaluate(
        "gd => gd.data.filter(t => t.name.startsWith('lesions')).flatMap(t => t.customdata.map(c => [c[0], c[2]]))"
    )
    assert sorted(drawn) == sorted([region, f"#{lesions[label].number} {label}"] for label, region in placed.items())
    expect(panel.get_by_text("Not on the map yet")).to_have_count(0)
    shot(page, "follow_up_3_history_map")


def _history_comparison(page, tmp_path: Path, patient_id: int, mole_id: int, taken_on: dt.date) -> None:
    """The mole's two visits side by side, aligned, and its trend on two axes, as stored."""
    from playwright.sync_api import expect

    with _store(tmp_path) as store:
        histories = lesion_histories(store.patient_timeline(patient_id))
    mole = next(h for h in histories if h.lesion_id == mole_id)
    assert [v.visit_number for v in mole.visits] == [1, 2]
    assert mole.visits[0].date == taken_on.isoformat()  # dated by the day its images were taken
    # The flag shows exactly when the stored scores rose by more than the margin (the model decides which).
    rise = lesion_rise(mole, RiseMargin.from_setting())
    expect(page.get_by_text("Score rose since the previous visit")).to_have_count(1 if rise else 0)

    page.get_by_role("tab", name="Lesion over time").click()
    panel = page.get_by_role("tabpanel", name="Lesion over time")
    for visit in mole.visits:
        score = f"P(melanoma) {pct(visit.p_melanoma)} ({score_interval(visit.p_melanoma, visit.p_spread)})"
        expect(panel.get_by_text(f"{visit.name()} — {score}")).to_be_visible()
    expect(panel.get_by_text("true physical scale is unknown", exact=False)).to_be_visible()
    panel.get_by_text("Difference", exact=True).click()
    wait_idle(page)
    expect(panel.get_by_text("difference after alignment", exact=False)).to_be_visible()

    # The trend: P(melanoma) in per cent, the ugly-duckling z on its own axis in a panel below.
    trend = panel.locator(".js-plotly-plot").last
    expect(trend.locator(".g-ytitle")).to_contain_text("P(melanoma)")
    expect(trend.locator(".g-y2title")).to_have_text("ugly-duckling z")
    # Each drawn tick as (its value, its label): d3 binds the tick's data to its text element.
    axes = trend.evaluate(
        """gd => ({
            left: [...gd.querySelectorAll('.ytick text')].map(t => [t.__data__.x, t.textContent]),
            right: [...gd.querySelectorAll('.y2tick text')].map(t => [t.__data__.x, t.textContent]),
            leftRange: gd._fullLayout.yaxis.range, rightRange: gd._fullLayout.yaxis2.range,
            traces: gd._fullData.map(t => [t.name, t.yaxis, t.y]),
        })"""
    )
    # Per cent on the left, plain z on the right; every label names the value its tick stands at.
    assert axes["left"] and all(text.endswith("%") for _, text in axes["left"]), axes["left"]
    assert all(_tick_value(text) / 100 == pytest.approx(x, abs=1e-9) for x, text in axes["left"]), axes["left"]
    assert axes["right"] and not any("%" in text for _, text in axes["right"]), axes["right"]
    assert all(_tick_value(text) == pytest.approx(x, abs=1e-9) for x, text in axes["right"]), axes["right"]
    on_axis = {name: (axis, ys) for name, axis, ys in axes["traces"]}
    scores = [v.p_melanoma for v in mole.visits]
    ducks = [v.ugly_duckling for v in mole.visits]
    assert None not in ducks, "each visit compared at least 3 lesions: both have an ugly-duckling score"
    assert on_axis["P(melanoma)"] == ("y", pytest.approx(scores))
    assert on_axis[UD_TREND_NAME] == ("y2", pytest.approx(ducks))
    low, high = axes["leftRange"]
    assert low <= min(scores) and max(scores) <= high <= 1.0
    low, high = axes["rightRange"]
    assert low <= min(0.0, *ducks) and max(1.0, *ducks) <= high  # every z drawn, 0 in view
    shot(page, "follow_up_4_compare")


def _tick_value(text: str) -> float:
    return float(text.rstrip("%").replace("\u2212", "-"))  # plotly writes a minus sign, not a hyphen


def _history_histology(page, mole) -> None:
    from playwright.sync_api import expect

    reported = dt.date.today() - dt.timedelta(days=3)
    page.get_by_role("tab", name="Histology & outcomes").click()
    panel = page.get_by_role("tabpanel", name="Histology & outcomes")
    panel.get_by_role("combobox", name="Lesion", exact=True).click()
    page.get_by_role("option", name=f"#{mole.number} scalp mole").click()
    wait_idle(page)
    expect(panel.get_by_text("No histology recorded for this lesion.")).to_be_visible()
    panel.get_by_text("Benign", exact=True).click()
    _set_date(page, panel.get_by_label("Date of the histology report", exact=True), reported)
    panel.get_by_label("Note (optional)", exact=True).fill("seborrhoeic keratosis")
    panel.get_by_role("button", name="Save histology").click()
    wait_idle(page)
    expected = f"Histology of lesion #{mole.number} recorded: Benign, reported {reported.isoformat()}."
    expect(panel.get_by_text(expected)).to_be_visible()
    # Still on the mole, its result in force (not the first lesion's blank form).
    lesion_box = panel.get_by_role("combobox", name="Lesion", exact=True)
    expect(lesion_box).to_have_value(f"#{mole.number} scalp mole · head/neck · histology: Benign")
    expect(panel.get_by_text("No histology recorded for this lesion.")).to_have_count(0)
    expect(panel.get_by_text("No histology results recorded for this patient yet.")).to_have_count(0)
    shot(page, "follow_up_5_histology")


def _visit_report(page, tmp_path: Path, patient_id: int) -> None:
    """The latest visit's PDF: downloaded as a clinician would, its first page checked as a picture."""
    page.get_by_role("tab", name="Visits").click()
    # One download only: Chromium holds back a page's second automatic download.
    with page.expect_download(timeout=120_000) as download:  # the overlays are computed for the report
        page.get_by_role("button", name="Download visit report (PDF)").click()
    pdf = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename.startswith(f"visit-report_patient-{patient_id}_visit-2_")
    assert pdf.startswith(b"%PDF")
    with _store(tmp_path) as store:
        visit = store.patient_timeline(patient_id).visits[-1]
    ranked = [les.label for les in sorted(visit.lesions, key=lambda les: les.prediction.rank)]

    text = pdf_text(pdf, page=1)
    for expected in (PATIENT, "visit 2", visit.model_version, "Decision support, not a diagnosis", "Histology: benign"):
        assert expected in text, (expected, text)
    positions = [text.find(f"- {label}") for label in ranked]  # "Rank 1 - Lesion 4 - right forearm"
    assert -1 not in positions and positions == sorted(positions), (ranked, text)

    picture = render_page(pdf, page=1, dpi=PDF_DPI)
    ARTIFACTS.mkdir(exist_ok=True)
    picture.save(ARTIFACTS / "e2e_follow_up_6_report_page1.png")
    _check_first_page(np.asarray(picture), lesion_count=len(ranked))


def _mm(value: float) -> int:
    return round(value / 25.4 * PDF_DPI)


def _runs(mask_rows: np.ndarray, min_length: int) -> list[tuple[int, int]]:
    """The [start, end) row ranges where the mask is set, at least ``min_length`` rows long."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask_rows.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= min_length]


def _check_first_page(page: np.ndarray, lesion_count: int) -> None:
    """A4 portrait; a header line of text; per lesion, a photograph and its coloured overlay side by side
    in the two picture columns, with text beside them; above them the overlays' colour scale; no colour
    anywhere else (text is black and grey)."""
    height, width, _ = page.shape
    assert abs(width - _mm(210)) <= 1 and abs(height - _mm(297)) <= 1, page.shape
    ink = page.min(axis=2) < 200
    assert 0.02 < ink.mean() < 0.5, f"{ink.mean():.1%} of the page is ink"
    header = ink[_mm(MARGIN - 4) : _mm(MARGIN + 2)]
    assert header[:, : width // 2].any() and header[:, width // 2 :].any(), "title left, patient right"

    colour = (page.max(axis=2).astype(int) - page.min(axis=2)) > 40  # skin and heat-map colours, not text
    photo_cols = slice(_mm(MARGIN), _mm(MARGIN + PICTURE_MM))
    overlay_x = MARGIN + PICTURE_MM + PICTURE_GAP
    overlay_cols = slice(_mm(overlay_x), _mm(overlay_x + PICTURE_MM))
    photos = _runs(colour[:, photo_cols].sum(axis=1) > 5, min_length=_mm(10))
    overlays = _runs(colour[:, overlay_cols].sum(axis=1) > 5, min_length=_mm(10))
    assert len(photos) == lesion_count, photos
    assert len(overlays) == lesion_count, overlays
    for (top, bottom), (o_top, o_bottom) in zip(photos, overlays, strict=True):
        assert bottom - top <= _mm(PICTURE_MM) + 2  # fitted into its box
        assert abs(top - o_top) <= _mm(PICTURE_MM) // 2 and abs(bottom - o_bottom) <= _mm(PICTURE_MM) // 2
        assert ink[top:bottom, _mm(TEXT_X) :].any(), "the lesion's text beside its pictures"
    assert not colour[:, _mm(TEXT_X) :].any(), "colour only in the pictures"
    above = colour[: photos[0][0]]  # above the first lesion: only the overlays' colour scale, a thin strip
    edge = 2  # pixels: the scale's edge is antialiased
    assert not above[:, : overlay_cols.start - edge].any() and not above[:, overlay_cols.stop + edge :].any()
    rows = np.flatnonzero(above.any(axis=1))
    assert len(rows) and rows[-1] - rows[0] <= _mm(8), rows
