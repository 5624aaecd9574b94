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

A cut is data: "blocks.5.2" = train from the third block of stage 5 (lite0: 192 channels at 7x7).
"""

from __future__ import annotations

import torch
from torch import nn

from model.network import MelanomaNet


def parse_cut(cut: str) -> tuple[int, int]:
    parts = cut.split(".")
    if len(parts) != 3 or parts[0] != "blocks" or not (parts[1].isdigit() and parts[2].isdigit()):
        raise ValueError(f"cut must look like 'blocks.<stage>.<block>', got {cut!r}")
    return int(parts[1]), int(parts[2])


def _blocks(backbone: nn.Module) -> nn.Sequential:
    if not hasattr(backbone, "blocks") or not hasattr(backbone, "conv_stem"):
        raise ValueError(f"partial fine-tuning needs a timm EfficientNet-style backbone, got {type(backbone).__name__}")
    return backbone.blocks


def trunk_modules(backbone: nn.Module, cut: str) -> nn.Sequential:
    """stem + every block before `cut`, in order."""
    stage, block = parse_cut(cut)
    blocks = _blocks(backbone)
    if stage >= len(blocks) or block >= len(blocks[stage]):
        raise ValueError(f"cut {cut} is outside this backbone ({len(blocks)} stages)")
    mods: list[nn.Module] = [backbone.conv_stem, backbone.bn1]
    mods += [b for s in range(stage) for b in blocks[s]]  # block by block, so cuts can be compared
    mods += list(blocks[stage][:block])
    return nn.Sequential(*mods)


def tail_modules(backbone: nn.Module, cut: str) -> list[nn.Module]:
    """Every backbone module from `cut` on: the ones partial fine-tuning trains."""
    stage, block = parse_cut(cut)
    blocks = _blocks(backbone)
    mods: list[nn.Module] = list(blocks[stage][block:])
    mods += [blocks[s] for s in range(stage + 1, len(blocks))]
    return [*mods, backbone.conv_head, backbone.bn2]


def modules_between(backbone: nn.Module, start: str, end: str) -> nn.Sequential:
    """The frozen blocks from `start` up to (not including) `end`: they turn a cache made at `start` into
    one at `end`, so a deeper cut needs no new pass over the images."""
    first = len(trunk_modules(backbone, start))
    last = len(trunk_modules(backbone, end))
    if last < first:
        raise ValueError(f"cut {end} lies before the cache's cut {start}")
    return nn.Sequential(*list(trunk_modules(backbone, end))[first:last])


def tail_parameters(net: MelanomaNet, cut: str) -> list[nn.Parameter]:
    params = [p for m in tail_modules(net.backbone, cut) for p in m.parameters()]
    heads = [m for m in (net.meta_branch, net.melanoma_head, net.diagnosis_head) if m is not None]
    return params + [p for m in heads for p in m.parameters()]


def freeze_trunk(net: MelanomaNet, cut: str) -> None:
    """Trunk parameters frozen and its BatchNorms in eval mode (their ImageNet statistics are kept)."""
    for p in trunk_modules(net.backbone, cut).parameters():
        p.requires_grad_(False)
    trunk_modules(net.backbone, cut).eval()


def tail_forward(net: MelanomaNet, trunk_out: torch.Tensor, meta: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """MelanomaNet.forward, starting from the trunk's output."""
    h = trunk_out
    for module in tail_modules(net.backbone, cut=net_cut(net)):
        h = module(h)
    embedding = net.backbone.forward_head(h)
    return net.forward_from_embedding(embedding, meta)


def net_cut(net: MelanomaNet) -> str:
    cut = getattr(net, "partial_cut", None)
    if not cut:
        raise ValueError("set net.partial_cut (e.g. 'blocks.5.2') before tail_forward")
    return cut
