"""Which module a network config builds: a registry keyed by `NetworkConfig.architecture`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from model.ensemble import ARCHITECTURE as SHARED_TRUNK_ENSEMBLE
from model.ensemble import SharedTrunkEnsemble
from model.network import MelanomaNet, NetworkConfig

# What scoring, explaining and saving accept: anything `build_model` builds.
Network = MelanomaNet | SharedTrunkEnsemble

ARCHITECTURES: dict[str, Callable[[NetworkConfig], nn.Module]] = {
    "melanoma_net": MelanomaNet,
    SHARED_TRUNK_ENSEMBLE: SharedTrunkEnsemble,
}


def build_model(config: NetworkConfig) -> Network:
    """The (untrained) module `config` describes; ValueError for an architecture no one registered."""
    try:
        make = ARCHITECTURES[config.architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {config.architecture!r}; known: {', '.join(ARCHITECTURES)}") from None
    return make(config)
