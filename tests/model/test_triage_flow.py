"""The per-patient flow's smaller promises: the percentile a lesion is shown with, the reasons' wording at their
edges, the floor on the ugly-duckling comparison's size, and the CPU twin's refusal of a fold that changes scores."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
from PIL import Image

from model import fast_cpu
from model.predictor import Predictor
from model.triage import UNSTABLE_SPREAD, LesionInput, _reasons, triage_patient
from model.triage_settings import triage_settings


def reasons(p=0.2, spread=0.01, ud=float("nan"), n=4, rank=2) -> str:
    return _reasons(p, spread, ud, n, threshold=0.5, outlier_z=2.5, rank=rank)


def test_the_top_lesion_is_called_first_only_when_there_was_something_to_rank_it_against():
    assert "ranked first of 4 lesions" in reasons(rank=1)
    assert "ranked first" not in reasons(n=1, rank=1)  # a lone lesion is not "first of 1"
    assert "ranked first" not in reasons(rank=2)


def test_a_score_that_moves_by_the_unstable_spread_with_orientation_is_called_unstable():
    assert "changes with image orientation" in reasons(spread=UNSTABLE_SPREAD)
    assert "changes with image orientation" not in reasons(spread=UNSTABLE_SPREAD - 0.001)


def test_the_highest_score_has_the_100th_percentile(tiny_checkpoint):
    predictor = Predictor.from_checkpoint(tiny_checkpoint, device="cpu")
    rng = np.random.default_rng(3)
    lesions = [
        LesionInput(f"lesion{i}", Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))) for i in range(5)
    ]
    table = triage_patient(predictor, lesions, workers=1).table
    assert table.p_melanoma.nunique() == 5
    order = table.sort_values("p_melanoma").reset_index(drop=True)
    np.testing.assert_allclose(order.percentile, [20, 40, 60, 80, 100])


@pytest.mark.parametrize("given,used", [(1, 3), (2, 3), (3, 3), (5, 5)])
def test_the_ugly_duckling_comparison_never_runs_on_fewer_than_three_lesions(given, used):
    assert triage_settings({"min_lesions": given})["min_lesions"] == used


@pytest.mark.parametrize(
    "wrong_eps",
    [
        pytest.param(lambda eps: 0.0, id="eps-ignored"),  # a channel with zero running variance: NaN scores
        pytest.param(lambda eps: 100 * eps, id="eps-100x"),  # finite scores, off by ~0.1 in the logit
    ],
)
def test_a_fold_that_changes_the_scores_is_refused_and_the_original_network_scores(
    predictor, monkeypatch, caplog, wrong_eps
):
    """The twin is checked against the original on a dry run; a fold that gets BatchNorm's eps wrong (a classic
    folding bug) moves the logits, or makes them NaN, and the twin must then not be used."""
    from torch.nn.utils import fusion

    real = fusion.fuse_conv_bn_eval

    def wrong_fold(conv, bn):
        bn = copy.deepcopy(bn)
        bn.eps = wrong_eps(bn.eps)
        return real(conv, bn)

    assert fast_cpu._make_twin(predictor) is not predictor  # the true fold is used
    monkeypatch.setattr(fusion, "fuse_conv_bn_eval", wrong_fold)
    with caplog.at_level(logging.WARNING, logger="model.fast_cpu"):
        assert fast_cpu._make_twin(predictor) is predictor
    assert "does not reproduce the original" in caplog.text
