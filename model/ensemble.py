"""Several trained tails on one frozen trunk: the mean of their melanoma logits, at little more than one
network's cost.

Partial fine-tuning (training/partial.py) leaves a network's trunk as ImageNet made it. Two networks trained
from different cuts therefore hold the same weights up to the shallower cut, so that trunk runs once and each
member runs its own blocks from there (lite0, two tails from blocks.5.0: 1.08x one network's CPU time,
README). The ensemble's output has the shape of one network's:

* `logit`: the mean of the members' raw melanoma logits, then the ensemble's own calibration
  (`config.logit_scale`, `config.logit_bias`; the members' are 1 and 0);
* `embedding`: the members' pooled embeddings side by side (the ugly-duckling comparison sees both);
* `diagnosis_logits`: the mean of the members' diagnosis logits.

Each member is an ordinary `MelanomaNet`, saved whole, trunk included; `check_weights` refuses weights
whose members' trunks differ, since only member 0's would run.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from model.cuts import cut_depth, modules_between, trunk_modules
from model.network import MelanomaNet, NetworkConfig, calibrate

ARCHITECTURE = "shared_trunk_ensemble"


def member_config(config: NetworkConfig) -> NetworkConfig:
    """One member's config: the ensemble's, as a single uncalibrated network."""
    return dataclasses.replace(
        config, architecture="melanoma_net", members=1, shared_trunk=None, logit_scale=1.0, logit_bias=0.0
    )


def ensemble_config(member: NetworkConfig, members: int, shared_trunk: str) -> NetworkConfig:
    """The config of `members` networks like `member` that share the trunk up to `shared_trunk`."""
    return dataclasses.replace(member, architecture=ARCHITECTURE, members=members, shared_trunk=shared_trunk)


class SharedTrunkEnsemble(nn.Module):
    def __init__(self, config: NetworkConfig):
        super().__init__()
        if config.members < 2:
            raise ValueError(f"a shared-trunk ensemble needs at least 2 members, got {config.members}")
        if not config.shared_trunk:
            raise ValueError("a shared-trunk ensemble needs shared_trunk, the cut up to which its members agree")
        self.config = config
        self.members = nn.ModuleList(MelanomaNet(member_config(config)) for _ in range(config.members))
        trunk_modules(self.members[0].backbone, config.shared_trunk)  # a cut this backbone has, or ValueError

    @classmethod
    def from_members(cls, members: list[MelanomaNet], shared_trunk: str) -> SharedTrunkEnsemble:
        """The ensemble of trained networks (their weights copied); their own calibration is dropped."""
        config = ensemble_config(member_config(members[0].config), len(members), shared_trunk)
        ensemble = cls(config)
        for target, source in zip(ensemble.members, members, strict=True):
            if member_config(source.config) != member_config(config):
                raise ValueError("the members differ in more than their weights (backbone, size, metadata, heads)")
            target.load_state_dict(source.state_dict())
        ensemble.check_weights()
        return ensemble.eval()

    @property
    def embedding_dim(self) -> int:
        return sum(m.embedding_dim for m in self.members)

    @property
    def backbones(self) -> list[nn.Module]:
        return [m.backbone for m in self.members]

    def check_weights(self) -> None:
        """ValueError naming a trunk tensor on which a member differs from member 0 (only member 0's runs)."""
        reference = trunk_modules(self.members[0].backbone, self.config.shared_trunk).state_dict()
        for k, member in enumerate(self.members[1:], start=1):
            for name, tensor in trunk_modules(member.backbone, self.config.shared_trunk).state_dict().items():
                if not torch.equal(tensor, reference[name]):
                    raise ValueError(
                        f"member {k} differs from member 0 in the shared trunk (up to {self.config.shared_trunk}) "
                        f"at {name}: these members cannot share it"
                    )

    def forward(self, image: torch.Tensor, meta: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        shared = trunk_modules(self.members[0].backbone, self.config.shared_trunk)(image)
        return self.forward_from(shared, meta, self.config.shared_trunk)

    def forward_from(self, trunk_out: torch.Tensor, meta: torch.Tensor | None, cut: str) -> dict[str, torch.Tensor]:
        """`forward` from the output of the trunk before `cut` (at or before the shared trunk's cut)."""
        shared = self.config.shared_trunk
        first = self.members[0].backbone
        if cut_depth(first, cut) > cut_depth(first, shared):
            raise ValueError(f"cut {cut} lies after the shared trunk ({shared}): the members differ there")
        h = modules_between(first, cut, shared)(trunk_out)
        outs = [member.forward_from(h, meta, shared) for member in self.members]
        logit = calibrate(torch.stack([o["logit"] for o in outs]).mean(0), self.config)
        out = {"logit": logit, "embedding": torch.cat([o["embedding"] for o in outs], dim=1)}
        if all("diagnosis_logits" in o for o in outs):
            out["diagnosis_logits"] = torch.stack([o["diagnosis_logits"] for o in outs]).mean(0)
        return out
