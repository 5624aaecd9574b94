"""How a score is put into words: one percentage format for every page (``pct`` and ``pct_against``, from
model/score_text.py, which the triage's reasons use too), where a score lies against the threshold allowing
for its uncertainty, and the triage's reasons as bullet lines. No Streamlit here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dashboard.textsafe import literal
from model.score_text import pct, pct_against


@dataclass(frozen=True)
class ScoreBand:
    name: Literal["above", "near", "below"]
    title: str
    colour: Literal["red", "orange", "green"]
    explanation: str


UNCERTAINTY_SPREADS = 2.0  # a score's uncertainty interval: ± this many TTA spreads, on every page


def uncertainty_interval(p: float, spread: float | None) -> tuple[float, float]:
    """The one uncertainty interval every page draws and words: p ± 2 TTA spreads, inside [0, 1]."""
    margin = UNCERTAINTY_SPREADS * float(spread or 0.0)
    return max(0.0, p - margin), min(1.0, p + margin)


def score_interval(p: float, spread: float | None, views: int | None = None) -> str:
    """A score's uncertainty in the one wording of every page and the PDF: the interval the bars draw
    (``uncertainty_interval``), said to come from the image's orientation alone (the TTA views), so that a
    narrow one is not read as certainty. "± 0.4 pts" (one spread) and "± 0.7%" (two) were both in use."""
    if spread is None:
        return "no uncertainty recorded with this score"
    across = f"{views} orientations" if views else "orientations"
    low, high = uncertainty_interval(p, spread)
    if pct(low) == pct(high):
        return f"the same across {across}"
    return f"{pct(low)}–{pct(high)} across {across}"


def score_band(p: float, threshold: float, spread: float = 0.0) -> ScoreBand:
    """Where a score lies relative to the operating threshold, allowing for its uncertainty interval.

    No fixed minimum margin: the threshold sits at a few per cent at screening prevalence, where a margin of
    whole percentage points would call every score below it borderline."""
    low, high = uncertainty_interval(p, spread)
    p_text, t_text = pct_against(p, threshold)
    if p >= threshold:
        if low < threshold:
            return ScoreBand(
                "above",
                "Above threshold (borderline)",
                "red",
                f"{p_text} is above the {t_text} threshold, but its uncertainty "
                f"({pct(low)}–{pct(high)}) reaches below it.",
            )
        return ScoreBand("above", "Above threshold", "red", f"{p_text} is above the {t_text} threshold.")
    if high >= threshold:
        return ScoreBand(
            "near",
            "Near threshold",
            "orange",
            f"{p_text} is below the {t_text} threshold, but its uncertainty ({pct(low)}–{pct(high)}) reaches above it.",
        )
    return ScoreBand("below", "Below threshold", "green", f"{p_text} is below the {t_text} threshold.")


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """ "1 visit", "3 visits", "2 analyses" (``plural`` when adding an s is wrong)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def reason_lines(reasons: Any) -> list[str]:
    """The triage's plain-text reasons, one per line/semicolon, ready for a bullet list."""
    if reasons is None or (isinstance(reasons, float) and math.isnan(reasons)):
        return []
    if isinstance(reasons, list | tuple):
        parts = [str(r) for r in reasons]
    else:
        text = str(reasons)
        parts = text.split("\n") if "\n" in text else text.split("; ")
    return [p.strip().rstrip(".") + "." for p in parts if p.strip()]


def is_nan(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def quoted_names(names: Sequence[str], shown: int = 5) -> str:
    """“a”, “b” and 3 more: names a message lists (user text, escaped for Markdown)."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(f"“{literal(name)}”" for name in names[:shown]) + more


def rank_label(rank: int) -> str:
    """ "Rank 2": a lesion's place in the patient's triage order. "#2" is always the lesion's number in the
    patient's record, so the two are never confused for one another."""
    return f"Rank {int(rank)}"


def review_interval(months: int | None) -> str:
    """ ", repeat imaging in 6 months" after a monitor decision's name, or "" without an interval."""
    return f", repeat imaging in {months} months" if months else ""
