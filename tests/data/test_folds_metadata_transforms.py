import numpy as np
import pandas as pd
import torch
from PIL import Image

from data.datasets import load_datasets
from data.folds import assign_folds
from data.metadata import MetadataEncoder
from data.transforms import eval_transform, train_transform


def test_folds_never_split_a_patient_or_lesion(datasets_dir):
    records = load_datasets(["isic2020", "ham10000"], datasets_dir)
    folds = assign_folds(records, n_folds=5, seed=1)
    assert set(folds) == {0, 1, 2, 3, 4}
    assert records.assign(fold=folds).groupby("group_id")["fold"].nunique().max() == 1
    rates = records.assign(fold=folds).groupby("fold")["target"].mean()
    assert rates.max() - rates.min() < 0.03  # stratified
    # Deterministic: checked on the ISIC 2020 patients alone (a second split of all 10,766 rows took 2.4 s of CPU;
    # the seeded shuffle does not depend on how many rows there are).
    isic = records[records["dataset"] == "isic2020"]
    assert len(isic) > 500 and (assign_folds(isic, n_folds=5, seed=1) == assign_folds(isic, n_folds=5, seed=1)).all()


def test_folds_share_out_each_datasets_melanomas_evenly():
    # Two datasets alike in everything but their name: stratified on the target alone, one fold could take all
    # of one dataset's melanomas and none of the other's (a per-source figure of that fold would be empty).
    records = pd.concat(
        [
            pd.DataFrame(
                {"dataset": name, "group_id": [f"{name}{i}" for i in range(60)], "target": [1] * 10 + [0] * 50}
            )
            for name in ("a", "b")
        ],
        ignore_index=True,
    )
    for seed in range(3):
        folds = records.assign(fold=assign_folds(records, n_folds=5, seed=seed))
        per_fold = folds.groupby(["dataset", "fold"])["target"].agg(["sum", "count"])
        assert (per_fold["sum"] == 2).all(), seed  # each dataset: 10 melanomas in 5 folds
        assert (per_fold["count"] == 12).all(), seed


def test_metadata_encoding_has_unknowns():
    enc = MetadataEncoder()
    frame = pd.DataFrame({"site": ["torso", "knee", None], "sex": ["male", "unknown", None], "age": [50, None, 30]})
    x = enc.encode(frame)
    assert x.shape == (3, enc.dim)
    names = enc.names
    assert x[0, names.index("site=torso")] == 1
    assert x[1, names.index("site=unknown")] == 1 and x[2, names.index("site=unknown")] == 1
    assert x[1, names.index("age_missing")] == 1 and x[1, names.index("age")] == 0
    assert np.isclose(x[0, names.index("age")], 0.5)
    assert (x[:, : len(enc.sites)].sum(1) == 1).all()
    assert MetadataEncoder.from_dict(enc.to_dict()) == enc


def test_transforms_give_normalised_square_tensors():
    img = Image.new("RGB", (200, 150), (200, 120, 90))
    for transform in (train_transform(96, (0.5,) * 3, (0.5,) * 3), eval_transform(96, (0.5,) * 3, (0.5,) * 3)):
        x = transform(img)
        assert x.shape == (3, 96, 96) and x.dtype == torch.float32
        assert float(x.min()) >= -1.01 and float(x.max()) <= 1.01


def test_reencode_limits_size_and_is_deterministic(datasets_dir):
    from data.transforms import Reencode

    path = next((datasets_dir / "isic2020" / "train").glob("*.jpg"))
    with Image.open(path) as img:
        codec = Reencode("WEBP", 75, 384)
        out = codec(img)
        assert out.mode == "RGB" and max(out.size) == 384
        assert codec.encode(img) == codec.encode(img)


def _skin_like(size: int = 64) -> np.ndarray:
    """A lesion-like image under white light: a dark brown disc on lighter skin, with texture."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2
    rgb = np.where(disc[..., None], [110.0, 80.0, 60.0], [200.0, 170.0, 160.0])
    return np.clip(rgb + rng.normal(0, 8, rgb.shape), 0, 255)


def test_shades_of_gray_divides_out_the_colour_of_the_light():
    from data.transforms import ShadesOfGray

    white = _skin_like()
    tinted = np.clip(white * [1.25, 1.0, 0.7], 0, 255)  # the same scene under a warm light / white balance
    constancy = ShadesOfGray(power=6)
    a = np.asarray(constancy(Image.fromarray(white.astype(np.uint8))), float)
    b = np.asarray(constancy(Image.fromarray(tinted.astype(np.uint8))), float)
    # colour, not brightness: compared at equal mean brightness (the tint also changed the light's strength)
    before = np.abs(white / white.mean() - tinted / tinted.mean()).mean(axis=(0, 1)) * 160
    after = np.abs(a / a.mean() - b / b.mean()).mean(axis=(0, 1)) * 160
    assert before.max() > 30 and after.max() < 3  # the cast is gone, the lesion's own colours stay
    assert np.asarray(constancy(Image.fromarray(white.astype(np.uint8)))).shape == (64, 64, 3)
    grey = Image.new("RGB", (50, 40), (120, 120, 120))
    assert np.allclose(constancy.gains(grey), 1.0)  # neutral light: nothing to correct
    black = Image.new("RGB", (50, 40), (0, 0, 0))
    assert np.array_equal(np.asarray(constancy(black)), np.asarray(black))  # no light to estimate: unchanged
    big = Image.fromarray(np.kron(tinted, np.ones((8, 8, 1))).astype(np.uint8))  # 512 px: estimated on a copy
    assert np.allclose(constancy.gains(big), constancy.gains(Image.fromarray(tinted.astype(np.uint8))), atol=0.02)


def test_recorded_pixel_steps_run_before_the_eval_transform_and_unknown_ones_are_refused():
    import pytest

    from data.transforms import Reencode, ShadesOfGray, inference_transform, preprocess_steps, with_reencode

    img = Image.fromarray(np.clip(_skin_like() * [1.25, 1.0, 0.7], 0, 255).astype(np.uint8))
    mean = std = (0.5,) * 3
    recorded = {"colour_constancy": {"power": 6.0}, "reencode": {"format": "WEBP", "quality": 75}}
    steps = preprocess_steps(recorded)
    assert [type(s) for s in steps] == [Reencode, ShadesOfGray]  # the codec first, as the images were stored
    x = inference_transform(64, mean, std, {"colour_constancy": {"power": 6.0}})(img)
    assert torch.equal(x, eval_transform(64, mean, std)(ShadesOfGray(6.0)(img)))
    assert not torch.allclose(x, eval_transform(64, mean, std)(img))
    with pytest.raises(ValueError, match="unknown preprocessing step"):
        preprocess_steps({"white_balance": {}})
    # re-encoding can be swapped (codec and transport checks) without losing the other recorded steps
    config = {"model_id": "m", "preprocess": recorded}
    assert with_reencode(config, None)["preprocess"] == {"colour_constancy": {"power": 6.0}}
    assert "preprocess" not in with_reencode({"preprocess": {"reencode": recorded["reencode"]}}, None)
    assert with_reencode(config, {"format": "JPEG", "quality": 90})["preprocess"]["reencode"]["format"] == "JPEG"
