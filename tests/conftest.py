"""Shared fixtures: the ../shared data folder and a small, freshly initialised checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from data.settings import CPU_THREADS_ENV, environment

# One CPU thread for torch (here, before torch is imported, and in the processes the tests start), unless the
# caller set another count: the test machine has 2 cores and a training job on one of them, and there a
# second thread that waits for that core made a tiny forward pass 0.58 s instead of 2.5 ms. The Predictor reads it.
os.environ.setdefault(CPU_THREADS_ENV, "1")

SHARED = environment().shared_dir  # $TRIAGE_SHARED_DIR, else ../shared beside the repository
DATASETS = SHARED / "datasets"


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not DATASETS.is_dir():
        pytest.skip(f"the shared data folder is not at {DATASETS}")
    return DATASETS


@pytest.fixture(scope="session")
def fresh_checkpoint(tmp_path_factory) -> Path:
    """ImageNet backbone + untrained heads at a small image size: fast, real weights, no training."""
    from model.checkpoint import save_checkpoint
    from model.network import NetworkConfig
    from model.pretrained import build_network

    folder = tmp_path_factory.mktemp("fresh_checkpoint")
    net = build_network(NetworkConfig(image_size=128))
    net.eval()
    return save_checkpoint(folder, net, {"model_id": "fresh-imagenet-lite0-128", "operating_point": {"threshold": 0.5}})


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny random network (timm's test_efficientnet, 64 px, ~0.1 M parameters, no ImageNet weights): for
    tests of plumbing (what is scored, reported, written), where the scores' values do not matter."""
    from model.checkpoint import save_checkpoint
    from model.network import NetworkConfig
    from model.pretrained import build_network

    folder = tmp_path_factory.mktemp("tiny_checkpoint")
    net = build_network(NetworkConfig(backbone="test_efficientnet", image_size=64), imagenet=False)
    net.eval()
    config = {"model_id": "tiny-test-efficientnet-64", "operating_point": {"threshold": 0.5}}
    return save_checkpoint(folder, net, config)


@pytest.fixture(scope="session")
def predictor(fresh_checkpoint):
    from model.predictor import Predictor

    return Predictor.from_checkpoint(fresh_checkpoint, device="cpu")
