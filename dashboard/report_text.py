"""What the visit report says, line by line, as plain text: a score with its stored uncertainty, the
ugly-duckling flag, decisions with their amendments, the histology result, the visit's ranking, and how a
character the report's font cannot draw is printed (its code, never dropped or replaced by a look-alike).
No PDF here (dashboard/report.py lays it out)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime

from dashboard.choices import decision_label
from dashboard.store.records import DecisionView, HistologyView, PredictionView, VisitLesion
from dashboard.wording import pct, review_interval, score_interval
from model.ugly_duckling import z_text

# Core-font fallback: characters outside Latin-1 that the pages use, spelled in Latin-1.
LATIN1_SPELLING = {
    "≥": ">=",
    "≤": "<=",
    "–": "-",
    "—": "-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "…": "...",
    "•": "*",
    "→": "->",
    "×": "x",
    "≈": "~",
    "\u00a0": " ",
}


CODES_NOTICE = (
    "Characters the report's font cannot draw are printed as their Unicode code, e.g. {example}; "
    "the record holds them as typed."
)


def char_code(ch: str) -> str:
    """The visible stand-in for a character the font cannot draw: ``日`` → ``[U+65E5]``."""
    return f"[U+{ord(ch):04X}]"


def coded_text(text: str, drawable: Callable[[str], bool]) -> str:
    """``text`` with every character that ``drawable`` rejects replaced by its code (line breaks kept):
    an identifier, label or note is never printed shortened or as a different name."""
    return "".join(ch if ch == "\n" or drawable(ch) else char_code(ch) for ch in text)


def latin1_text(text: str) -> str:
    """``text`` printable with a core font: Latin-1 as typed, the known symbols spelled out (``≥`` →
    ``>=``), any other character as its code (``ő`` → ``[U+0151]``): no accent is dropped silently."""
    spelled = "".join(LATIN1_SPELLING.get(ch, ch) for ch in text)
    return coded_text(spelled, lambda ch: ord(ch) < 256)


def printable(value: object) -> str:
    """Plain text without control characters (line breaks kept) for the PDF."""
    text = str(value if value is not None else "")
    return "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch)[0] != "C")


def when(moment: datetime) -> str:
    local = moment.astimezone()
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or ''}".strip()


def score_line(lesion: VisitLesion) -> str:
    """P(melanoma) with the uncertainty stored with it, as the saved-visit cards word it."""
    pred = lesion.prediction
    if pred is None:
        return "Not scored at this visit."
    text = f"P(melanoma) {pct(pred.p_melanoma)}"
    return text + f" ({score_interval(pred.p_melanoma, pred.p_spread, pred.tta_views)})"


def ugly_duckling_line(lesion: VisitLesion) -> str:
    pred = lesion.prediction
    if pred is None:
        return ""
    caveat = f" {pred.source_caveat}" if pred.source_caveat else ""  # as the review showed it
    return _ugly_duckling_state(pred) + caveat


def _ugly_duckling_state(pred: PredictionView) -> str:
    z = "" if pred.ugly_duckling is None else f"z {z_text(pred.ugly_duckling)}"
    if pred.outlier:
        return f"Ugly duckling: flagged ({z or 'score not recorded'}) - unlike this patient's other lesions."
    if pred.ugly_duckling is None:
        return "Ugly duckling: not computed (needs at least 3 lesions)."
    if pred.outlier is None:
        return f"Ugly duckling: {z} (flag not recorded with this score)."
    return f"Ugly duckling: not flagged ({z})."


def decision_lines(decisions: Sequence[DecisionView]) -> list[str]:
    """Each decision on the lesion at this visit, oldest first: the one taken at the visit, then any
    amendment (with its reason) made after saving. The last one is the decision in force."""
    if not decisions:
        return ["Decision: none recorded."]
    lines = []
    for i, d in enumerate(decisions):
        amended = i > 0 or d.amends_id is not None
        reason = d.amend_reason if amended else ""
        interval = review_interval(d.review_in_months)
        line = (
            f"{'Amended' if amended else 'Decision'}: {decision_label(d.action)}{interval} - {d.clinician}, "
            f"{when(d.decided_at)}"
        )
        lines.append(line + (f" (reason: {reason})" if reason else ""))
        if d.comment:
            lines.append(f"Comment: {d.comment}")
    return lines


def histology_line(histology: HistologyView | None) -> str:
    """The lesion's latest histology result as recorded (possibly after this visit), or nothing."""
    if histology is None:
        return ""
    result = histology.result.replace("_", " ")
    reported = f", reported {histology.reported_on:%Y-%m-%d}" if histology.reported_on else ""
    note = f" - {histology.note}" if histology.note else ""
    return f"Histology: {result}{reported} (recorded by {histology.recorded_by}){note}"


def ranked(lesions: Sequence[VisitLesion]) -> list[VisitLesion]:
    """The model's ranking at the visit; unscored lesions last, by their per-patient number."""
    return sorted(
        lesions,
        key=lambda les: (les.prediction is None, les.prediction.rank if les.prediction else 0, les.lesion_number),
    )
