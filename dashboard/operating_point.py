"""The model's operating point read at the prevalence of screening: PPV, NPV, reviews per melanoma,
natural frequencies per 1,000 lesions, and the sentence a clinician reads next to the scores."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dashboard.wording import pct
from model.metrics import SCREENING_PREVALENCE, at_prevalence

__all__ = ["SCREENING_PREVALENCE", "OperatingPoint", "operating_point", "performance_sentence", "whole_counts"]


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    sensitivity: float | None
    specificity: float | None
    prevalence: float
    chosen_by: str = ""

    def _screening(self, key: str) -> float | None:
        if self.sensitivity is None or self.specificity is None:
            return None
        value = at_prevalence(self.sensitivity, self.specificity, self.prevalence)[key]
        return value if math.isfinite(value) else None

    @property
    def ppv(self) -> float | None:
        return self._screening("ppv")

    @property
    def npv(self) -> float | None:
        return self._screening("npv")

    @property
    def reviews_per_melanoma(self) -> float | None:
        """Lesions flagged (and so reviewed) per melanoma found: 1 / PPV."""
        ppv = self.ppv
        return 1 / ppv if ppv else None

    def per_1000(self) -> dict[str, float] | None:
        """Natural frequencies for 1,000 screened lesions."""
        if self.sensitivity is None or self.specificity is None:
            return None
        melanomas = 1000 * self.prevalence
        found = melanomas * self.sensitivity
        false_alarms = (1000 - melanomas) * (1 - self.specificity)
        return {
            "melanomas": melanomas,
            "found": found,
            "missed": melanomas - found,
            "flagged": found + false_alarms,
            "false_alarms": false_alarms,
        }


def whole_counts(per: dict[str, float]) -> dict[str, int]:
    """Natural frequencies as the whole lesions a page prints, rounded so that they add up (found + missed =
    melanomas, found + false alarms = flagged); rounding each alone printed 14 found and 3 missed of 18."""
    melanomas, found, false_alarms = round(per["melanomas"]), round(per["found"]), round(per["false_alarms"])
    return {
        "melanomas": melanomas,
        "found": found,
        "missed": melanomas - found,
        "false_alarms": false_alarms,
        "flagged": found + false_alarms,
    }


def operating_point(config: dict[str, Any], prevalence: float = SCREENING_PREVALENCE) -> OperatingPoint:
    op = config.get("operating_point") or {}
    return OperatingPoint(
        threshold=float(op.get("threshold", 0.5)),
        sensitivity=_maybe_float(op.get("sensitivity")),
        specificity=_maybe_float(op.get("specificity")),
        prevalence=prevalence,
        chosen_by=str(op.get("chosen_by") or op.get("rule") or ""),
    )


def pooled_curve_point(config: dict[str, Any], prevalence: float = SCREENING_PREVALENCE) -> OperatingPoint:
    """The threshold as a point of the pooled validation curves the Model page draws, where every image counts
    once: the checkpoint's unweighted sensitivity and specificity when it records them. The operating point's
    own figures weight every source to screening prevalence, so they lie off those curves."""
    op = operating_point(config, prevalence)
    recorded = config.get("operating_point") or {}
    sensitivity = _maybe_float(recorded.get("unweighted_sensitivity"))
    specificity = _maybe_float(recorded.get("unweighted_specificity"))
    if sensitivity is None or specificity is None:
        return op
    return OperatingPoint(op.threshold, sensitivity, specificity, prevalence, op.chosen_by)


def _maybe_float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def performance_sentence(op: OperatingPoint) -> str:
    """One line a clinician can read next to the scores."""
    if op.sensitivity is None or op.specificity is None:
        return (
            f"Operating threshold {pct(op.threshold)}. This model has no validation figures recorded: "
            "treat its scores as unvalidated."
        )
    per = op.reviews_per_melanoma
    return (
        f"Operating threshold {pct(op.threshold)}: in validation it found {pct(op.sensitivity)} of melanomas "
        f"(sensitivity) and cleared {pct(op.specificity)} of benign lesions (specificity). At the "
        f"{pct(op.prevalence, 2)} prevalence of screening, about 1 in {per:.0f} flagged lesions "
        "is a melanoma "
        f"(PPV {pct(op.ppv, 1)})."
    )
