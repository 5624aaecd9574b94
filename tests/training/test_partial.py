"""Partial fine-tuning: the cached-trunk path computes what the deployed network computes; the source
balancing and metadata dropout do what they claim; a tiny real run end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from data.metadata import MetadataEncoder
from model.checkpoint import load_checkpoint
from model.network import NetworkConfig
from model.pretrained import build_network
from training.balancing import balanced_draw_weights, metadata_dropout
from training.partial import freeze_trunk, modules_between, tail_forward, tail_parameters, trunk_modules


@pytest.fixture(scope="module")
def imagenet_net():
    """One ImageNet network in eval mode for the tests that only run it (building one takes seconds)."""
    return build_network(NetworkConfig(image_size=96), imagenet=True).eval()


@pytest.mark.parametrize("cut", ["blocks.5.2", "blocks.3.0", "blocks.6.0"])
def test_trunk_then_tail_equals_the_whole_network(cut, imagenet_net):
    net = imagenet_net
    net.partial_cut = cut
    x = torch.randn(3, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    meta = torch.from_numpy(net.config.encoder.encode(pd.DataFrame(index=range(3))))
    with torch.no_grad():
        whole = net(x, meta)
        split = tail_forward(net, trunk_modules(net.backbone, cut)(x), meta)
    assert torch.allclose(whole["logit"], split["logit"], atol=1e-5)
    assert torch.allclose(whole["embedding"], split["embedding"], atol=1e-5)


def test_a_cache_advanced_through_the_frozen_blocks_equals_a_deeper_trunk(imagenet_net):
    net = imagenet_net
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        shallow = trunk_modules(net.backbone, "blocks.5.2")(x)
        advanced = modules_between(net.backbone, "blocks.5.2", "blocks.6.0")(shallow)
        assert torch.allclose(advanced, trunk_modules(net.backbone, "blocks.6.0")(x), atol=1e-5)
    with pytest.raises(ValueError, match="cut blocks.5.2 lies before blocks.6.0"):
        modules_between(net.backbone, "blocks.6.0", "blocks.5.2")


def test_freeze_trunk_leaves_only_tail_and_heads_trainable():
    net = build_network(NetworkConfig(image_size=96), imagenet=True)
    freeze_trunk(net, "blocks.5.2")
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in tail_parameters(net, "blocks.5.2")}
    assert not any(p.requires_grad for p in trunk_modules(net.backbone, "blocks.5.2").parameters())


def test_bad_cut_is_refused_with_its_reason():
    net = build_network(NetworkConfig(image_size=96), imagenet=False)
    with pytest.raises(ValueError, match="blocks.<stage>.<block>"):
        trunk_modules(net.backbone, "stage5")
    with pytest.raises(ValueError, match="outside this backbone"):
        trunk_modules(net.backbone, "blocks.9.0")


def test_balanced_draws_give_every_source_the_same_melanoma_rate():
    records = pd.DataFrame(
        {
            "dataset": ["a"] * 100 + ["b"] * 400 + ["c"] * 50,
            "target": [1] * 51 + [0] * 49 + [1] * 4 + [0] * 396 + [1] * 10 + [0] * 40,
        }
    )
    w = balanced_draw_weights(records, prevalence=0.2)
    assert w.sum() == pytest.approx(1.0)
    for _, rows in records.groupby("dataset").groups.items():
        share = w[np.asarray(rows)][records.loc[rows, "target"].to_numpy() == 1].sum() / w[np.asarray(rows)].sum()
        assert share == pytest.approx(0.2)
    # sources drawn in proportion to sqrt(size)
    per_source = pd.Series(w).groupby(records["dataset"]).sum()
    assert per_source["b"] / per_source["a"] == pytest.approx(2.0)


def test_metadata_dropout_hides_fields_as_unknown():
    encoder = MetadataEncoder()
    frame = pd.DataFrame({"site": ["torso"] * 2000, "sex": ["male"] * 2000, "age": [50.0] * 2000})
    meta = torch.from_numpy(encoder.encode(frame))
    out = metadata_dropout(meta, encoder.names, 0.3, torch.Generator().manual_seed(1))
    names = encoder.names
    unknown_site = out[:, names.index("site=unknown")] == 1
    assert 0.25 < unknown_site.float().mean() < 0.35
    assert torch.all(out[unknown_site, names.index("site=torso")] == 0)
    site_cols = [i for i, n in enumerate(names) if n.startswith("site=")]
    assert torch.all(out[:, site_cols].sum(1) == 1)  # still one-hot
    hidden_age = out[:, names.index("age_missing")] == 1
    assert torch.all(out[hidden_age, names.index("age")] == 0)
    assert 0.25 < hidden_age.float().mean() < 0.35
    assert torch.equal(metadata_dropout(meta, names, 0.0, torch.Generator()), meta)


@pytest.mark.slow
def test_tiny_cached_run_end_to_end(datasets_dir, tmp_path):
    """Real images: cache a few per source, train CV + final for a few steps; the final checkpoint, loaded
    like any other, scores an image as the training code predicted it."""
    from data.images import decode_image
    from model.predictor import Predictor
    from training import train_cached, trunk_cache

    cache = tmp_path / "cache"
    args = ["--out", str(cache), "--limit-per-dataset", "12", "--image-size", "96", "--views", "3"]
    args += ["--colour-constancy-power", "6"]  # a pixel step before the trunk, which the checkpoint must carry
    assert trunk_cache.main([*args, "--datasets", "ham10000", "isic2020", "isic2020_patients", "derm7pt"]) == 0
    common = ["--cache", str(cache), "--datasets", "ham10000", "isic2020", "isic2020_patients"]
    common += ["--epochs", "1", "--samples-per-epoch", "64", "--batch-size", "16", "--n-folds", "2"]
    train_cached.main([*common, "--out", str(tmp_path / "cv"), "--fold", "all"])
    oof = pd.read_csv(tmp_path / "cv" / "oof.csv")
    assert len(oof) == 36 and set(oof["fold"]) == {"fold0", "fold1"}
    assert oof.groupby("group_id")["fold"].nunique().max() == 1  # a patient in one fold only
    train_cached.main([*common, "--out", str(tmp_path / "final"), "--fold", "none"])
    train_cached.main([*common, "--out", str(tmp_path / "rerun_seed7"), "--fold", "all", "--seed", "7"])
    model, config = load_checkpoint(tmp_path / "final" / "checkpoint")
    assert config["partial_cut"] == "blocks.6.0"  # trained from a deeper cut than the cache's (advanced once)
    assert config["preprocess"] == {"colour_constancy": {"power": 6.0}}  # so the predictor below applies it
    assert (cache / "derm7pt@blocks.6.0.npy").exists()
    external = pd.read_csv(tmp_path / "final" / "external_derm7pt.csv")
    assert len(external) == 12
    row = pd.read_csv(cache / "derm7pt.csv").iloc[0]
    predictor = Predictor(model, config, device="cpu")
    img = decode_image(row["image_path"])
    records = pd.DataFrame([{"site": row["site"], "sex": row["sex"], "age": np.nan}])
    p = predictor.predict_images([img], records, tta=2).p_melanoma[0]
    # the cache is float16: the deployed network reproduces the cached path to ~1e-3
    assert p == pytest.approx(float(external.loc[external["image_id"] == row["image_id"], "p_raw"].iloc[0]), abs=5e-3)
    json.loads((tmp_path / "final" / "summary.json").read_text())

    # assemble the shippable checkpoint from the run (no baselines folder: those rankings are left out)
    from training import assemble_default

    out = tmp_path / "shipped"
    args = ["--run", str(tmp_path), "--baselines", str(tmp_path / "none"), "--cache", str(cache)]
    assert assemble_default.main([*args, "--out", str(out), "--n-boot", "20"]) == 0
    _, shipped_config = load_checkpoint(out)
    assert shipped_config["inference"] == {"tta": 2}
    assert shipped_config["preprocess"] == {"colour_constancy": {"power": 6.0}}
    assert shipped_config["network"]["logit_scale"] != 1.0  # calibration travels with the weights
    assert 0 < shipped_config["operating_point"]["threshold"] < 1
    card = (out / "MODEL_CARD.md").read_text()
    sections = ("## Whole patients", "## Lesion-level validation", "## Goals", "derm7pt", "Missing metadata")
    for section in (*sections, "Shades of Gray"):
        assert section in card
    validation = json.loads((out / "validation.json").read_text())
    assert set(validation["per_dataset"]) == {"ham10000", "isic2020", "isic2020_patients"}
    # the seed rerun is compared image by image with the CV run, and the card says how far the figures moved
    rerun = validation["rerun"]["rerun_seed7"]
    assert rerun["n_images"] == 36 and "ham10000" in rerun["sources"]
    assert "**Run to run** (rerun seed7" in card
    # the ± and same-day re-photographs, checked out of fold for the model that ships
    stability = validation["score_stability"]
    assert stability["uncertainty"]["images"] == 36 and "rephotograph" in stability
    assert json.loads((out / "cv" / "summary.json").read_text())["config"]["fold"] == "all"  # the CV run's record


def test_an_interrupted_cache_is_refused_unless_partial_use_is_asked_for(tmp_path):
    from training.train_cached import load_cache

    (tmp_path / "cache.json").write_text(
        json.dumps({"backbone": "tf_efficientnet_lite0", "image_size": 96, "cut": "blocks.6.0"})
    )
    records = pd.DataFrame(
        {
            "image_path": ["x"] * 4,
            "image_id": [f"img{i}" for i in range(4)],
            "group_id": [f"img{i}" for i in range(4)],
            "dataset": "ham10000",
            "sex": "unknown",
            "age": np.nan,
            "site": "unknown",
            "diagnosis": "nevus",
            "target": [1, 0, 0, 0],
        }
    )
    records.to_csv(tmp_path / "ham10000.csv", index=False)
    np.save(tmp_path / "ham10000.npy", np.arange(4 * 2 * 3, dtype=np.float16).reshape(4, 2, 3, 1, 1))
    (tmp_path / "ham10000.progress").write_text("3")
    with pytest.raises(RuntimeError, match="incomplete \\(3/4\\)"):
        load_cache(tmp_path, ["ham10000"])
    data = load_cache(tmp_path, ["ham10000"], allow_partial=True)
    assert data.records["image_id"].tolist() == ["img0", "img1", "img2"]
    assert data.cache_meta["partial_datasets"] == {"ham10000": {"cached": 3, "listed": 4}}
    assert data.features[2, 1, :, 0, 0].tolist() == [15.0, 16.0, 17.0]
