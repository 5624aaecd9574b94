"""The evidence behind the follow-up picker's order (training/lesion_matching.py): the sets it draws, the ranks
it counts, and the card's sentence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from training.card_lines import lesion_matching_lines
from training.lesion_matching import evaluate, matching_sets, rank_of_match, turned


def _records() -> pd.DataFrame:
    rows = []
    for lesion in range(6):  # lesions 0-2 photographed twice, 3-5 once
        for shot in range(2 if lesion < 3 else 1):
            rows.append(
                {
                    "image_id": f"img{lesion}{shot}",
                    "image_path": f"/x/{lesion}{shot}.jpg",
                    "group_id": f"L{lesion}",
                    "site": "torso" if lesion % 2 else "head/neck",
                }
            )
    return pd.DataFrame(rows)


def test_pairs_are_two_photos_of_one_lesion_and_the_distractors_are_other_lesions():
    pairs, distractors = matching_sets(_records(), lesions=2, per_site=5, seed=0)
    assert len(pairs) == 2
    for row in pairs.itertuples():
        assert row.new != row.stored and row.new[:4] == row.stored[:4]  # /x/N0 and /x/N1: one lesion
    assert not set(distractors["group_id"]) & set(pairs["group_id"])
    assert distractors["group_id"].is_unique  # one photo of each other lesion
    _, capped = matching_sets(_records(), lesions=2, per_site=1, seed=0)
    assert capped.groupby("site").size().max() == 1


def test_the_rank_counts_distractors_strictly_closer_than_the_lesions_own_photo():
    new = np.array([1.0, 0.0])
    stored = np.array([0.8, 0.6])
    distractors = np.array([[0.9, np.sqrt(1 - 0.81)], [0.0, 1.0], [0.8, -0.6]])  # closer, farther, a tie
    assert rank_of_match(new, stored, distractors) == 2


def test_a_turned_photo_keeps_its_pixels():
    image = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4))
    assert turned(image, 0, False) is image
    assert turned(image, 1, False).size == (3, 4) and turned(image, 2, True).size == (4, 3)
    assert sorted(np.asarray(turned(image, 3, True)).ravel()) == list(range(12))


def test_figures_count_copies_apart_and_compare_with_a_random_order():
    rng = np.random.default_rng(0)
    stored = rng.normal(size=(4, 32))
    new = stored + rng.normal(scale=0.6, size=(4, 32))  # a second photo: near its own lesion, not a copy
    new[3] = stored[3]  # a copy of one photo
    others = rng.normal(size=(9, 32))
    result = evaluate(new, new, stored, ["a"] * 4, others, ["a"] * 9, candidates=10, seed=0)
    assert result["lesions"] == 3 and result["copies_left_out"] == 1
    assert result["first"]["value"] == 1.0 and result["candidates"] == 10
    assert result["random_first"] == pytest.approx(0.1) and result["random_top3"] == pytest.approx(0.3)
    far = evaluate(-stored, -stored, stored, ["a"] * 4, others, ["a"] * 9, candidates=10, seed=0)
    assert far["first"]["value"] == 0.0  # its own photo the least alike: never first


def test_the_card_states_the_measurement_and_its_limits():
    assert lesion_matching_lines(None) == []
    lines = lesion_matching_lines(
        {
            "data": "HAM10000 lesions photographed twice (lesion_id)",
            "lesions": 590,
            "candidates": 40,
            "first": {"value": 0.6, "ci": [0.56, 0.64]},
            "top3": {"value": 0.74, "ci": [0.7, 0.77]},
            "random_first": 0.025,
            "random_top3": 0.075,
            "copies_left_out": 10,
        }
    )
    text = "\n".join(lines)
    assert "came first in 0.60 (0.56–0.64) (random order 0.03)" in text
    assert "10 pairs that were copies of one photo were left out" in text and "upper bound" in text
