"""Grad-CAM family explanations of the melanoma score (pytorch-grad-cam), at the image's own resolution.

    heat = explain(predictor, pil_image, site="torso", patient=PatientInfo(age=60, sex="male"))
    overlay(pil_image, heat, opacity=0.5).save("overlay.png")

* The explained output is the melanoma logit (MelanomaLogit with the lesion's own metadata fixed), i.e.
  the score shown to the clinician, not a diagnosis class.
* The target layer is found for any timm CNN backbone by a dry forward pass: the last module to finish
  whose output is a 4-D feature map with spatial size > 1 (for EfficientNet: the final conv_head+bn2). A
  shared-trunk ensemble (model/ensemble.py) has one per member; their maps are averaged.
* Explanations run on a private frozen copy of the network, so the CAM hooks never touch the predictor
  that scores images (safe beside concurrent scoring). Gradients are only needed from the target layer
  to the logit, so the copy's weights are frozen and the target layer's output is made the leaf that
  requires grad: the cost is about one forward pass plus a tiny backward through the head.
* Heatmaps are cached by (image pixels sha256, weights sha256, method, metadata) in a small LRU.
* Which methods are offered, their labels and the default: model/cam_methods.py's registry. Every method runs
  through this one mechanism; they differ only in the pytorch-grad-cam class that weighs the feature map.
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from PIL import Image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from data.errors import TriageError
from model.cam_methods import CAM_METHODS, DEFAULT_METHOD, method_name
from model.cam_overlay import attribution_overlay
from model.checkpoint import weights_digest
from model.network import MelanomaLogit

CACHE_SIZE = 256
BATCH_SIZE = 8


class CamError(TriageError, RuntimeError):
    pass


# ---------------------------------------------------------------- target layer


def find_target_layer(
    backbone: nn.Module, image_size: int = 224, max_params_after: float = 0.05
) -> tuple[str, nn.Module]:
    """(name, module) of the last module to finish that outputs a (B, C, H, W) map with H, W > 1.

    Refused (CamError) when more than `max_params_after` of the backbone's weights still run after that
    module on token sequences (3-D outputs): then it is not the final feature map but e.g. a ViT's patch
    embedding before the transformer. (Layers after the global pool, like MobileNetV3's conv_head on the
    1x1 map, do not count.) Only NCHW CNN feature maps are supported.
    """
    events: list[tuple[str, nn.Module, bool, int]] = []  # in order of completion
    handles = []

    def hook(name: str):
        def record(module, inputs, output):
            dims = output.dim() if isinstance(output, torch.Tensor) else 0
            events.append((name, module, dims == 4 and min(output.shape[-2:]) > 1, dims))

        return record

    for name, module in backbone.named_modules():
        if name:  # not the backbone itself
            handles.append(module.register_forward_hook(hook(name)))
    param = next(backbone.parameters())
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            backbone(torch.zeros(1, 3, image_size, image_size, device=param.device, dtype=param.dtype))
    finally:
        for h in handles:
            h.remove()
        backbone.train(was_training)
    calls: dict[str, int] = {}
    for name, *_ in events:
        calls[name] = calls.get(name, 0) + 1
    # A module called more than once (a shared activation) is ambiguous as a hook point.
    candidates = [i for i, (name, _, spatial, _) in enumerate(events) if spatial and calls[name] == 1]
    if not candidates:
        raise CamError(
            f"{type(backbone).__name__}: no module outputs a 4-D feature map with spatial size > 1; "
            "transformer backbones need a reshape_transform, which is not supported here"
        )
    last = candidates[-1]
    total = sum(p.numel() for p in backbone.parameters())
    after = {
        name: sum(p.numel() for p in module.parameters(recurse=False))
        for name, module, _, dims in events[last + 1 :]
        if dims == 3
    }
    if total and sum(after.values()) > max_params_after * total:
        raise CamError(
            f"{type(backbone).__name__}: the last 4-D feature map ({events[last][0]}) is followed by "
            f"{sum(after.values()) / total:.0%} of the weights working on tokens, so it is not the final "
            "feature map; transformer backbones need a reshape_transform, which is not supported here"
        )
    return events[last][0], events[last][1]


# ---------------------------------------------------------------- the private CAM network


class _CamNet:
    def __init__(self, predictor):
        net = copy.deepcopy(predictor.model).float().eval()
        net = net.to(memory_format=torch.contiguous_format)
        for p in net.parameters():
            p.requires_grad_(False)
        self.net = net
        self.device = next(net.parameters()).device
        # One target layer per backbone: a shared-trunk ensemble's members each end in their own feature map,
        # and pytorch-grad-cam averages the (normalised) maps of a list of layers.
        found = [find_target_layer(backbone, predictor.network.image_size) for backbone in net.backbones]
        self.layers = [layer for _, layer in found]
        self.layer_name = (
            found[0][0] if len(found) == 1 else " + ".join(f"member {k}: {name}" for k, (name, _) in enumerate(found))
        )
        self.lock = threading.Lock()


_nets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_weights_digest: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_nets_lock = threading.Lock()


def _cam_net(predictor) -> _CamNet:
    with _nets_lock:
        found = _nets.get(predictor.model)
        if found is None:
            found = _nets[predictor.model] = _CamNet(predictor)
        return found


def target_layer_name(predictor) -> str:
    return _cam_net(predictor).layer_name


def weights_sha256(predictor) -> str:
    config = getattr(predictor, "config", {}) or {}
    digest = weights_digest(config)
    if digest:
        return digest
    with _nets_lock:
        if predictor.model not in _weights_digest:
            h = hashlib.sha256()
            for name, tensor in predictor.model.state_dict().items():
                h.update(name.encode())
                h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            _weights_digest[predictor.model] = h.hexdigest()
        return _weights_digest[predictor.model]


def image_sha256(image: Image.Image) -> str:
    h = hashlib.sha256(f"{image.mode}:{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------- cache


class _LRU:
    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
            return None

    def put(self, key, value) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.data.clear()

    def __len__(self) -> int:
        return len(self.data)


_cache = _LRU(CACHE_SIZE)


def clear_cache() -> None:
    _cache.clear()


def cache_info() -> dict:
    return {"entries": len(_cache), "max_entries": _cache.size}


# ---------------------------------------------------------------- explanations


def _metadata(predictor, n: int, records: pd.DataFrame | None) -> torch.Tensor:
    frame = records.reset_index(drop=True) if records is not None else pd.DataFrame(index=range(n))
    return torch.from_numpy(predictor.encoder.encode(frame))


def _run_cam(cam_net: _CamNet, method: str, batch: torch.Tensor, meta: torch.Tensor) -> np.ndarray:
    """(B, h, w) heatmaps in [0, 1] at the network's input resolution."""
    wrapper = MelanomaLogit(cam_net.net, meta.to(cam_net.device))

    def make_leaf(module, inputs, output):
        # Frozen weights + an input without grad: the target layer's output is a leaf; let it require
        # grad so backward runs only from the logit down to this layer.
        if isinstance(output, torch.Tensor) and not output.requires_grad and output.grad_fn is None:
            output.requires_grad_(True)

    # registered first: they run before the CAM's hooks
    handles = [layer.register_forward_hook(make_leaf) for layer in cam_net.layers]
    heat = None  # BaseCAM.__exit__ swallows IndexError: never read an unassigned result
    try:
        with (
            torch.inference_mode(False),
            torch.enable_grad(),
            CAM_METHODS[method](model=wrapper, target_layers=cam_net.layers) as cam,
        ):
            heat = cam(input_tensor=batch.to(cam_net.device), targets=[ClassifierOutputTarget(0)] * len(batch))
    finally:
        for handle in handles:
            handle.remove()
    if heat is None or len(heat) != len(batch):
        raise CamError(f"{method}: no heatmap was produced")
    return np.nan_to_num(np.asarray(heat, dtype=np.float32), nan=0.0).clip(0.0, 1.0)


