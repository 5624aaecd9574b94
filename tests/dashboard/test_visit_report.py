"""The printable visit report: a saved visit in a temporary store becomes an A4 PDF whose text layer and
first page (rendered by poppler) hold what a clinician needs, and producing it is audited."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
import shutil
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from dashboard.accounts import Accounts
from dashboard.report import DECISION_SUPPORT, ModelFacts, dejavu_fonts, visit_report_pdf
from dashboard.report_data import REPORT_AUDIT_ACTION, lesion_pictures, model_facts, report_filename, visit_report
from dashboard.report_text import latin1_text
from dashboard.store import CaseStore, LesionReview, ReviewToSave
from dashboard.user_store import UserStore
from dashboard.wording import pct, score_interval
from model.checkpoint import DEFAULT_CHECKPOINT, model_id, read_config

PSEUDONYM = "PSEUDO-REPORT-7"
COMMENT = "Réseau atypique, diamètre ≥ 6 mm"
AMEND_REASON = "surgeon prefers excision"
# (p_melanoma, spread, ugly-duckling z, outlier, decision) per lesion image; the rank follows p.
LESIONS = [
    (0.912, 0.012, 2.7, True, "biopsy"),
    (0.034, 0.004, 0.3, False, "monitor"),
    (0.41, 0.05, 1.1, False, None),
    (0.0123, 0.001, -0.4, False, "reassure"),
    (0.205, 0.02, 0.8, False, "refer"),
]
needs_pdftotext = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed here; CI installs it"
)
needs_pdftoppm = pytest.mark.skipif(
    shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed here; CI installs it"
)


def pdf_text(pdf: bytes, page: int | None = None) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(["pdftotext", *pages, "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()


def render_page(pdf: bytes, page: int = 1, dpi: int = 50) -> Image.Image:
    png = subprocess.run(
        ["pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page), "-"],
        input=pdf,
        capture_output=True,
        check=True,
    ).stdout
    return Image.open(io.BytesIO(png)).convert("RGB")


def colourful_pixels(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> int:
    """Pixels with clearly unequal channels: photographs and heatmaps, not black/grey text or white paper."""
    rgb = np.asarray(image.crop(box) if box else image, dtype=np.int16)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 50).sum())


def blob(image: Image.Image) -> np.ndarray:
    """A stand-in saliency heatmap (a centred blob) for tests that do not need the network."""
    h, w = image.height, image.width
    yy, xx = np.mgrid[0:h, 0:w]
    return np.exp(-(((yy - h / 2) / (h / 4)) ** 2 + ((xx - w / 2) / (w / 4)) ** 2)).astype(np.float32)


@pytest.fixture(scope="module")
def card_config() -> dict:
    """The shipped model's config: the card data the Model page shows (id, version, operating point)."""
    return read_config(DEFAULT_CHECKPOINT)


def _visit(card_config, visit_time: dt.datetime, notes: str, lesions: list[LesionReview]) -> ReviewToSave:
    """A visit of the report's patient, saved by dr.lee with the card's model."""
    return ReviewToSave(
        patient_identifier=PSEUDONYM,
        birth_year=1961,
        sex="female",
        clinician="dr.lee",
        visit_time=visit_time,
        model_version=model_id(card_config),
        model_checksum=card_config["weights_sha256"],
        notes=notes,
        lesions=lesions,
    )


