"""The within-patient ranking loss: which pairs it learns from, how they are drawn, and that it trains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from training.within_patient import pair_draw_weights, pairwise_ranking_loss, within_patient_pairs


def records(rows: list[tuple[str, int]]) -> pd.DataFrame:
    """Combined records: the group id is "<population>:<group>" and the population is the dataset here."""
    frame = pd.DataFrame(rows, columns=["group_id", "target"]).astype({"target": "Int64"})
    return frame.assign(dataset=frame["group_id"].str.split(":").str[0])


def test_pairs_join_a_melanoma_to_each_benign_lesion_of_its_own_patient_only():
    frame = records(
        [
            ("isic2020:IP_1", 1),
            ("isic2020:IP_1", 0),
            ("isic2020:IP_1", 0),
            ("isic2020:IP_2", 0),  # another patient's benign lesion: never paired with IP_1's melanoma
            ("isic2020:IP_3", 1),  # a patient with no benign lesion: no pair
            ("ham10000:HAM_1", 1),  # HAM10000 groups are lesions, not patients
            ("ham10000:HAM_1", 0),
            ("isic2020:IP_4", pd.NA),  # unlabelled: never paired
            ("isic2020:IP_4", 1),
            ("isic2020:IP_4", 0),
        ]
    )
    pairs = within_patient_pairs(frame)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (0, 2), (8, 9)]


def test_a_training_set_without_patients_gives_no_pairs():
    assert within_patient_pairs(records([("ham10000:HAM_1", 1), ("ham10000:HAM_1", 0)])).shape == (0, 2)
    assert len(pair_draw_weights(np.zeros((0, 2), dtype=np.int64))) == 0


def test_every_melanoma_is_drawn_equally_often_whatever_its_patients_size():
    pairs = np.array([(0, 1), (0, 2), (0, 3), (0, 4), (5, 6)])  # melanoma 0 has 4 benign partners, 5 has one
    weights = pair_draw_weights(pairs)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[:4].sum() == pytest.approx(weights[4]) == pytest.approx(0.5)


def test_the_loss_falls_as_the_melanoma_moves_above_its_neighbour():
    benign = torch.zeros(3)
    losses = [float(pairwise_ranking_loss(torch.full((3,), d), benign)) for d in (-2.0, 0.0, 2.0)]
    assert losses[0] > losses[1] > losses[2]
    assert losses[1] == pytest.approx(np.log(2))


def synthetic_cache(n_patients: int = 12, lesions: int = 6, seed: int = 0):
    """Cached activations at blocks.6.0 (64 px input) for whole patients; one melanoma per patient."""
    from training.train_cached import CachedData

    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for k in range(lesions):
            rows.append(
                {
                    "image_id": f"ISIC_{p:03d}{k}",
                    "group_id": f"isic2020:IP_{p}",
                    "dataset": "isic2020_patients",
                    "target": int(k == 0),
                    "diagnosis": "melanoma" if k == 0 else "nevus",
                    "site": "torso",
                    "sex": "female",
                    "age": 50.0,
                }
            )
    frame = pd.DataFrame(rows).astype({"target": "Int64"})
    features = torch.from_numpy(rng.normal(size=(len(frame), 3, 192, 2, 2)).astype(np.float16))
    meta = {"backbone": "tf_efficientnet_lite0", "image_size": 64, "cut": "blocks.6.0", "trained_from": "blocks.6.0"}
    return CachedData(frame, features, meta)


def test_the_ranking_term_changes_training_and_leaves_the_pointwise_recipe_as_it_was():
    from training.train_cached import CachedTrainConfig, fit_tail

    data = synthetic_cache()
    idx = np.arange(len(data.records))
    base = dict(epochs=1, samples_per_epoch=64, batch_size=16, warmup_epochs=0.25)
    plain = [fit_tail(data, idx, CachedTrainConfig(**base), seed=3, desc="t")[1] for _ in range(2)]
    assert plain[0] == plain[1]  # deterministic: the comparison below is not noise
    off = fit_tail(data, idx, CachedTrainConfig(**base, pair_loss_weight=0.0, pairs_per_batch=4), 3, "t")[1]
    assert off == plain[0]  # weight 0: no pairs drawn, the random stream untouched
    ranked = fit_tail(data, idx, CachedTrainConfig(**base, pair_loss_weight=1.0, pairs_per_batch=4), 3, "t")[1]
    assert ranked != plain[0]
    assert np.isfinite(ranked[0]["loss"])
