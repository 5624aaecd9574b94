"""Where an EfficientNet-style backbone can be cut in two: the frozen trunk before a cut and the tail from it.

A cut is data: "blocks.5.2" = the third block of stage 5 (lite0: 192 channels at 7x7). Training uses cuts to
cache a frozen trunk and train only the tail (training/partial.py); inference uses them to run a trunk
shared by several trained tails once (model/ensemble.py).
"""

from __future__ import annotations

from torch import nn


def parse_cut(cut: str) -> tuple[int, int]:
    parts = str(cut).split(".")
    if len(parts) != 3 or parts[0] != "blocks" or not (parts[1].isdigit() and parts[2].isdigit()):
        raise ValueError(f"cut must look like 'blocks.<stage>.<block>', got {cut!r}")
    return int(parts[1]), int(parts[2])


def _blocks(backbone: nn.Module) -> nn.Sequential:
    if not hasattr(backbone, "blocks") or not hasattr(backbone, "conv_stem"):
        raise ValueError(f"cutting a network needs a timm EfficientNet-style backbone, got {type(backbone).__name__}")
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
    """Every backbone module from `cut` on, up to the last feature map (before the global pool)."""
    stage, block = parse_cut(cut)
    blocks = _blocks(backbone)
    mods: list[nn.Module] = list(blocks[stage][block:])
    mods += [blocks[s] for s in range(stage + 1, len(blocks))]
    return [*mods, backbone.conv_head, backbone.bn2]


def modules_between(backbone: nn.Module, start: str, end: str) -> nn.Sequential:
    """The blocks from `start` up to (not including) `end`: they turn a trunk output at `start` into one at
    `end` (a cache made at one cut serves a deeper one; a shallow shared trunk feeds a deeper tail)."""
    first, last = cut_depth(backbone, start), cut_depth(backbone, end)
    if last < first:
        raise ValueError(f"cut {end} lies before {start}")
    return nn.Sequential(*list(trunk_modules(backbone, end))[first:last])


def cut_depth(backbone: nn.Module, cut: str) -> int:
    """How many trunk modules run before `cut`: orders cuts (a smaller depth is shallower)."""
    return len(trunk_modules(backbone, cut))
