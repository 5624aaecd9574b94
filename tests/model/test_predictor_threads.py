"""The predictor scores on every core unless OMP_NUM_THREADS pins fewer (a shared machine, the tests)."""

from __future__ import annotations

import os

import pytest
import torch

from model.predictor import Predictor


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_every_core_unless_omp_num_threads_pins_fewer(tiny_checkpoint, monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    Predictor.from_checkpoint(tiny_checkpoint, device="cpu")
    assert torch.get_num_threads() == max(1, os.cpu_count() or 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    Predictor.from_checkpoint(tiny_checkpoint, device="cpu")
    assert torch.get_num_threads() == 1