@pytest.fixture()
def saved(tmp_path, patient_lesions, card_config):
    """One patient's visit of five real ISIC 2020 images, saved by a clinician; a viewer reads it."""
    with CaseStore.from_url(f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "images") as store:
        ranks = {i: r for r, i in enumerate(sorted(range(len(LESIONS)), key=lambda i: -LESIONS[i][0]), start=1)}
        visit_id = store.save_review(
            _visit(
                card_config,
                dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.UTC),
                "Follow-up in six months.",
                [
                    LesionReview(
                        image_bytes=f.data,
                        original_filename=f.name,
                        site=f.site,
                        lesion_label=f"mole {i + 1}",
                        p_melanoma=p,
                        p_spread=spread,
                        tta_views=8,
                        ugly_duckling=z,
                        outlier=outlier,
                        triage_score=p,
                        rank=ranks[i],
                        decision_action=action,
                        decision_comment=COMMENT if i == 0 else "",
                    )
                    for i, (f, (p, spread, z, outlier, action)) in enumerate(zip(patient_lesions, LESIONS, strict=True))
                ],
            )
        )
        # After the visit: the biopsy became an excision, and histology came back.
        top = next(les for les in store.load_visit(visit_id).lesions if les.prediction.rank == 1)
        store.amend_decision(top.decision.id, "excise", "wide margins", reason=AMEND_REASON, actor="dr.lee")
        store.record_histology(top.lesion_id, "melanoma", actor="dr.lee", reported_on=dt.date(2026, 5, 20))
        viewer = UserStore(
            store, Accounts(store).add("viewer.kim", "correct horse battery staple", "viewer", "Kim", actor="t")
        )
        yield SimpleNamespace(store=store, viewer=viewer, visit_id=visit_id)


def card_predictor(config: dict) -> SimpleNamespace:
    """The shipped model's card data without loading its network (the overlays come from ``blob``)."""
    return SimpleNamespace(config=config, model_id=model_id(config))


def fake_explain(predictor, image, site, patient, method):
    return blob(image)


@needs_pdftotext
def test_the_report_text_names_the_patient_model_scores_decisions_and_that_it_is_not_a_diagnosis(saved, card_config):
    pdf = visit_report(saved.viewer, saved.visit_id, card_predictor(card_config), explain=fake_explain)
    text = pdf_text(pdf)
    flat = " ".join(text.split())

    assert pdf.startswith(b"%PDF")
    assert PSEUDONYM in text
    assert f"version {card_config['version']}" in flat and model_id(card_config) in flat
    facts = model_facts(card_config)
    assert f"flagged {pct(facts.sensitivity, 1)} of melanomas" in flat  # the validation figure at the threshold
    assert " ".join(DECISION_SUPPORT.split()) in flat
    assert "complete patients" not in flat  # no validation.json given: nothing claimed
    assert "2026-05-04" in text and "dr.lee" in text and "viewer.kim" in text
    assert re.search(r"Visit visit \d+, recorded 2026-05-04", flat)  # not "visit 1 of <date>": read as a count
    validation = json.loads((DEFAULT_CHECKPOINT / "validation.json").read_text())
    with_evidence = pdf_text(
        visit_report(
            saved.viewer, saved.visit_id, card_predictor(card_config), explain=fake_explain, validation=validation
        )
    )
    assert "flagged 52% of melanomas (13 of 25)" in " ".join(with_evidence.split())  # the shipped complete patients
    for p, spread, *_ in LESIONS:
        assert f"P(melanoma) {pct(p)} ({score_interval(p, spread, 8)})" in flat
    assert "Ugly duckling: flagged (z 2.7)" in flat and "Ugly duckling: not flagged (z 0.3)" in flat
    assert "Decision: Biopsy - dr.lee" in flat and "Decision: none recorded." in flat
    assert "Amended: Excise - dr.lee" in flat and f"(reason: {AMEND_REASON}) Comment: wide margins" in flat
    assert "Histology: melanoma, reported 2026-05-20 (recorded by dr.lee)" in flat
    if dejavu_fonts():
        assert COMMENT in flat  # unicode kept as typed
    else:
        assert latin1_text(COMMENT) in flat
    # Ranked as at the visit: the highest score first.
    positions = [flat.index(f"P(melanoma) {pct(p)} ") for p, *_ in sorted(LESIONS, key=lambda row: -row[0])]
    assert positions == sorted(positions)
    # Every page has the header and a page number.
    pages = text.count("\f")
    assert pages >= 2
    for page in range(1, pages + 1):
        page_text = pdf_text(pdf, page)
        assert f"Patient {PSEUDONYM}" in page_text and f"Page {page} of {pages}" in page_text


def test_producing_a_report_is_audited_under_the_reader(saved, card_config):
    visit_report(saved.viewer, saved.visit_id, card_predictor(card_config), explain=fake_explain)
    events = saved.store.audit_events(action=REPORT_AUDIT_ACTION)
    assert len(events) == 1
    event = events[0]
    assert event.actor == "viewer.kim" and event.patient_id == saved.viewer.load_visit(saved.visit_id).patient_id
    assert event.detail["visit_id"] == saved.visit_id and len(event.detail["lesion_ids"]) == len(LESIONS)
    assert PSEUDONYM not in str(event.detail)  # ids only in the audit trail


