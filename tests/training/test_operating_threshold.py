"""The shipped operating point (training/assemble_default.py) and the whole-patient triage metrics
(training/triage_metrics.py) on hand-made scores whose answers can be worked out on paper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.metrics import SCREENING_PREVALENCE
from training import triage_metrics
from training.assemble_default import choose_threshold, weighted_rates
from training.calibration import prevalence_weights

PREV = SCREENING_PREVALENCE


@pytest.fixture
def sources() -> tuple[pd.DataFrame, np.ndarray]:
    """An enriched source (2 melanomas in 10) and a screening-like one (1 in 100). Weighted to screening
    prevalence, the screening source's melanoma weighs 20 times each enriched one (1.76 against 0.088)."""
    enriched = [(1, 0.7), (1, 0.3), (0, 0.85), *[(0, s) for s in np.linspace(0.05, 0.2, 7)]]
    screening = [(1, 0.9), *[(0, s) for s in np.linspace(0.01, 0.7, 99)]]  # one benign exactly at 0.7
    frame = pd.DataFrame(
        [{"dataset": "enriched", "target": y} for y, _ in enriched]
        + [{"dataset": "screening", "target": y} for y, _ in screening]
    )
    return frame, np.array([s for _, s in enriched] + [s for _, s in screening])


def test_the_threshold_is_the_highest_score_that_flags_the_weighted_share_of_melanomas(sources):
    frame, p = sources
    # the screening source's melanoma alone is 1.76 / 1.936 = 91% of the weighted melanomas
    assert choose_threshold(frame, p, 0.80) == 0.9  # unweighted, 1 of 3 would need 0.3
    assert choose_threshold(frame, p, 0.95) == 0.7  # 1.848 / 1.936 = 95.5%
    assert choose_threshold(frame, p, 1.0) == 0.3


def test_weighted_sensitivity_and_specificity_count_a_score_at_the_threshold_as_flagged(sources):
    frame, p = sources
    y = frame["target"].to_numpy(int)
    sens, spec = weighted_rates(prevalence_weights(frame), y, p, 0.7)
    assert sens == pytest.approx((PREV * 100 + PREV * 10 / 2) / (PREV * 100 + PREV * 10))
    # benign flagged: the enriched 0.85 (1 of 8) and the screening benign at exactly 0.7 (1 of 99)
    enriched, screening = (1 - PREV) * 10, (1 - PREV) * 100  # each source's benign weight
    assert spec == pytest.approx((enriched * 7 / 8 + screening * 98 / 99) / (enriched + screening))


def patients(groups: list[list[int]]) -> tuple[np.ndarray, triage_metrics.Patients]:
    frame = pd.DataFrame([{"group_id": f"p{g}", "target": t} for g, targets in enumerate(groups) for t in targets])
    return frame["target"].to_numpy(), triage_metrics.Patients.of(frame)


def test_a_melanoma_ranked_third_is_a_top3_hit_not_a_top1_hit():
    y, who = patients([[0, 0, 1, 0]])
    out = triage_metrics.patient_outcomes(np.array([0.9, 0.8, 0.7, 0.1]), None, y, who)
    assert (out["top1"][0], out["top3"][0]) == (0.0, 1.0)
    assert out["concordance"][0] == pytest.approx(1 / 3)


def test_a_patient_with_one_lesion_is_no_ranking_success():
    y, who = patients([[1], [1, 0]])
    out = triage_metrics.patient_outcomes(np.array([0.1, 0.9, 0.2]), None, y, who)
    assert np.isnan(out["top1"][0]) and np.isnan(out["top3"][0])  # nothing to rank it against
    assert out["top1"][1] == 1.0


def test_an_unscored_melanoma_counts_as_ranked_below_every_benign_lesion():
    y, who = patients([[1, 0, 0]])
    out = triage_metrics.patient_outcomes(np.array([np.nan, 0.2, 0.3]), None, y, who)
    assert out["concordance"][0] == 0.0 and out["top1"][0] == 0.0


def test_reviews_per_melanoma_are_read_at_90_percent_sensitivity():
    y = np.array([1] * 10 + [0] * 10)
    p = np.concatenate([np.linspace(0.1, 1.0, 10), np.linspace(0.05, 0.95, 10)])
    # 90%: threshold 0.2 flags 9 of 10 melanomas and clears 2 of 10 benign (0.05, 0.15)
    tp, fp = 0.9 * PREV, 0.8 * (1 - PREV)
    got = triage_metrics.lesion_metrics(y, p)["reviews_per_melanoma"]
    assert got == pytest.approx((tp + fp) / tp)