def _to_size(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    if heat.shape == (height, width):
        return heat.copy()
    return cv2.resize(heat, (width, height), interpolation=cv2.INTER_LINEAR).clip(0.0, 1.0)


def explain_many(
    predictor,
    images: Sequence[Image.Image],
    records: pd.DataFrame | None = None,
    method: str = DEFAULT_METHOD,
    batch_size: int = BATCH_SIZE,
) -> list[np.ndarray]:
    """Heatmaps (H, W) float32 in [0, 1], each at its image's original resolution.

    records: per-image site/sex/age (as read by data.readers; unknown when absent), aligned with images.
    """
    method = method_name(method)
    images = [img if img.mode == "RGB" else img.convert("RGB") for img in images]
    if not images:
        return []
    meta = _metadata(predictor, len(images), records)
    weights = weights_sha256(predictor)
    keys = [
        (image_sha256(img), weights, method, hashlib.sha1(meta[i].numpy().tobytes()).hexdigest())
        for i, img in enumerate(images)
    ]
    small: list[np.ndarray | None] = [_cache.get(k) for k in keys]
    todo = [i for i, h in enumerate(small) if h is None]
    if todo:
        cam_net = _cam_net(predictor)
        with cam_net.lock:
            for start in range(0, len(todo), max(1, batch_size)):
                idx = todo[start : start + batch_size]
                batch = torch.stack([predictor.transform(images[i]) for i in idx])
                heat = _run_cam(cam_net, method, batch, meta[idx])
                for j, i in enumerate(idx):
                    small[i] = heat[j]
                    _cache.put(keys[i], heat[j])
    return [_to_size(small[i], img.size) for i, img in enumerate(images)]


def explain(
    predictor, image: Image.Image, site: str = "unknown", patient=None, method: str = DEFAULT_METHOD
) -> np.ndarray:
    """Heatmap (H, W) in [0, 1] at the image's original resolution for the melanoma score."""
    from data.schema import lesion_metadata

    record = lesion_metadata([site], getattr(patient, "sex", None), getattr(patient, "age", None), "cam")
    return explain_many(predictor, [image], record, method)[0]


def overlay(
    image: Image.Image, heatmap: np.ndarray, opacity: float = 0.5, colormap: int = cv2.COLORMAP_JET
) -> Image.Image:
    """The heatmap drawn onto the image at the image's own size, without tinting the whole frame.

    opacity: the colour's weight where the map is at its maximum (0 = image only); where the map is low the
    pixels are the original image (model/cam_overlay.attribution_overlay).
    """
    return attribution_overlay(image, heatmap, opacity=opacity, colormap=colormap)


def _safe_filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "image"


def write_overlays(
    predictor,
    scores: pd.DataFrame,
    out_dir: str | Path,
    method: str = DEFAULT_METHOD,
    opacity: float = 0.5,
    batch_size: int = BATCH_SIZE,
) -> list[Path]:
    """One `<image_id>.png` overlay per scored row (needs image_path; site/sex/age used when present).

    Images are decoded batch by batch, so memory stays bounded for large folders. Returns written paths.
    """
    from data.images import ImageDecodeError, decode_image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = scores.reset_index(drop=True)
    written: list[Path] = []
    used: set[str] = set()
    for start in range(0, len(scores), max(1, batch_size)):
        chunk = scores.iloc[start : start + batch_size]
        images, rows = [], []
        for i, row in chunk.iterrows():
            try:
                images.append(decode_image(row["image_path"]))
                rows.append(i)
            except ImageDecodeError:
                continue  # the scoring step already reported it
        if not images:
            continue
        heats = explain_many(predictor, images, scores.loc[rows], method, batch_size)
        for i, img, heat in zip(rows, images, heats, strict=True):
            name = _safe_filename(scores.at[i, "image_id"])
            while name in used:
                name += "_"
            used.add(name)
            path = out_dir / f"{name}.png"
            overlay(img, heat, opacity).save(path)
            written.append(path)
    return written