def test_the_report_audit_names_the_visits_lesions_not_its_images(saved, patient_lesions, card_config):
    """The audit says which lesions were printed: their lesion ids (the ids the history and the body map
    use), not the ids of the visit's image rows, which name different records. A follow-up visit of one
    earlier lesion makes the two differ (its image is the sixth, its lesion the first visit's)."""
    first = saved.store.load_visit(saved.visit_id)
    followed = max(first.lesions, key=lambda les: les.lesion_id)  # lesion 5, not image 6
    f = patient_lesions[0]
    follow_up = saved.store.save_review(
        _visit(
            card_config,
            dt.datetime(2026, 11, 4, 9, 30, tzinfo=dt.UTC),
            "",
            [
                LesionReview(
                    image_bytes=f.data,
                    original_filename=f.name,
                    site=followed.site,
                    lesion_label=followed.label,
                    p_melanoma=0.2,
                    p_spread=0.01,
                    tta_views=8,
                    ugly_duckling=None,
                    outlier=None,
                    triage_score=0.2,
                    rank=1,
                    decision_action="monitor",
                    decision_comment="",
                    existing_lesion_id=followed.lesion_id,
                )
            ],
        )
    )
    visit = saved.viewer.load_visit(follow_up)
    assert [les.lesion_id for les in visit.lesions] == [followed.lesion_id]
    assert visit.lesions[0].image.id != followed.lesion_id  # the test means something
    visit_report(saved.viewer, follow_up, card_predictor(card_config), explain=fake_explain)
    (event,) = saved.store.audit_events(action=REPORT_AUDIT_ACTION)
    assert event.detail["lesion_ids"] == [followed.lesion_id]
    assert event.detail["visit_id"] == follow_up
    assert event.detail["model_id"] == visit.model_version


def test_no_audit_entry_means_no_report(saved, card_config):
    class AuditDown(UserStore):
        def record_view(self, *args, **kwargs):
            raise RuntimeError("audit table unavailable")

    store = AuditDown(saved.store, saved.viewer.user)
    with pytest.raises(RuntimeError, match="audit table unavailable"):
        visit_report(store, saved.visit_id, card_predictor(card_config), explain=fake_explain)


@needs_pdftoppm
def test_page_one_renders_as_an_a4_picture_with_thumbnails_and_overlays_in_the_picture_column(saved, card_config):
    visit = saved.viewer.load_visit(saved.visit_id)
    patient = saved.viewer.get_patient(visit.patient_id)
    facts = model_facts(card_config)
    pictures = lesion_pictures(saved.viewer, visit, card_predictor(card_config), explain=fake_explain)
    page = render_page(visit_report_pdf(patient, visit, facts, pictures))
    bare = render_page(visit_report_pdf(patient, visit, facts, {}))

    assert abs(page.width - 413) <= 2 and abs(page.height - 585) <= 2  # A4 at 50 dpi
    grey = np.asarray(page.convert("L"))
    assert (grey < 200).mean() > 0.03  # not blank: text and pictures
    # The two picture columns (15-90 mm from the left) hold photographs and heatmaps; the text column
    # (from 95 mm) does not; the same report without pictures has none.
    mm = page.width / 210
    pictures_box = (int(15 * mm), 0, int(90 * mm), page.height)
    text_box = (int(95 * mm), 0, page.width, page.height)
    assert colourful_pixels(page, pictures_box) > 2000
    assert colourful_pixels(page, text_box) < 200
    assert colourful_pixels(bare, pictures_box) < 200


