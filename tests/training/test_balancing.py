"""Source-balanced draws for the full fine-tune: the DDP split, the epochs, the balance itself; and metadata
dropout drawn per training image."""

import numpy as np
import pandas as pd
import pytest
import torch

from data.metadata import MetadataEncoder
from training.balancing import BalancedDistributedSampler, balanced_draw_weights
from training.train_data import SeededAugment


def records() -> pd.DataFrame:
    # source a: 900 images, half melanoma; source b: 100 images, 2 melanomas
    return pd.DataFrame(
        {"dataset": ["a"] * 900 + ["b"] * 100, "target": [1, 0] * 450 + [1] * 2 + [0] * 98},
    )


def test_ranks_together_draw_what_one_process_draws():
    w = balanced_draw_weights(records(), 0.15)
    one = BalancedDistributedSampler(w, 600, world_size=1, rank=0, seed=3)
    ranks = [BalancedDistributedSampler(w, 600, world_size=3, rank=r, seed=3) for r in range(3)]
    for epoch in (0, 1):
        for s in (one, *ranks):
            s.set_epoch(epoch)
        single = list(one)
        parts = [list(r) for r in ranks]
        assert [len(p) for p in parts] == [200, 200, 200] == [len(r) for r in ranks]
        interleaved = [parts[i % 3][i // 3] for i in range(600)]
        assert interleaved == single


def test_each_epoch_draws_anew_and_reproducibly():
    w = balanced_draw_weights(records(), 0.15)
    s = BalancedDistributedSampler(w, 500, seed=1)
    s.set_epoch(0)
    first = list(s)
    s.set_epoch(1)
    second = list(s)
    s.set_epoch(0)
    assert list(s) == first
    assert first != second


def test_draws_give_every_source_the_same_melanoma_rate():
    frame = records()
    s = BalancedDistributedSampler(balanced_draw_weights(frame, 0.15), 40_000, seed=0)
    drawn = frame.iloc[list(s)]
    rates = drawn.groupby("dataset")["target"].mean()
    assert rates["a"] == pytest.approx(0.15, abs=0.015)  # was 0.50
    assert rates["b"] == pytest.approx(0.15, abs=0.03)  # was 0.02
    share_b = (drawn["dataset"] == "b").mean()
    assert share_b == pytest.approx(np.sqrt(100) / (np.sqrt(100) + np.sqrt(900)), abs=0.02)  # sqrt(size) shares


def test_too_few_draws_for_the_ranks_is_refused():
    with pytest.raises(ValueError, match="at least the number of ranks"):
        BalancedDistributedSampler(np.ones(4) / 4, 1, world_size=2)


class _Items(torch.utils.data.Dataset):
    def __init__(self, meta: torch.Tensor):
        self.meta = meta

    def __len__(self) -> int:
        return len(self.meta)

    def __getitem__(self, index: int) -> dict:
        return {"meta": self.meta[index].clone()}


def test_metadata_dropout_is_drawn_per_image_and_epoch_and_reproducible():
    encoder = MetadataEncoder()
    frame = pd.DataFrame({"site": ["torso"] * 200, "sex": ["female"] * 200, "age": [55.0] * 200})
    meta = torch.from_numpy(encoder.encode(frame))
    names = encoder.names
    augment = SeededAugment(_Items(meta), seed=5, meta_dropout=0.5, meta_names=names)
    epoch0 = torch.stack([augment[i]["meta"] for i in range(200)])
    again = torch.stack([augment[i]["meta"] for i in range(200)])
    epoch1 = torch.stack([augment[200 + i]["meta"] for i in range(200)])  # epoch 1 travels inside the index
    assert torch.equal(epoch0, again)
    assert not torch.equal(epoch0, epoch1)
    hidden_site = epoch0[:, names.index("site=unknown")] == 1
    hidden_age = epoch0[:, names.index("age_missing")] == 1
    assert 0.35 < hidden_site.float().mean() < 0.65
    assert 0.35 < hidden_age.float().mean() < 0.65
    assert (epoch0[hidden_site, names.index("site=torso")] == 0).all()
    untouched = SeededAugment(_Items(meta), seed=5)
    assert torch.equal(torch.stack([untouched[i]["meta"] for i in range(200)]), meta)


def test_metadata_dropout_needs_the_column_names():
    with pytest.raises(ValueError, match="column names"):
        SeededAugment(_Items(torch.zeros(2, 3)), seed=0, meta_dropout=0.3)


@pytest.mark.parametrize(("power", "share_a"), [(0.5, 3 / 4), (0.0, 1 / 2), (1.0, 9 / 10)])
def test_a_sources_share_of_draws_follows_its_size_to_the_chosen_power(power, share_a):
    frame = records()  # a: 900 images, b: 100
    w = balanced_draw_weights(frame, 0.15, share_power=power)
    assert w.sum() == pytest.approx(1.0)
    assert w[frame["dataset"].to_numpy() == "a"].sum() == pytest.approx(share_a)
    for source in ("a", "b"):  # the melanoma rate inside each source stays the same whatever the shares
        inside = frame["dataset"].to_numpy() == source
        rate = w[inside & (frame["target"].to_numpy() == 1)].sum() / w[inside].sum()
        assert rate == pytest.approx(0.15)
