"""Whether P(melanoma) changed between two photographs of one lesion, or may only be photographing noise.

One home for the two rules, so the rule measured on re-photographed lesions (training/rephotograph_noise.py)
is the rule the follow-up pages apply (dashboard/follow_up.py). Both take floats or numpy arrays.
"""

from __future__ import annotations

import numpy as np

# odds of 0 or 1 are infinite; scores are clipped to this distance from them first
ODDS_CLIP = 1e-6
# a rise no larger than this many times the two scores' TTA spreads combined, 2·√(s₁² + s₂²), "may be noise":
# the ± the pages draw around each score
SPREAD_WIDTH = 2.0


def odds(p):
    p = np.clip(p, ODDS_CLIP, 1 - ODDS_CLIP)
    return p / (1 - p)


def odds_ratio(before, after):
    """How many times the odds of melanoma grew from `before` to `after` (below 1: they fell)."""
    return odds(after) / odds(before)


def within_spread(before, after, before_spread, after_spread):
    """True where the rise from `before` to `after` is within the two scores' combined orientation spread."""
    return np.subtract(after, before) <= SPREAD_WIDTH * np.hypot(before_spread, after_spread)