def test_stored_images_get_real_saliency_overlays_from_the_loaded_model_and_missing_files_a_note(saved, predictor):
    visit = saved.viewer.load_visit(saved.visit_id)
    first, second = visit.lesions[:2]
    saved.store.image_path(second.image.sha256).unlink()  # the file gone from the image folder

    pictures = lesion_pictures(saved.viewer, visit, predictor)  # model/cam.py's Grad-CAM, a real network

    ok = pictures[first.image.id]
    assert ok.thumbnail is not None and ok.cam is not None and ok.cam.size == ok.thumbnail.size
    assert np.abs(np.asarray(ok.cam, dtype=np.int16) - np.asarray(ok.thumbnail, dtype=np.int16)).mean() > 5
    assert "not the one that scored it" in ok.note  # the visit was scored by another model id
    missing = pictures[second.image.id]
    assert missing.thumbnail is None and missing.cam is None and "cannot be read" in missing.note
    no_model = lesion_pictures(saved.viewer, visit, None)
    assert no_model[first.image.id].thumbnail is not None and no_model[first.image.id].cam is None


@needs_pdftotext
def test_scores_of_another_model_get_no_threshold_verdict_and_core_fonts_spell_out_unicode(saved):
    visit = saved.viewer.load_visit(saved.visit_id)
    patient = saved.viewer.get_patient(visit.patient_id)
    other = ModelFacts(model_id="another-model", version="9.9", threshold=0.3, sensitivity=0.8, specificity=0.7)

    flat = " ".join(pdf_text(visit_report_pdf(patient, visit, other, font_files=None)).split())

    assert "Model loaded now: another-model version 9.9" in flat
    assert "the figures above are the current model's" in flat
    assert "threshold, but" not in flat and "is below the" not in flat and "is above the" not in flat
    assert latin1_text(COMMENT) == "Réseau atypique, diamètre >= 6 mm" and latin1_text(COMMENT) in flat
    assert "P(melanoma) >= 30%" in flat


def test_the_file_name_carries_the_database_id_not_the_identifier(saved):
    visit = saved.viewer.load_visit(saved.visit_id)
    name = report_filename(visit)
    assert name == f"visit-report_patient-{visit.patient_id}_visit-{visit.number}_2026-05-04.pdf"
    # Images entered later than they were taken: the file is dated by the images' day, as the visit is numbered.
    back_dated = dataclasses.replace(visit, taken_on=dt.date(2025, 11, 3))
    assert report_filename(back_dated).endswith("_2025-11-03.pdf")


@needs_pdftotext
def test_a_long_identifier_is_shortened_in_the_header_and_printed_whole_in_the_body(saved):
    import dataclasses

    visit = saved.viewer.load_visit(saved.visit_id)
    patient = dataclasses.replace(saved.viewer.get_patient(visit.patient_id), identifier="W" * 64)

    lines = pdf_text(visit_report_pdf(patient, visit, None), page=1).splitlines()

    header = next(line for line in lines if "· visit" in line)
    assert (
        "W" * 10 in header
        and "W" * 64 not in header
        and header.rstrip().endswith(f"{visit.visit_time.astimezone():%Y-%m-%d}")
    )
    assert any("W" * 40 in line for line in lines if line is not header)  # the body keeps it whole (wrapped)


UNDRAWABLE = "Zoë Müller-Ørsted 日本"  # DejaVu Sans has no CJK glyphs; fpdf2 alone would print "Zoë Müller-Ørsted "


@needs_pdftotext
@pytest.mark.parametrize("fonts", ["dejavu", "core"])
def test_characters_the_font_cannot_draw_print_as_codes_and_the_report_says_so(saved, fonts):
    import dataclasses

    if fonts == "dejavu" and not dejavu_fonts():
        pytest.skip("DejaVu Sans is not installed here")
    visit = saved.store.load_visit(saved.visit_id)
    patient = dataclasses.replace(saved.store.get_patient(visit.patient_id), identifier=UNDRAWABLE)
    first = dataclasses.replace(visit.lesions[0], label="grain ☀ 背中")
    visit = dataclasses.replace(visit, notes="再診 in 6 months", lesions=(first, *visit.lesions[1:]))

    pdf = visit_report_pdf(patient, visit, None, font_files=True if fonts == "dejavu" else None)
    flat = " ".join(pdf_text(pdf).split())

    coded = "Zoë Müller-Ørsted [U+65E5][U+672C]"
    assert f"Visit report - patient {coded}" in flat and f"Patient (pseudonym) {coded} ·" in flat
    assert f"Patient {coded} · visit" in flat  # the header on every page
    assert "Notes [U+518D][U+8A3A] in 6 months" in flat
    label = "grain ☀ [U+80CC][U+4E2D]" if fonts == "dejavu" else "grain [U+2600] [U+80CC][U+4E2D]"
    assert f"- {label}" in flat
    assert "Characters the report's font cannot draw are printed as their Unicode code, e.g. [U+65E5]" in flat
    # never a silently shortened identifier
    assert "Zoë Müller-Ørsted ·" not in flat and "Zoë Müller-Ørsted  ·" not in flat


