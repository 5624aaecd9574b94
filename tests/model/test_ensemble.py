"""The shared-trunk ensemble: one trunk pass, the mean of the members' logits; saved, loaded, scored, explained
and folded for the CPU like a single network; members whose trunks differ are refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from model.cuts import trunk_modules
from model.ensemble import SharedTrunkEnsemble
from model.network import MelanomaNet, NetworkConfig

CONFIG = NetworkConfig(backbone="test_efficientnet", image_size=64)
SHARED = "blocks.2.0"


def members(seed: int = 0) -> list[MelanomaNet]:
    """Two networks with the same trunk up to SHARED and different tails and heads (as two partial
    fine-tunes of one ImageNet network would be)."""
    torch.manual_seed(seed)
    first = MelanomaNet(CONFIG).eval()
    second = MelanomaNet(CONFIG).eval()
    second.load_state_dict(first.state_dict())
    with torch.no_grad():
        for p in [*second.backbone.blocks[2:].parameters(), *second.melanoma_head.parameters()]:
            p.add_(0.2 * torch.randn_like(p))
    return [first, second]


def inputs(n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    meta = pd.DataFrame({"site": ["torso", "lower extremity", "unknown"][:n], "sex": "female", "age": 50.0})
    return x, torch.from_numpy(CONFIG.encoder.encode(meta))


def test_the_ensemble_scores_the_mean_of_its_members_logits_after_its_own_calibration():
    nets = members()
    ensemble = SharedTrunkEnsemble.from_members(nets, SHARED)
    x, meta = inputs()
    with torch.no_grad():
        parts = [net(x, meta) for net in nets]
        out = ensemble(x, meta)
        ensemble.config.logit_scale, ensemble.config.logit_bias = 0.5, -2.0
        calibrated = ensemble(x, meta)
    mean = (parts[0]["logit"] + parts[1]["logit"]) / 2
    assert not torch.allclose(parts[0]["logit"], parts[1]["logit"])  # the members really differ
    assert torch.allclose(out["logit"], mean, atol=1e-6)
    assert torch.allclose(calibrated["logit"], 0.5 * mean - 2.0, atol=1e-6)
    assert torch.equal(out["embedding"], torch.cat([parts[0]["embedding"], parts[1]["embedding"]], 1))
    assert ensemble.embedding_dim == 2 * nets[0].embedding_dim == out["embedding"].shape[1]
    diagnosis = (parts[0]["diagnosis_logits"] + parts[1]["diagnosis_logits"]) / 2
    assert torch.allclose(out["diagnosis_logits"], diagnosis, atol=1e-6)


def test_forward_from_an_earlier_cut_equals_the_whole_forward_and_a_later_cut_is_refused():
    ensemble = SharedTrunkEnsemble.from_members(members(), SHARED)
    x, meta = inputs()
    first = ensemble.members[0].backbone
    with torch.no_grad():
        whole = ensemble(x, meta)["logit"]
        from_cut = ensemble.forward_from(trunk_modules(first, "blocks.1.0")(x), meta, "blocks.1.0")["logit"]
    assert torch.allclose(whole, from_cut, atol=1e-6)
    with pytest.raises(ValueError, match="after the shared trunk"):
        ensemble.forward_from(trunk_modules(first, "blocks.3.0")(x), meta, "blocks.3.0")


def test_members_whose_trunks_differ_are_refused_when_combined_and_when_loaded(tmp_path):
    nets = members()
    with torch.no_grad():
        nets[1].backbone.conv_stem.weight.add_(0.01)
    with pytest.raises(ValueError, match=r"member 1 differs from member 0 in the shared trunk .* at 0\.weight"):
        SharedTrunkEnsemble.from_members(nets, SHARED)
    # a checkpoint saved with such weights (its recorded hash is right) is refused at load, with the reason
    ensemble = SharedTrunkEnsemble.from_members(members(), SHARED)
    with torch.no_grad():
        ensemble.members[1].backbone.blocks[0][0].conv.weight.add_(0.01)
    save_checkpoint(tmp_path / "bad", ensemble)
    with pytest.raises(CheckpointError, match="member 1 differs from member 0 in the shared trunk"):
        load_checkpoint(tmp_path / "bad")


def test_members_that_differ_in_more_than_weights_are_refused():
    other = MelanomaNet(NetworkConfig(backbone="test_efficientnet", image_size=64, meta_hidden=16)).eval()
    with pytest.raises(ValueError, match="differ in more than their weights"):
        SharedTrunkEnsemble.from_members([members()[0], other], SHARED)


def test_a_saved_ensemble_loads_as_one_and_an_unknown_architecture_is_named(tmp_path):
    ensemble = SharedTrunkEnsemble.from_members(members(), SHARED)
    save_checkpoint(tmp_path / "ens", ensemble, half=False)
    loaded, config = load_checkpoint(tmp_path / "ens")
    assert isinstance(loaded, SharedTrunkEnsemble)
    assert config["network"]["architecture"] == "shared_trunk_ensemble" and config["network"]["members"] == 2
    x, meta = inputs()
    with torch.no_grad():
        assert torch.equal(loaded(x, meta)["logit"], ensemble(x, meta)["logit"])
    written = json.loads((tmp_path / "ens" / "config.json").read_text())
    written["network"]["architecture"] = "mystery_net"
    (tmp_path / "ens" / "config.json").write_text(json.dumps(written))
    with pytest.raises(CheckpointError, match="unknown architecture 'mystery_net'; known: melanoma_net, shared"):
        load_checkpoint(tmp_path / "ens")


def test_the_predictor_its_cpu_twin_and_grad_cam_work_on_an_ensemble():
    from model import cam
    from model.fast_cpu import inference_predictor
    from model.predictor import Predictor

    ensemble = SharedTrunkEnsemble.from_members(members(), SHARED)
    predictor = Predictor(ensemble, {"operating_point": {"threshold": 0.5}}, device="cpu")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)) for _ in range(3)]
    plain = predictor.predict_images(images, tta=2)
    fast = inference_predictor(predictor)
    assert fast is not predictor and fast.fused_pairs > 0  # the folded twin reproduced the ensemble
    folded = fast.predict_images(images, tta=2)
    np.testing.assert_allclose(folded.p_melanoma, plain.p_melanoma, atol=1e-4)
    assert plain.embedding.shape == (3, ensemble.embedding_dim)
    heat = cam.explain_many(predictor, images, method="gradcam++")
    assert [h.shape for h in heat] == [(70, 90)] * 3
    assert all(np.isfinite(h).all() and h.min() >= 0 and h.max() <= 1 for h in heat)
    assert cam.target_layer_name(predictor).count("member") == 2  # a target layer in each tail
