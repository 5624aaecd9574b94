"""The "score rose" flag of a lesion followed across visits (dashboard/follow_up.py), without Streamlit.

The flag compares a lesion's P(melanoma) at its last two visits. Its margin is configuration (a rule
from ``RISE_RULES`` and its value, ``data.settings.SCORE_RISE``): by default the odds of melanoma grew
six-fold, above what re-photographing an unchanged lesion does to the score (doubling happens in one photo
pair in five: data/settings.py). Why odds and not percentage points: the shipped model is calibrated to
screening prevalence (threshold ≈ 1.6%), so most scores are a few per cent; a "+10 points" rule would stay
silent while a lesion went from 0.5% to 9% (an 18-fold rise across the threshold), and odds are the scale on
which a logistic score moves.
A rise within the scores' TTA spread may be noise, and so is any rise between scores of different models:
the flag says so instead of hiding it (the spread misses most such noise: training.rephotograph_noise).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dashboard.wording import pct
from data.settings import SCORE_RISE, ScoreRiseMargin
from model import score_change

if TYPE_CHECKING:
    from dashboard.follow_up import LesionHistory, LesionVisit


def _odds_ratio_rose(before: float, after: float, margin: float) -> bool:
    return bool(score_change.odds_ratio(before, after) > margin)


def _points_rose(before: float, after: float, margin: float) -> bool:
    return 100 * (after - before) > margin


def _describe_odds_ratio(margin: float) -> str:
    return f"odds of melanoma ×{margin:g} or more"


def _describe_points(margin: float) -> str:
    return f"+{margin:g} percentage points or more"


@dataclass(frozen=True)
class RiseRule:
    test: Callable[[float, float, float], bool]  # (before, after, margin) -> rose by more than the margin
    describe: Callable[[float], str]


# Margin kinds a setting may name: "odds_ratio" (after/before odds > value) or "points" (rise > value pp).
RISE_RULES: dict[str, RiseRule] = {
    "odds_ratio": RiseRule(_odds_ratio_rose, _describe_odds_ratio),
    "points": RiseRule(_points_rose, _describe_points),
}


@dataclass(frozen=True)
class RiseMargin:
    kind: str = SCORE_RISE.kind
    value: float = SCORE_RISE.value

    def __post_init__(self) -> None:
        if self.kind not in RISE_RULES:
            raise ValueError(f"unknown score-rise margin {self.kind!r}; use one of {', '.join(RISE_RULES)}")
        if not (isinstance(self.value, int | float) and math.isfinite(self.value)) or self.value <= 0:
            raise ValueError(f"the score-rise margin must be a positive number, got {self.value!r}")
        if self.kind == "odds_ratio" and self.value <= 1:
            raise ValueError(f"an odds-ratio margin must be above 1 (a rise), got {self.value!r}")

    @classmethod
    def from_setting(cls, setting: ScoreRiseMargin = SCORE_RISE) -> RiseMargin:
        """The margin a setting names (data.settings.SCORE_RISE by default), checked."""
        return cls(kind=setting.kind, value=setting.value)

    def rose(self, before: float, after: float) -> bool:
        return RISE_RULES[self.kind].test(before, after, self.value)

    def describe(self) -> str:
        return RISE_RULES[self.kind].describe(self.value)


@dataclass(frozen=True)
class ScoreRise:
    """A score that rose by more than the margin between two visits, and how far to trust that."""

    before: float
    after: float
    margin: RiseMargin
    within_spread: bool | None  # None: a spread was not recorded with one of the scores
    same_model: bool

    @property
    def points(self) -> float:
        return 100 * (self.after - self.before)

    @property
    def odds_ratio(self) -> float:
        return float(score_change.odds_ratio(self.before, self.after))

    @property
    def may_be_noise(self) -> bool:
        return bool(self.within_spread) or not self.same_model

    def headline(self) -> str:
        return f"Score rose {pct(self.before)} → {pct(self.after)} (flagged at {self.margin.describe()})"

    def caveat(self, same_day_share: float | None = None) -> str:
        """What the flag does not prove. ``same_day_share``: how often two photographs of one unchanged benign
        lesion taken the same day already differ by this margin (the model's own check; model_evidence)."""
        notes = []
        if not self.same_model:
            notes.append("the two scores come from different model versions, so the rise may be the model's")
        if self.within_spread:
            notes.append("the rise is within the scores' ranges across orientations: it may be noise")
        elif self.within_spread is None:
            notes.append("no spread was recorded with one of the scores, so noise cannot be ruled out")
        if same_day_share is not None:
            notes.append(
                f"even two photographs of one unchanged benign lesion taken the same day differ by the flag's margin "
                f"({self.margin.describe()}) or more in {same_day_share:.1%} of pairs, and between visits lighting, "
                "focus and framing differ more; compare the images"
            )
        else:
            notes.append("lighting, focus and framing differ between visits and move scores too; compare the images")
        return "; ".join(notes).capitalize() + "."


def score_rise(
    before: float | None,
    after: float | None,
    margin: RiseMargin,
    *,
    before_spread: float | None = None,
    after_spread: float | None = None,
    same_model: bool = True,
) -> ScoreRise | None:
    """The rise from ``before`` to ``after`` if it exceeds ``margin``, else None (also without two scores).

    A rise counts as "within the spread" when it is no larger than twice the two TTA spreads combined
    (2·√(s₁² + s₂²)), the ± the pages draw.
    """
    if before is None or after is None or not margin.rose(before, after):
        return None
    within: bool | None = None
    if before_spread is not None and after_spread is not None:
        within = bool(score_change.within_spread(before, after, before_spread, after_spread))
    return ScoreRise(before=before, after=after, margin=margin, within_spread=within, same_model=same_model)


def lesion_rise(lesion: LesionHistory, margin: RiseMargin) -> ScoreRise | None:
    """The lesion's rise since its previous visit (the last two visits with a score)."""
    scored = [v for v in lesion.visits if v.p_melanoma is not None]
    if len(scored) < 2:
        return None
    return _visit_rise(scored[-2], scored[-1], margin)


def rises_by_visit(lesion: LesionHistory, margin: RiseMargin) -> dict[int, ScoreRise]:
    """Each scored visit (by visit id) whose score rose by more than the margin since the one before."""
    scored = [v for v in lesion.visits if v.p_melanoma is not None]
    found: dict[int, ScoreRise] = {}
    for before, after in itertools.pairwise(scored):
        rise = _visit_rise(before, after, margin)
        if rise is not None:
            found[after.visit_id] = rise
    return found


def _visit_rise(before: LesionVisit, after: LesionVisit, margin: RiseMargin) -> ScoreRise | None:
    """score_rise between two scored visits of one lesion, with their spreads and whether one model scored both."""
    return score_rise(
        before.p_melanoma,
        after.p_melanoma,
        margin,
        before_spread=before.p_spread,
        after_spread=after.p_spread,
        same_model=before.model_id == after.model_id,
    )