@needs_pdftotext
def test_a_report_the_font_can_draw_whole_has_no_codes_notice(saved):
    visit = saved.store.load_visit(saved.visit_id)
    flat = " ".join(pdf_text(visit_report_pdf(saved.store.get_patient(visit.patient_id), visit, None)).split())
    assert "[U+" not in flat and "Unicode code" not in flat


@needs_pdftotext
def test_unknown_birth_year_and_sex_are_named_and_one_image_is_singular(saved):
    import dataclasses

    visit = saved.store.load_visit(saved.visit_id)
    patient = dataclasses.replace(saved.store.get_patient(visit.patient_id), birth_year=None, sex="unknown")
    visit = dataclasses.replace(visit, lesions=visit.lesions[:1])

    flat = " ".join(pdf_text(visit_report_pdf(patient, visit, None)).split())

    assert f"{PSEUDONYM} · birth year unknown · sex unknown" in flat and "born unknown" not in flat
    assert "(1 lesion image)" in flat


@needs_pdftoppm
def test_the_overlays_colour_scale_is_printed_above_the_overlay_column(saved, card_config):
    from dashboard.report import MARGIN, PICTURE_GAP, PICTURE_MM, ReportContext
    from model.cam_overlay import colour_scale

    visit = saved.viewer.load_visit(saved.visit_id)
    patient = saved.viewer.get_patient(visit.patient_id)
    facts = model_facts(card_config)
    pictures = lesion_pictures(saved.viewer, visit, card_predictor(card_config), explain=fake_explain)
    with_scale = ReportContext(cam_method="Grad-CAM++", colour_scale=colour_scale(width=360, height=52))
    page = render_page(visit_report_pdf(patient, visit, facts, pictures, with_scale), dpi=100)
    without = ReportContext(cam_method="Grad-CAM++")
    plain = render_page(visit_report_pdf(patient, visit, facts, pictures, without), dpi=100)

    def colour_rows(image: Image.Image, left_mm: float, right_mm: float) -> np.ndarray:
        rgb = np.asarray(image, dtype=np.int16)[:, round(left_mm * 100 / 25.4) : round(right_mm * 100 / 25.4)]
        return np.flatnonzero(((rgb.max(axis=2) - rgb.min(axis=2)) > 50).sum(axis=1) > 5)

    overlay_x = MARGIN + PICTURE_MM + PICTURE_GAP
    first_photo = colour_rows(page, MARGIN, MARGIN + PICTURE_MM)[0]  # the first lesion's photograph
    scale_rows = colour_rows(page, overlay_x, overlay_x + PICTURE_MM)
    scale_rows = scale_rows[scale_rows < first_photo]
    assert len(scale_rows) > 0, "a coloured bar above the overlays"
    assert (scale_rows.max() - scale_rows.min()) * 25.4 / 100 < 8  # a thin strip (mm), not a picture
    plain_rows = colour_rows(plain, overlay_x, overlay_x + PICTURE_MM)
    assert not (plain_rows < colour_rows(plain, MARGIN, MARGIN + PICTURE_MM)[0]).any()  # no scale given: none


def test_a_shortened_header_never_cuts_a_characters_code(saved):
    import re

    visit = saved.viewer.load_visit(saved.visit_id)
    patient = dataclasses.replace(saved.viewer.get_patient(visit.patient_id), identifier="日本" * 32)
    lines = pdf_text(visit_report_pdf(patient, visit, None), page=1).splitlines()  # DejaVu: no CJK glyphs
    header = next(line for line in lines if "· visit" in line)
    assert "[U+65E5]" in header
    assert not re.search(r"\[U\+[0-9A-F]*(?![0-9A-F]*\])", header), header  # every code opened is closed
