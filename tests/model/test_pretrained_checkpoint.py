import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, weights_digest
from model.network import MelanomaNet, NetworkConfig
from model.predictor import Predictor
from model.pretrained import load_imagenet_weights


def imagenet_top5(model, array) -> list[int]:
    img = Image.fromarray(array).convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255
    x = (x - 0.5) / 0.5  # tf_efficientnet_lite normalisation
    with torch.inference_mode():
        return model(x[None]).topk(5).indices[0].tolist()


@pytest.mark.slow  # a real ImageNet network on real photos
def test_offline_imagenet_weights_classify_a_cat_and_a_coffee():
    import timm
    from skimage import data

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    load_imagenet_weights(model, "tf_efficientnet_lite0")
    assert imagenet_top5(model, data.chelsea())[0] in range(281, 286)  # tabby/tiger/Persian/Siamese/Egyptian cat
    assert imagenet_top5(model, data.coffee())[0] == 967  # espresso


def test_checkpoint_round_trip_predicts_identically(fresh_checkpoint, datasets_dir):
    images = [Image.open(p).convert("RGB") for p in sorted((datasets_dir / "isic2020" / "test").glob("*.jpg"))[:3]]
    first = Predictor.from_checkpoint(fresh_checkpoint, device="cpu").predict_images(images)
    model, config = load_checkpoint(fresh_checkpoint)
    assert config["weights_sha256"] == config["weights_sha256_actual"]
    second = Predictor(model, config, device="cpu").predict_images(images)
    np.testing.assert_allclose(first.p_melanoma, second.p_melanoma, rtol=0, atol=1e-6)
    assert first.embedding.shape == (3, model.embedding_dim)


def test_wrong_shape_checkpoint_is_explained(tmp_path, fresh_checkpoint):
    config = json.loads((fresh_checkpoint / "config.json").read_text())
    config["network"]["diagnosis_classes"] = ["melanoma", "nevus"]  # head of 2 instead of 7
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps(config))
    (bad / "model.safetensors").write_bytes((fresh_checkpoint / "model.safetensors").read_bytes())
    with pytest.raises(
        CheckpointError, match=r"wrong shape .*diagnosis_head.weight: checkpoint \(7, 1312\) vs model \(2, 1312\)"
    ):
        load_checkpoint(bad)


def _copy_checkpoint(source, target, config_edit=None, weights=None):
    target.mkdir()
    config = json.loads((source / "config.json").read_text())
    if config_edit:
        config_edit(config)
    (target / "config.json").write_text(json.dumps(config))
    (target / "model.safetensors").write_bytes(
        weights if weights is not None else (source / "model.safetensors").read_bytes()
    )
    return target


def test_weights_that_are_not_the_recorded_ones_are_refused(tmp_path, fresh_checkpoint):
    from safetensors.torch import load, save

    state = load((fresh_checkpoint / "model.safetensors").read_bytes())
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name] + 1  # same shapes, other weights: only the hash can tell
    swapped = _copy_checkpoint(fresh_checkpoint, tmp_path / "swapped", weights=save(state))
    recorded = json.loads((fresh_checkpoint / "config.json").read_text())["weights_sha256"]
    actual = hashlib.sha256((swapped / "model.safetensors").read_bytes()).hexdigest()
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(swapped)
    message = str(caught.value)
    assert "do not match" in message and recorded in message and actual in message
    assert str(swapped / "model.safetensors") in message


def test_checkpoint_without_a_recorded_hash_still_loads(tmp_path, fresh_checkpoint):
    bare = _copy_checkpoint(fresh_checkpoint, tmp_path / "bare", lambda config: config.pop("weights_sha256"))
    _, config = load_checkpoint(bare)
    actual = hashlib.sha256((bare / "model.safetensors").read_bytes()).hexdigest()
    assert "weights_sha256" not in config
    assert config["weights_sha256_actual"] == actual == weights_digest(config)


def test_readers_agree_on_the_weights_hash(fresh_checkpoint):
    from model.cam import weights_sha256

    predictor = Predictor.from_checkpoint(fresh_checkpoint, device="cpu")
    recorded = json.loads((fresh_checkpoint / "config.json").read_text())["weights_sha256"]
    assert weights_digest(predictor.config) == weights_sha256(predictor) == recorded
    assert weights_digest({"weights_sha256": "abc"}) == "abc"
    assert weights_digest({}) is None


def test_other_backbone_weights_do_not_fit(tmp_path):
    net = MelanomaNet(NetworkConfig(backbone="resnet18", image_size=64))
    save_checkpoint(tmp_path / "resnet", net)
    config = json.loads((tmp_path / "resnet" / "config.json").read_text())
    config["network"]["backbone"] = "tf_efficientnet_lite0"
    (tmp_path / "resnet" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "resnet")


def test_not_a_checkpoint(tmp_path, fresh_checkpoint):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_checkpoint(tmp_path)
    folder = tmp_path / "pickle"
    folder.mkdir()
    (folder / "config.json").write_text((fresh_checkpoint / "config.json").read_text())
    torch.save({"x": torch.zeros(1)}, folder / "model.safetensors")  # a pickle in disguise is never unpickled
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(folder)


def test_local_safetensors_weights_for_other_backbones(tmp_path):
    import timm

    donor = timm.create_model("resnet18", pretrained=False, num_classes=0)
    save_file(donor.state_dict(), str(tmp_path / "resnet18.safetensors"))
    net = MelanomaNet(NetworkConfig(backbone="resnet18"))
    load_imagenet_weights(net.backbone, "resnet18", tmp_path / "resnet18.safetensors")
    assert torch.equal(net.backbone.conv1.weight, donor.conv1.weight)


def test_default_model_is_committed_and_loads():
    from model.checkpoint import DEFAULT_CHECKPOINT

    predictor = Predictor.from_checkpoint(DEFAULT_CHECKPOINT, device="cpu")
    assert predictor.model_id == "melanoma-lite0-224-ctx"
    assert 0 < predictor.threshold < 1
    assert predictor.tta == 2
    # calibrated to the screening prevalence inside the network; no forced re-encoding of inputs
    assert predictor.network.logit_scale != 1.0 and predictor.network.logit_bias < 0
    assert "preprocess" not in predictor.config
    metrics = predictor.config["metrics"]
    assert 0.5 < metrics["external_derm7pt_auc"] < 1
    assert "network P(melanoma)" in metrics["whole_patient"]
    validation = json.loads((DEFAULT_CHECKPOINT / "validation.json").read_text())
    assert set(validation["per_dataset"]) == {"ham10000", "isic2017", "isic2020", "isic2020_patients"}


def test_recorded_reencoding_is_applied_before_scoring(fresh_checkpoint, datasets_dir):
    """A checkpoint trained on re-encoded images re-encodes its inputs the same way."""
    from data.transforms import Reencode

    model, config = load_checkpoint(fresh_checkpoint)
    codec = {"format": "WEBP", "quality": 75, "max_side": 384}
    with_codec = Predictor(model, {**config, "preprocess": {"reencode": codec}}, device="cpu")
    plain = Predictor(model, config, device="cpu")
    images = [Image.open(p).convert("RGB") for p in sorted((datasets_dir / "isic2020" / "test").glob("*.jpg"))[:3]]
    reencoded = [Reencode(**codec)(img) for img in images]
    np.testing.assert_allclose(
        with_codec.predict_images(images).p_melanoma, plain.predict_images(reencoded).p_melanoma, atol=1e-6
    )
    assert not np.allclose(plain.predict_images(images).embedding, plain.predict_images(reencoded).embedding)
