"""How a score is put into words: one percentage format for every page, where a score lies against the
threshold allowing for its uncertainty, and the triage's reasons as bullet lines. No Streamlit here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dashboard.textsafe import literal


@dataclass(frozen=True)
class ScoreBand:
    name: Literal["above", "near", "below"]
    title: str
    colour: Literal["red", "orange", "green"]
    explanation: str


def score_band(p: float, threshold: float, spread: float = 0.0) -> ScoreBand:
    """Where a score lies relative to the operating threshold, allowing for its uncertainty."""
    margin = max(2.0 * float(spread or 0.0), 0.02)
    low, high = max(0.0, p - margin), min(1.0, p + margin)
    if p >= threshold:
        if low < threshold:
            return ScoreBand(
                "above",
                "Above threshold (borderline)",
                "red",
                f"{pct(p)} is above the {pct(threshold)} threshold, but its uncertainty "
                f"({pct(low)}–{pct(high)}) reaches below it.",
            )
        return ScoreBand("above", "Above threshold", "red", f"{pct(p)} is above the {pct(threshold)} threshold.")
    if high >= threshold:
        return ScoreBand(
            "near",
            "Near threshold",
            "orange",
            f"{pct(p)} is below the {pct(threshold)} threshold, but its uncertainty "
            f"({pct(low)}–{pct(high)}) reaches above it.",
        )
    return ScoreBand("below", "Below threshold", "green", f"{pct(p)} is below the {pct(threshold)} threshold.")


def pct(p: float | None, digits: int | None = None) -> str:
    """A probability as a percentage, the one format of every page: one decimal below 10% (the calibrated
    P(melanoma) is often a few per cent: "2.4%"), none from 10% ("86%"); ``digits`` forces a precision."""
    if p is None or is_nan(p):
        return "–"
    value = 100 * float(p)
    if digits is None:
        digits = 1 if round(abs(value), 1) < 10 else 0
    return f"{value:.{digits}f}%"


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
