"""Batch augmentation (what feeds a GPU): shapes, reproducibility, what each part does, and that the
geometry is one affine map whose identity setting is a plain resize."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from data.metadata import MetadataEncoder
from training.batch_augment import BatchAugment
from training.decoded_images import decode_all

MEAN = STD = (0.5, 0.5, 0.5)


def images(n: int = 6, side: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    base = torch.randint(0, 256, (n, 3, side // 8, side // 8), generator=g, dtype=torch.uint8)
    return F.interpolate(base.float(), size=side, mode="bilinear").round().clamp(0, 255).to(torch.uint8)


def test_output_is_normalised_float_at_the_network_size_and_reproducible():
    augment = BatchAugment(48, MEAN, STD)
    x = augment(images(), torch.Generator().manual_seed(1))
    assert x.shape == (6, 3, 48, 48) and x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert torch.equal(x, augment(images(), torch.Generator().manual_seed(1)))
    assert not torch.equal(x, augment(images(), torch.Generator().manual_seed(2)))


def test_with_every_random_part_off_it_is_a_resize_and_normalisation():
    still = BatchAugment(
        32, MEAN, STD, degrade=False, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), p_affine=0.0,
        brightness=0.0, contrast=0.0, saturation=0.0,
    )  # fmt: skip
    # flips and quarter turns stay random: compare with all eight dihedral views of the plain resize
    src = images(1, 64)
    plain = (F.interpolate(src.float() / 255, size=32, mode="bilinear", align_corners=False) - 0.5) / 0.5
    views = [plain, plain.flip(-1), plain.flip(-2), plain.flip(-1, -2)]
    views += [v.transpose(-2, -1) for v in views]
    for seed in range(6):
        out = still(src, torch.Generator().manual_seed(seed))
        assert min((out - v).abs().max().item() for v in views) < 1e-4


def test_degradation_changes_pixels_only_where_chosen():
    src = images(8, 128)
    always = BatchAugment(128, MEAN, STD, p_resample=1.0, p_compress=1.0)
    never = BatchAugment(128, MEAN, STD, p_resample=0.0, p_compress=0.0)
    g = torch.Generator().manual_seed(3)
    assert not torch.equal(always.resample(src, g), src)
    assert not torch.equal(always.compress(src, g), src)
    assert torch.equal(never.resample(src, g), src) and torch.equal(never.compress(src, g), src)


def test_colour_jitter_stays_within_its_range():
    augment = BatchAugment(16, MEAN, STD, brightness=0.2, contrast=0.0, saturation=0.0)
    grey = torch.full((200, 3, 16, 16), 0.5)
    out = augment.colour(grey, torch.Generator().manual_seed(0))
    means = out.mean((1, 2, 3))
    assert means.min() >= 0.4 - 1e-6 and means.max() <= 0.6 + 1e-6
    assert means.std() > 0.03  # it does vary


def test_bad_input_is_refused_with_what_was_given():
    with pytest.raises(ValueError, match="expected uint8 images"):
        BatchAugment(16, MEAN, STD)(torch.zeros(2, 3, 16, 16), torch.Generator())


def test_decode_all_squashes_to_the_side_like_the_predictor(tmp_path):
    from PIL import Image

    Image.new("RGB", (200, 150), (200, 10, 10)).save(tmp_path / "a.png")
    Image.new("RGB", (64, 64), (0, 0, 250)).save(tmp_path / "b.png")
    out = decode_all([tmp_path / "a.png", tmp_path / "b.png"], 32)
    assert out.shape == (2, 3, 32, 32) and out.dtype == torch.uint8
    assert out[0, :, 5, 5].tolist() == [200, 10, 10] and out[1, :, 5, 5].tolist() == [0, 0, 250]


def test_decode_all_applies_the_recorded_pixel_steps_before_the_resize(tmp_path):
    from PIL import Image

    from data.transforms import ShadesOfGray

    image = Image.new("RGB", (120, 90), (180, 120, 60))  # a warm cast over a uniform skin tone
    image.paste((90, 40, 30), (40, 30, 80, 60))
    image.save(tmp_path / "a.png")
    steps = {"colour_constancy": {"power": 6.0}}
    out = decode_all([tmp_path / "a.png"], 32, preprocess=steps)
    expected = ShadesOfGray(6.0)(image).resize((32, 32), Image.Resampling.BICUBIC, reducing_gap=None)
    assert out[0].permute(1, 2, 0).numpy().tolist() == np.asarray(expected).tolist()
    assert not torch.equal(out, decode_all([tmp_path / "a.png"], 32))  # the step did something
    with pytest.raises(ValueError, match="unknown preprocessing step"):
        decode_all([tmp_path / "a.png"], 32, preprocess={"sharpen": {}})


def test_augmented_batches_follow_the_sampler_and_drop_metadata():
    from data.dataset import LesionDataset
    from training.balancing import BalancedDistributedSampler
    from training.train_config import TrainConfig
    from training.train_data import AugmentedBatches

    encoder = MetadataEncoder()
    frame = pd.DataFrame(
        {
            "image_path": ["x"] * 40, "target": [1] * 4 + [0] * 36, "diagnosis": "nevus", "dataset": "a",
            "site": "torso", "sex": "female", "age": 50.0,
        }
    )  # fmt: skip
    dataset = LesionDataset(frame, lambda img: img, encoder)
    sampler = BalancedDistributedSampler(np.full(40, 1 / 40), 32, seed=0)
    cfg = TrainConfig(batch_size=8, meta_dropout=0.5, seed=0)
    feed = AugmentedBatches(images(40, 32), dataset, sampler, BatchAugment(24, MEAN, STD), encoder.names, cfg, 0)
    feed.sampler.set_epoch(0)
    batches = list(feed)
    assert len(batches) == len(feed) == 4
    assert torch.cat([b["index"] for b in batches]).tolist() == list(sampler)
    assert batches[0]["image"].shape == (8, 3, 24, 24)
    hidden = torch.cat([b["meta"][:, encoder.names.index("site=unknown")] for b in batches])
    assert 0 < hidden.sum() < 32
    feed.sampler.set_epoch(0)
    assert torch.equal(next(iter(feed))["image"], batches[0]["image"])  # reproducible per epoch


def test_within_patient_pairs_ride_after_the_draws_and_only_when_the_loss_is_on():
    from data.dataset import LesionDataset
    from training.balancing import BalancedDistributedSampler
    from training.train_config import TrainConfig
    from training.train_data import AugmentedBatches

    encoder = MetadataEncoder()
    frame = pd.DataFrame(
        {
            "image_path": ["x"] * 40, "target": [1] * 4 + [0] * 36, "diagnosis": "nevus", "dataset": "a",
            "site": "torso", "sex": "female", "age": np.arange(40, dtype=float) + 20,
        }
    )  # fmt: skip
    dataset = LesionDataset(frame, lambda img: img, encoder)
    pairs = np.array([[0, 10], [1, 11], [1, 12]])
    sampler = BalancedDistributedSampler(np.full(40, 1 / 40), 32, seed=0)
    on = TrainConfig(batch_size=8, seed=0, pair_loss_weight=0.5, pairs_per_batch=3)
    feed = AugmentedBatches(images(40, 32), dataset, sampler, BatchAugment(24, MEAN, STD), encoder.names, on, 0, pairs)
    feed.sampler.set_epoch(0)
    batch = next(iter(feed))
    assert batch["image"].shape == (8 + 2 * 3, 3, 24, 24) and len(batch["meta"]) == 14
    assert len(batch["target"]) == len(batch["index"]) == 8  # the loss's pointwise part sees the draws only
    appended = batch["meta"][8:]  # no metadata dropout here: each row is its image's own (ages differ)
    rows = [next(r for r in range(40) if torch.equal(dataset.meta[r], m)) for m in appended]
    melanomas, benign = rows[:3], rows[3:]
    assert all([m, b] in pairs.tolist() for m, b in zip(melanomas, benign, strict=True))  # whole pairs, in order
    off = TrainConfig(batch_size=8, seed=0, pair_loss_weight=0.0, pairs_per_batch=3)
    plain = AugmentedBatches(
        images(40, 32), dataset, sampler, BatchAugment(24, MEAN, STD), encoder.names, off, 0, pairs
    )
    plain.sampler.set_epoch(0)
    assert next(iter(plain))["image"].shape[0] == 8


def test_the_ranking_term_is_added_to_the_pointwise_loss_on_the_pair_rows():
    from training.optimisation import compute_loss
    from training.train_config import TrainConfig
    from training.within_patient import pairwise_ranking_loss

    cfg = TrainConfig(pair_loss_weight=0.5, diagnosis_loss_weight=0.0)
    draws = torch.tensor([2.0, -1.0, 0.5])
    melanoma, benign = torch.tensor([1.0, 2.0]), torch.tensor([0.0, -3.0])  # both pairs in the right order
    batch = {"target": torch.tensor([1.0, 0.0, 1.0])}
    pointwise = F.binary_cross_entropy_with_logits(draws, batch["target"])
    loss = compute_loss({"logit": torch.cat([draws, melanoma, benign])}, batch, None, cfg)
    assert loss.item() == pytest.approx((pointwise + 0.5 * pairwise_ranking_loss(melanoma, benign)).item())
    swapped = compute_loss({"logit": torch.cat([draws, benign, melanoma])}, batch, None, cfg)
    assert swapped > loss  # a benign lesion above its patient's melanoma costs more
    off = compute_loss({"logit": draws}, batch, None, TrainConfig(diagnosis_loss_weight=0.0))
    assert off.item() == pytest.approx(pointwise.item())
