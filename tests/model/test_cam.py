"""Grad-CAM explanations on real images with the fresh (ImageNet backbone, untrained heads) checkpoint.

The shared fixture's melanoma head is randomly initialised each session, and a random linear head can
make Grad-CAM legitimately blank (no region raises that score) for some images. To test the machinery
deterministically, the `explainer` fixture uses the same ImageNet backbone with a fixed head: the logit
is the mean of the pooled image features, so every method has real, image-dependent evidence to show.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from data.images import decode_image
from model import cam, cam_methods
from model.triage import PatientInfo


@pytest.fixture(scope="module")
def explainer(predictor):
    from model.predictor import Predictor

    model = copy.deepcopy(predictor.model)
    with torch.no_grad():
        model.melanoma_head.weight.zero_()
        model.melanoma_head.weight[0, : model.embedding_dim] = 1.0 / model.embedding_dim
        model.melanoma_head.bias.zero_()
    config = {k: v for k, v in predictor.config.items() if not k.startswith("weights_sha256")}
    return Predictor(model, config, device="cpu")


@pytest.fixture(scope="module")
def images(datasets_dir):
    isic = sorted((datasets_dir / "isic2020" / "train").glob("*.jpg"))[:2]
    ham = sorted((datasets_dir / "ham10000" / "images").glob("*.jpg"))[:1]
    return [decode_image(p) for p in [*isic, *ham]]  # 512x512, 512x512, 600x450 or the like


@pytest.mark.parametrize("method", list(cam_methods.CAM_METHODS))
def test_every_method_runs(explainer, images, method):
    image = images[2]
    heat = cam.explain(explainer, image, site="torso", patient=PatientInfo(age=50, sex="female"), method=method)
    assert heat.shape == (image.height, image.width) and heat.dtype == np.float32
    assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
    assert heat.max() - heat.min() > 0.5  # normalised, not a blank map


def test_required_methods_registered():
    assert {"gradcam", "gradcam++", "eigencam", "layercam"} <= set(cam_methods.CAM_METHODS)
    assert cam_methods.method_name("GradCAM++") == "gradcam++" and cam_methods.method_name("Grad-CAM") == "gradcam"
    with pytest.raises(ValueError, match="unknown CAM method"):
        cam_methods.method_name("magic")


def test_overlays_have_the_image_size_and_differ(explainer, images):
    heats = cam.explain_many(explainer, images[:3])
    assert [h.shape for h in heats] == [(im.height, im.width) for im in images[:3]]
    assert np.abs(heats[0] - heats[1]).mean() > 0.05
    for image, heat in zip(images, heats, strict=True):
        over = cam.overlay(image, heat, opacity=0.4)
        assert over.size == image.size and over.mode == "RGB"
    a = np.asarray(cam.overlay(images[0], heats[0], 0.5), dtype=float)
    b = np.asarray(cam.overlay(images[1], heats[1], 0.5), dtype=float)
    assert np.abs(a - b).mean() > 5
    plain = np.asarray(cam.overlay(images[0], heats[0], 0.0), dtype=float)
    assert np.abs(plain - np.asarray(images[0], dtype=float)).mean() < 3  # opacity 0: the image itself
    with pytest.raises(ValueError):
        cam.overlay(images[0], heats[0], 1.5)


def test_batched_equals_one_at_a_time_and_is_cached(explainer, images):
    cam.clear_cache()
    batched = cam.explain_many(explainer, images, method="gradcam++", batch_size=3)
    assert cam.cache_info()["entries"] == 3
    cam.clear_cache()
    single = [cam.explain_many(explainer, [im], method="gradcam++")[0] for im in images]
    for a, b in zip(batched, single, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    again = cam.explain_many(explainer, images, method="gradcam++")
    assert cam.cache_info()["entries"] == 3  # served from the cache
    for a, b in zip(again, single, strict=True):
        np.testing.assert_array_equal(a, b)
    cam.explain_many(explainer, images[:1], method="layercam")
    assert cam.cache_info()["entries"] == 4  # the method is part of the key


def test_metadata_is_part_of_the_key(explainer, images):
    cam.clear_cache()
    cam.explain(explainer, images[0], site="torso")
    cam.explain(explainer, images[0], site="head/neck")
    assert cam.cache_info()["entries"] == 2


def test_predictor_untouched_and_hooks_released(predictor, images):
    x = torch.stack([predictor.transform(im) for im in images[:2]])
    meta = torch.from_numpy(predictor.encoder.encode(pd.DataFrame(index=range(2))))
    before = predictor.predict_tensors(x, meta).p_melanoma
    cam.clear_cache()
    cam.explain_many(predictor, images[:2], method="gradcam")
    after = predictor.predict_tensors(x, meta).p_melanoma
    np.testing.assert_array_equal(before, after)
    assert all(not m._forward_hooks for m in predictor.model.modules())
    net = cam._cam_net(predictor)
    assert all(not m._forward_hooks for m in net.net.modules())
    assert all(not p.requires_grad for p in net.net.parameters())
    assert cam.target_layer_name(predictor) == "bn2"  # EfficientNet: the final conv_head + BN + act


def test_explain_inside_inference_mode(explainer, images):
    cam.clear_cache()
    with torch.inference_mode():
        heat = cam.explain(explainer, images[0])
    assert heat.max() > 0.5


@pytest.mark.parametrize("name,expected", [("resnet18", "layer4"), ("mobilenetv3_small_050", None)])
def test_target_layer_for_other_timm_backbones(name, expected):
    import timm

    backbone = timm.create_model(name, pretrained=False, num_classes=0)
    layer_name, layer = cam.find_target_layer(backbone, 96)
    if expected:
        assert layer_name == expected
    out = {}

    def record(module, inputs, output):
        out["shape"] = output.shape

    handle = layer.register_forward_hook(record)
    backbone.eval()(torch.zeros(1, 3, 96, 96))
    handle.remove()
    assert len(out["shape"]) == 4 and min(out["shape"][-2:]) > 1


def test_transformer_backbone_is_refused_clearly():
    import timm

    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=64)
    with pytest.raises(cam.CamError, match="4-D feature map"):
        cam.find_target_layer(vit, 64)


def test_predict_cli_writes_overlays(fresh_checkpoint, datasets_dir, tmp_path):
    from model.predict import main

    folder = tmp_path / "in"
    folder.mkdir()
    sources = sorted((datasets_dir / "isic2020" / "train").glob("*.jpg"))[:2]
    sources += sorted((datasets_dir / "ham10000" / "images").glob("*.jpg"))[:1]
    for p in sources:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    out_dir = tmp_path / "cams"

    def predict_with_cam(method: str) -> int:
        argv = ["--checkpoint", str(fresh_checkpoint), "--input", str(folder), "--out", str(tmp_path / "p.csv")]
        return main([*argv, "--cam", str(out_dir), "--cam-method", method])

    assert predict_with_cam("layercam") == 0
    written = sorted(out_dir.glob("*.png"))
    assert [p.stem for p in written] == sorted(p.stem for p in sources)
    for p in sources:
        with Image.open(out_dir / f"{p.stem}.png") as over, Image.open(p) as original:
            assert over.size == original.size
    assert predict_with_cam("nonsense") == 2


def test_the_default_is_score_specific_grad_cam_plus_plus_and_only_eigencam_is_gradient_free():
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus

    assert cam_methods.DEFAULT_METHOD == "gradcam++" and cam_methods.CAM_METHODS["gradcam++"] is GradCAMPlusPlus
    assert cam_methods.CAM_METHODS["gradcam"] is GradCAM
    assert (
        frozenset({"eigencam"}) == cam_methods.GRADIENT_FREE and "gradient-free" in cam_methods.CAM_LABELS["eigencam"]
    )
    assert cam_methods.COMPARE_BY_DEFAULT[0] == cam_methods.DEFAULT_METHOD
    assert {"gradcam", "eigencam"} <= set(cam_methods.COMPARE_BY_DEFAULT)  # a gradient map and the gradient-free one
