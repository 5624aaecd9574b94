"""The cached trunk (training/trunk_cache.py): its conv+BN-folded form is used only when it reproduces the original."""

from __future__ import annotations

import torch

from model import fast_cpu
from training.trunk_cache import build_trunk


class _Broken(torch.nn.Module):
    def __init__(self, trunk: torch.nn.Module, value: float):
        super().__init__()
        self.trunk, self.value = trunk, value

    def forward(self, x):
        return torch.full_like(self.trunk(x), self.value)


def _trunk_outputs_nan_if_folded(monkeypatch, value: float) -> bool:
    monkeypatch.setattr(fast_cpu, "fuse_conv_bn", lambda trunk, example: (_Broken(trunk, value), None))
    trunk, _ = build_trunk("tf_efficientnet_lite0", "blocks.2.0", 64)
    with torch.inference_mode():
        return bool(torch.isnan(trunk(torch.randn(1, 3, 64, 64))).any())


def test_a_fold_that_gives_nan_is_not_cached(monkeypatch):
    assert not _trunk_outputs_nan_if_folded(monkeypatch, float("nan"))


def test_a_fold_that_changes_the_numbers_is_not_cached(monkeypatch):
    monkeypatch.setattr(fast_cpu, "fuse_conv_bn", lambda trunk, example: (_Broken(trunk, 1e6), None))
    trunk, _ = build_trunk("tf_efficientnet_lite0", "blocks.2.0", 64)
    with torch.inference_mode():
        assert trunk(torch.randn(1, 3, 64, 64)).abs().max() < 1e5
