"""The network: any timm backbone + an optional metadata branch, a melanoma head and a diagnosis head.

`NetworkConfig.architecture` names the module that a config builds (model/architectures.py): one
`MelanomaNet`, or several trained tails on one shared trunk (model/ensemble.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import timm
import torch
from torch import nn

from data.metadata import MetadataEncoder
from data.schema import DIAGNOSES
from model.cuts import tail_modules


@dataclass
class NetworkConfig:
    backbone: str = "tf_efficientnet_lite0"
    image_size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    use_metadata: bool = True
    metadata: dict = field(default_factory=lambda: MetadataEncoder().to_dict())
    diagnosis_classes: tuple[str, ...] = DIAGNOSES
    meta_hidden: int = 32
    dropout: float = 0.3
    # Post-hoc calibration of the melanoma logit (Platt: scale * logit + bias), fitted on out-of-fold
    # predictions at the real screening prevalence. It travels with the weights, so the CLI, the dashboard
    # and Grad-CAM (a positive scale leaves the saliency unchanged) all show the calibrated probability.
    logit_scale: float = 1.0
    logit_bias: float = 0.0
    # What this config builds (model/architectures.py): "melanoma_net" (one network) or "shared_trunk_ensemble"
    # (`members` trained tails that share the frozen trunk up to the cut `shared_trunk`).
    architecture: str = "melanoma_net"
    members: int = 1
    shared_trunk: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, config: dict) -> NetworkConfig:
        known = {k: v for k, v in config.items() if k in cls.__dataclass_fields__}
        for key in ("mean", "std", "diagnosis_classes"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    @property
    def encoder(self) -> MetadataEncoder:
        return MetadataEncoder.from_dict(self.metadata)


def calibrate(logit: torch.Tensor, config: NetworkConfig) -> torch.Tensor:
    """The config's post-hoc calibration of a melanoma logit (identity when none was fitted)."""
    if config.logit_scale != 1.0 or config.logit_bias != 0.0:
        return logit * config.logit_scale + config.logit_bias
    return logit


class MelanomaNet(nn.Module):
    """image (+ metadata) -> melanoma logit, diagnosis logits and the pooled image embedding.

    The embedding is the backbone's pooled feature vector: the ugly-duckling analysis compares lesions
    in that space, so it must not depend on the patient's metadata.
    """

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        self.backbone = timm.create_model(config.backbone, pretrained=False, num_classes=0)
        features = self.backbone.num_features
        self.meta_branch: nn.Module | None = None
        head_in = features
        if config.use_metadata:
            self.meta_branch = nn.Sequential(
                nn.Linear(config.encoder.dim, config.meta_hidden),
                nn.BatchNorm1d(config.meta_hidden),
                nn.SiLU(),
                nn.Dropout(config.dropout / 3),
            )
            head_in += config.meta_hidden
        self.dropout = nn.Dropout(config.dropout)
        self.melanoma_head = nn.Linear(head_in, 1)
        n_diag = len(config.diagnosis_classes)
        self.diagnosis_head = nn.Linear(head_in, n_diag) if n_diag else None

    @property
    def embedding_dim(self) -> int:
        return self.backbone.num_features

    @property
    def backbones(self) -> list[nn.Module]:
        """The backbones whose last feature maps an explanation looks at (model/cam.py)."""
        return [self.backbone]

    def check_weights(self) -> None:
        """Loaded weights that break a rule of the architecture raise ValueError (one network has none)."""

    def forward(self, image: torch.Tensor, meta: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.forward_from_embedding(self.backbone(image), meta)

    def forward_from(self, trunk_out: torch.Tensor, meta: torch.Tensor | None, cut: str) -> dict[str, torch.Tensor]:
        """`forward`, starting from the output of the backbone's blocks before `cut` (model/cuts.py)."""
        h = trunk_out
        for module in tail_modules(self.backbone, cut):
            h = module(h)
        return self.forward_from_embedding(self.backbone.forward_head(h), meta)

    def forward_from_embedding(self, embedding: torch.Tensor, meta: torch.Tensor | None) -> dict[str, torch.Tensor]:
        joint = embedding
        if self.meta_branch is not None:
            if meta is None:
                raise ValueError("this model was built with a metadata branch: pass meta")
            joint = torch.cat([embedding, self.meta_branch(meta.to(embedding.dtype))], dim=1)
        joint = self.dropout(joint)
        logit = calibrate(self.melanoma_head(joint).squeeze(1), self.config)
        out = {"logit": logit, "embedding": embedding}
        if self.diagnosis_head is not None:
            out["diagnosis_logits"] = self.diagnosis_head(joint)
        return out


class MelanomaLogit(nn.Module):
    """Adapter for tools that call model(x) and expect (B, classes): Grad-CAM, ONNX export.

    Metadata is fixed per call (set `meta` before use) so the explanation is of the same score shown.
    """

    def __init__(self, net: nn.Module, meta: torch.Tensor | None = None):
        super().__init__()
        self.net = net
        self.meta = meta

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        meta = self.meta
        if meta is not None and meta.shape[0] != image.shape[0]:
            meta = meta.expand(image.shape[0], -1) if meta.shape[0] == 1 else meta
        return self.net(image, meta)["logit"].unsqueeze(1)
