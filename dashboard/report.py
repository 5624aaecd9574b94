"""The printable report of one saved visit: an A4 PDF built with fpdf2 from the store's read DTOs.

No Streamlit and no model here: the lesion thumbnails and Grad-CAM overlays arrive as PIL images
(dashboard/report_data.py reads and computes them), so the layout is tested on its own; what each line
says is dashboard/report_text.py. Every text goes through fpdf2's plain-text API (no markup). With DejaVu
Sans installed (Debian ``fonts-dejavu-core``) every character the font has prints as typed; without it the
core font Helvetica is used and the symbols the pages use are spelled out (``≥`` → ``>=``). A character the
font cannot draw (CJK in DejaVu Sans, anything outside Latin-1 in Helvetica) is never dropped: fpdf2 would
silently print "Zoë 日本" as "Zoë ", so it is printed as its code (``[U+65E5]``, coverage read from the
font's cmap) and page 1 then says that some characters are shown as codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from PIL import Image

from dashboard.report_text import (
    CODES_NOTICE,
    LATIN1_SPELLING,
    char_code,
    coded_text,
    decision_lines,
    histology_line,
    printable,
    ranked,
    score_line,
    ugly_duckling_line,
    when,
)
from dashboard.store.records import HistologyView, PatientRecord, VisitLesion, VisitView
from dashboard.wording import pct, rank_label, score_band
from model.checkpoint import same_weights

DECISION_SUPPORT = (
    "Decision support, not a diagnosis. The scores rank this patient's lesions for attention; a low score does "
    "not rule out melanoma. Clinical and dermoscopic assessment decides."
)
TITLE = "Melanoma triage - visit report"

DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")
DEJAVU = {"": DEJAVU_DIR / "DejaVuSans.ttf", "B": DEJAVU_DIR / "DejaVuSans-Bold.ttf"}

# Layout, in millimetres on A4 (210 × 297).
MARGIN = 15.0
PICTURE_MM = 36.0  # the side of the box a thumbnail or overlay is fitted into
PICTURE_GAP = 3.0
LABEL_MM = 42.0  # the label column of the visit facts
TEXT_X = MARGIN + 2 * PICTURE_MM + 2 * PICTURE_GAP + 2.0  # lesion text starts right of the two pictures
PICTURE_PX = 360  # pictures are embedded at most this size (about 250 dpi in a 36 mm box)

# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ModelFacts:
    """The model loaded now and its validation figures at its operating threshold (from its card data)."""

    model_id: str
    version: str | None = None
    weights_sha256: str | None = None
    threshold: float | None = None
    sensitivity: float | None = None
    specificity: float | None = None
    chosen_by: str = ""
    # what the threshold and the ranking did on complete patients' moles (model_evidence.mole_check_sentence)
    mole_check: str | None = None

    def scored(self, prediction_model_id: str | None, prediction_checksum: str | None = None) -> bool:
        """Whether a stored prediction was made by this model (same id; same weights when both are known)."""
        if prediction_model_id != self.model_id:
            return False
        known = self.weights_sha256 and prediction_checksum and prediction_checksum != "unknown"
        return not known or same_weights(prediction_checksum, self.weights_sha256)


@dataclass(frozen=True)
class LesionPictures:
    """What the report shows of one lesion image: its thumbnail and saliency overlay, or why not."""

    thumbnail: Image.Image | None = field(default=None, repr=False)
    cam: Image.Image | None = field(default=None, repr=False)
    note: str = ""  # e.g. why a picture is missing, or that the overlay comes from another model


@dataclass(frozen=True)
class ReportContext:
    """Who asked for the report and how its saliency overlays were made."""

    generated_by: str = ""
    generated_at: datetime | None = None  # None = now
    cam_method: str = ""  # the saliency method's display name, "" when no overlays were made
    cam_note: str = ""  # e.g. "No model is loaded: no saliency overlays."
    # The overlays' "low -> high contribution" bar (model.cam_overlay.colour_scale), printed above them
    colour_scale: Image.Image | None = field(default=None, repr=False)


# ---------------------------------------------------------------- the document


class _ReportPDF(FPDF):
    """A4 pages with the report's header and numbered footer on every page."""

    def __init__(self, header_right: tuple[str, str], font_files: Mapping[str, Path] | None) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.header_right = header_right  # (identifier, the rest): the identifier is shortened to fit
        self.first_coded: str | None = None  # the first character printed as its code, if any
        if font_files:
            for style, path in font_files.items():
                self.add_font("DejaVu", style, str(path))
            self.report_family = "DejaVu"
            self.spelling: Mapping[str, str] = {}
            self.drawable = font_codepoints(tuple(str(path) for path in font_files.values()))
        else:
            self.report_family = "Helvetica"
            self.spelling = LATIN1_SPELLING
            self.drawable = range(256)  # the core fonts' Latin-1
        self.set_margins(MARGIN, MARGIN + 8, MARGIN)
        self.set_auto_page_break(True, margin=MARGIN + 5)
        self.set_image_filter("DCTDecode")  # photographs as JPEG: a report of 20 lesions stays small
        self.set_creator("melanoma triage dashboard")
        self.set_title("Visit report")  # no identifier in the file's metadata

    def clean(self, value: object) -> str:
        """``value`` as printed: no control characters, each character the font lacks as its code."""
        spelled = "".join(self.spelling.get(ch, ch) for ch in printable(value))
        drawable = self.drawable
        missing = next((ch for ch in spelled if ch != "\n" and ord(ch) not in drawable), None)
        self.first_coded = self.first_coded or missing
        return coded_text(spelled, lambda ch: ord(ch) in drawable)

    def write_text(self, text: str, size: float = 9, style: str = "", width: float = 0, height: float = 4.6) -> None:
        self.set_font(self.report_family, style, size)
        self.multi_cell(width, height, self.clean(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def text_height(self, text: str, width: float, size: float = 9, style: str = "", height: float = 4.6) -> float:
        self.set_font(self.report_family, style, size)
        return float(self.multi_cell(width, height, self.clean(text), align="L", dry_run=True, output="HEIGHT"))

    def header(self) -> None:
        self.set_y(MARGIN - 4)
        self.set_font(self.report_family, "B", 9)
        title = self.clean(TITLE)
        self.cell(self.get_string_width(title) + 6, 5, title)
        self.set_font(self.report_family, "", 9)
        self.cell(
            0, 5, self._fitted_header(self.w - MARGIN - self.get_x()), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        self.set_draw_color(150, 150, 150)
        self.line(MARGIN, self.get_y() + 1, self.w - MARGIN, self.get_y() + 1)
        self.set_y(MARGIN + 8)

    def _fitted_header(self, room: float) -> str:
        # Shortened as typed, then coded: a character's code ([U+65E5]) is never cut in the middle.
        identifier, rest = self.header_right
        text = self.clean(f"Patient {identifier}{rest}")
        while self.get_string_width(text) > room and len(identifier) > 1:
            identifier = identifier[:-1]
            text = self.clean(f"Patient {identifier}…{rest}")
        return text

    def footer(self) -> None:
        self.set_y(-MARGIN)
        self.set_font(self.report_family, "", 8)
        self.set_text_color(90, 90, 90)
        self.cell(140, 5, self.clean("Decision support, not a diagnosis."))
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def _fit(image: Image.Image) -> tuple[Image.Image, float, float]:
    """The picture as RGB at most PICTURE_PX, with its size in mm inside the PICTURE_MM box."""
    picture = image.convert("RGB")
    picture.thumbnail((PICTURE_PX, PICTURE_PX))
    scale = PICTURE_MM / max(picture.size)
    return picture, picture.width * scale, picture.height * scale


def _picture(pdf: _ReportPDF, image: Image.Image | None, x: float, y: float, caption: str) -> None:
    pdf.set_draw_color(200, 200, 200)
    pdf.rect(x, y, PICTURE_MM, PICTURE_MM)
    if image is None:
        pdf.set_xy(x + 2, y + PICTURE_MM / 2 - 3)
        pdf.set_font(pdf.report_family, "", 7)
        pdf.multi_cell(PICTURE_MM - 4, 3.2, pdf.clean(caption or "not available"), align="C")
        return
    picture, w, h = _fit(image)
    pdf.image(picture, x + (PICTURE_MM - w) / 2, y + (PICTURE_MM - h) / 2, w, h)
    pdf.set_xy(x, y + PICTURE_MM + 0.5)
    pdf.set_font(pdf.report_family, "", 7)
    pdf.cell(PICTURE_MM, 3, pdf.clean(caption), align="C")


def _colour_scale(pdf: _ReportPDF, scale: Image.Image) -> None:
    """The overlays' colour scale, as wide as the overlay column and above it."""
    x = MARGIN + PICTURE_MM + PICTURE_GAP
    height = PICTURE_MM * scale.height / scale.width
    top = pdf.get_y() + 1
    pdf.image(scale.convert("RGB"), x, top, PICTURE_MM, height)
    pdf.set_y(top + height)


def _facts_block(
    pdf: _ReportPDF, patient: PatientRecord, visit: VisitView, context: ReportContext, coded: str | None
) -> None:
    pdf.write_text(f"Visit report - patient {patient.identifier}", size=14, style="B", height=7)
    pdf.ln(1)
    born = f"born {patient.birth_year}" if patient.birth_year else "birth year unknown"
    sex = "sex unknown" if patient.sex in ("", "unknown") else patient.sex
    images = f"{len(visit.lesions)} lesion image{'' if len(visit.lesions) == 1 else 's'}"
    rows = [
        ("Patient (pseudonym)", f"{patient.identifier} · {born} · {sex}"),
        # "visit 1 of <date>" read as a count of visits and clashed with an earlier "Images taken on" day
        ("Visit", f"visit {visit.number or visit.id}, recorded {when(visit.visit_time)} ({images})"),
        *(
            [("Images taken on", f"{visit.taken_on:%Y-%m-%d} (entered after the day they were taken)")]
            if visit.taken_on
            else []
        ),
        ("Saved", when(visit.created_at)),
        ("Clinician", visit.clinician),
        ("Scored by model", visit.model_version),
    ]
    generated = context.generated_at or datetime.now(UTC)
    rows.append(
        ("Report", f"printed {when(generated)}" + (f" by {context.generated_by}" if context.generated_by else ""))
    )
    for label, value in rows:
        pdf.set_font(pdf.report_family, "B", 9)
        pdf.cell(LABEL_MM, 5, pdf.clean(label))
        pdf.write_text(value, width=0, height=5)
    if visit.notes:
        pdf.set_font(pdf.report_family, "B", 9)
        pdf.cell(LABEL_MM, 5, "Notes")
        pdf.write_text(visit.notes, height=5)
    if coded:
        pdf.ln(1)
        pdf.write_text(CODES_NOTICE.format(example=char_code(coded)), style="B", height=5)
    pdf.ln(2)


def _model_block(pdf: _ReportPDF, visit: VisitView, model: ModelFacts | None) -> None:
    pdf.set_fill_color(242, 245, 248)
    pdf.write_text("Model and its validation", size=11, style="B", height=6)
    if model is None:
        pdf.write_text(
            "No model is installed now, so its validation figures cannot be shown here; the scores below are "
            "the ones stored at the visit, with the model id stored with each."
        )
    else:
        version = f" version {model.version}" if model.version else ""
        lines = [f"Model loaded now: {model.model_id}{version}."]
        if model.threshold is not None:
            figures = f"Operating threshold: P(melanoma) ≥ {pct(model.threshold)}"
            if model.sensitivity is not None and model.specificity is not None:
                figures += (
                    f"; in validation it flagged {pct(model.sensitivity, 1)} of melanomas (sensitivity) and "
                    f"cleared {pct(model.specificity, 1)} of benign lesions (specificity)."
                )
            else:
                figures += "; no validated sensitivity is recorded for it: treat its scores as unvalidated."
            lines.append(figures)
            if model.mole_check:
                lines.append(model.mole_check)
        if model.chosen_by:
            lines.append(f"Threshold chosen as: {model.chosen_by}.")
        if visit.model_version != model.model_id:
            lines.append(
                f"This visit was scored by model {visit.model_version}: the figures above are the current "
                "model's, and no threshold comparison is printed for scores of another model."
            )
        pdf.write_text("\n".join(lines))
    pdf.ln(1)
    pdf.set_font(pdf.report_family, "B", 9)
    pdf.multi_cell(
        0, 5, pdf.clean(DECISION_SUPPORT), border=1, fill=True, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.ln(3)


def _lesion_text(
    lesion: VisitLesion, model: ModelFacts | None, pictures: LesionPictures, histology: HistologyView | None
) -> tuple[str, list[str]]:
    pred = lesion.prediction
    rank = f"{rank_label(pred.rank)} - " if pred else ""
    title = f"{rank}Lesion {lesion.lesion_number or lesion.lesion_id}" + (f" - {lesion.label}" if lesion.label else "")
    lines = [f"{lesion.site} · {lesion.image.original_filename or 'image'}", score_line(lesion)]
    if pred is not None:
        if model is not None and model.threshold is not None and model.scored(pred.model_id, pred.model_checksum):
            lines.append(score_band(pred.p_melanoma, model.threshold, pred.p_spread or 0.0).explanation)
        lines.append(ugly_duckling_line(lesion))
        lines.append(f"Triage score {pct(pred.triage_score, 1)} · model {pred.model_id}")
    lines.extend(decision_lines(lesion.decisions))
    if histology is not None:
        lines.append(histology_line(histology))
    if pictures.note:
        lines.append(pictures.note)
    return title, lines


def _lesion_block(pdf: _ReportPDF, title: str, lines: list[str], pictures: LesionPictures, cam_method: str) -> None:
    text_width = pdf.w - MARGIN - TEXT_X
    body = "\n".join(lines)
    needed = max(PICTURE_MM + 5, pdf.text_height(title, text_width, 10, "B", 5.5) + pdf.text_height(body, text_width))
    if pdf.get_y() + needed > pdf.page_break_trigger:
        pdf.add_page()
    top = pdf.get_y()
    pdf.set_draw_color(210, 210, 210)
    pdf.line(MARGIN, top - 1.5, pdf.w - MARGIN, top - 1.5)
    _picture(pdf, pictures.thumbnail, MARGIN, top, "image" if pictures.thumbnail is not None else "image unavailable")
    cam_caption = cam_method or "saliency"
    _picture(pdf, pictures.cam, MARGIN + PICTURE_MM + PICTURE_GAP, top, cam_caption if pictures.cam else "no overlay")
    pdf.set_xy(TEXT_X, top)
    pdf.set_font(pdf.report_family, "B", 10)
    pdf.multi_cell(text_width, 5.5, pdf.clean(title), align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(pdf.report_family, "", 9)
    pdf.multi_cell(text_width, 4.6, pdf.clean(body), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), top + PICTURE_MM + 4) + 3)


@cache
def font_codepoints(paths: tuple[str, ...]) -> frozenset[int]:
    """The code points every one of these font files can draw (the intersection of their cmaps)."""
    maps = [set(TTFont(path, lazy=True).getBestCmap()) for path in paths]
    return frozenset(set.intersection(*maps))


def dejavu_fonts() -> dict[str, Path] | None:
    """DejaVu Sans regular and bold when installed (Debian fonts-dejavu-core), else None."""
    return dict(DEJAVU) if all(path.is_file() for path in DEJAVU.values()) else None


def visit_report_pdf(
    patient: PatientRecord,
    visit: VisitView,
    model: ModelFacts | None,
    pictures: Mapping[int, LesionPictures] | None = None,
    context: ReportContext | None = None,
    histology: Mapping[int, HistologyView] | None = None,
    *,
    font_files: Mapping[str, Path] | bool | None = True,
) -> bytes:
    """The report of one saved visit as PDF bytes.

    pictures: per lesion image id (``VisitLesion.image.id``); a lesion without one prints empty frames.
    histology: the latest result per lesion id (``LesionSummary.histology``), printed under the decisions.
    font_files: True = DejaVu when installed (else core fonts), None/False = core fonts, or {style: path}.
    """
    pictures = pictures or {}
    context = context or ReportContext()
    fonts = dejavu_fonts() if font_files is True else (font_files or None)
    pdf = _render(patient, visit, model, pictures, context, histology or {}, fonts, coded=None)
    if pdf.first_coded is not None:  # some text needs codes: print again, with the line that says so
        pdf = _render(patient, visit, model, pictures, context, histology or {}, fonts, coded=pdf.first_coded)
    return bytes(pdf.output())


def _render(
    patient: PatientRecord,
    visit: VisitView,
    model: ModelFacts | None,
    pictures: Mapping[int, LesionPictures],
    context: ReportContext,
    histology: Mapping[int, HistologyView],
    fonts: Mapping[str, Path] | None,
    coded: str | None,
) -> _ReportPDF:
    date = f"{visit.image_date:%Y-%m-%d}"  # the images' day, as the visit is numbered and filed
    pdf = _ReportPDF((patient.identifier, f" · visit {visit.number or visit.id} · {date}"), fonts)
    pdf.add_page()
    _facts_block(pdf, patient, visit, context, coded)
    _model_block(pdf, visit, model)
    pdf.write_text(f"Lesions, ranked as at the visit ({len(visit.lesions)})", size=11, style="B", height=6)
    note = context.cam_note or (
        f"Saliency overlays ({context.cam_method}) are computed when the report is printed, by the model loaded "
        "now; they show what drove the score, approximately, not where a melanoma is."
        if context.cam_method
        else ""
    )
    if note:
        pdf.write_text(note, size=8)
    if context.cam_method and context.colour_scale is not None:
        _colour_scale(pdf, context.colour_scale)
    pdf.ln(3)
    if not visit.lesions:
        pdf.write_text("No lesion images were saved with this visit.")
    for lesion in ranked(visit.lesions):
        shown = pictures.get(lesion.image.id, LesionPictures())
        title, lines = _lesion_text(lesion, model, shown, histology.get(lesion.lesion_id))
        _lesion_block(pdf, title, lines, shown, context.cam_method)
    return pdf
