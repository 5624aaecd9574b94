"""Partial fine-tuning: a frozen ImageNet trunk whose activations are cached, and a trainable tail.

A CPU cannot fine-tune a whole EfficientNet on 15,000 images several times over (5-fold CV + final) in a
working day (~16 images/s). The early layers of an ImageNet network are generic edge/texture detectors;
the late layers are where a dermoscopy model differs from an ImageNet one. So the trunk (stem and the
blocks before `cut`) runs once per image view and its output is cached (training/trunk_cache.py), and
only the tail (the blocks from `cut`, the head convolution and the melanoma/diagnosis heads) is trained
on the cached activations (training/train_cached.py): ~10x faster per epoch.

The result is an ordinary MelanomaNet (ImageNet trunk + trained tail), saved as an ordinary checkpoint:
the predictor, Grad-CAM and the CLI need nothing new. `tail_forward(net, trunk(x))` equals
`net(x)` (tested), so what was trained is what is deployed.

A cut is data: "blocks.5.2" = train from the third block of stage 5 (lite0: 192 channels at 7x7); the
cut functions live in model/cuts.py, which inference uses too.
"""

from __future__ import annotations

import torch
from torch import nn

from model.architectures import Network
from model.cuts import modules_between, parse_cut, tail_modules, trunk_modules
from model.network import MelanomaNet

__all__ = [
    "freeze_trunk",
    "modules_between",
    "net_cut",
    "parse_cut",
    "tail_forward",
    "tail_modules",
    "tail_parameters",
    "trunk_modules",
]


def tail_parameters(net: MelanomaNet, cut: str) -> list[nn.Parameter]:
    params = [p for m in tail_modules(net.backbone, cut) for p in m.parameters()]
    heads = [m for m in (net.meta_branch, net.melanoma_head, net.diagnosis_head) if m is not None]
    return params + [p for m in heads for p in m.parameters()]


def freeze_trunk(net: MelanomaNet, cut: str) -> None:
    """Trunk parameters frozen and its BatchNorms in eval mode (their ImageNet statistics are kept)."""
    for p in trunk_modules(net.backbone, cut).parameters():
        p.requires_grad_(False)
    trunk_modules(net.backbone, cut).eval()


def tail_forward(net: Network, trunk_out: torch.Tensor, meta: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The network's forward pass, starting from the trunk's output at `net.partial_cut`."""
    return net.forward_from(trunk_out, meta, net_cut(net))


def net_cut(net: Network) -> str:
    cut = getattr(net, "partial_cut", None)
    if not cut:
        raise ValueError("set net.partial_cut (e.g. 'blocks.5.2') before tail_forward")
    return cut
