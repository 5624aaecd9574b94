"""How a score reads as a percentage: one rule for the triage's reasons (model/triage.py), every dashboard page
(dashboard/wording.py) and the PDF, so that one score reads the same in the bar, the card and the reasons. And how
an evidence figure reads with its 95% interval (``ci_text``), for the model card (training/card_lines.py) and the
dashboard's evidence (dashboard/model_evidence.py), which may not import training.

It lives in ``model``, below the dashboard, because the reasons are worded in this layer, as ``z_text``
(model/ugly_duckling.py) is for the ugly-duckling score.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DIGITS = 3  # the most decimals a score and its threshold get to read apart


def pct(p: float | None, digits: int | None = None) -> str:
    """A probability as a percentage: one decimal below 10% (the calibrated P(melanoma) is often a few per
    cent: "2.4%", "1.6%"), none from 10% ("86%"); ``digits`` forces a precision; "–" for none or nan."""
    value = math.nan if p is None else 100 * float(p)
    if math.isnan(value):
        return "–"
    if digits is None:
        digits = 1 if round(abs(value), 1) < 10 else 0
    return f"{value:.{digits}f}%"


def pct_against(p: float, threshold: float) -> tuple[str, str]:
    """A score and its threshold as ``pct`` words them, with more decimals (up to MAX_DIGITS) only where the
    two would read the same: never "1.6% is below the threshold 1.6%"."""
    score, limit = pct(p), pct(threshold)
    for digits in range(1, MAX_DIGITS + 1):
        if score != limit:
            break
        score, limit = pct(p, digits), pct(threshold, digits)
    return score, limit


def figure_value(entry: Any) -> float:
    """An evidence figure's number ({"value", ...} or a bare number); NaN when missing or not a number."""
    if isinstance(entry, dict):
        entry = entry.get("value")
    try:
        return float(entry)
    except (TypeError, ValueError):
        return math.nan


def ci_text(entry: Any, spec: str = ".2f") -> str:
    """A figure ({"value", "ci"}, or a bare number) in the format ``spec`` (".3f", ".0%", …) with its 95%
    interval when it has both bounds: "0.80 (0.70–0.88)"; "–" when missing or not a number."""
    value = figure_value(entry)
    if math.isnan(value):
        return "–"
    ci = (entry.get("ci") if isinstance(entry, dict) else None) or []
    text = f"{value:{spec}}"
    if len(ci) == 2 and not any(math.isnan(figure_value(c)) for c in ci):
        text += f" ({float(ci[0]):{spec}}–{float(ci[1]):{spec}})"
    return text
