"""The CAM methods the dashboard and the CLI offer (pytorch-grad-cam classes), their labels and the default.

One registry, read by the pages (labels, the comparison set), the CLI (--cam-method choices) and
model/cam.py, which runs any of them through the same machinery: the classes differ only in how they weigh
the target layer's feature map.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, LayerCAM

# XGrad-CAM and HiResCAM are left out on purpose: with a global-average-pool + linear head (every timm CNN
# here) they give exactly the Grad-CAM map after normalisation, so offering them would show the clinician
# three names for one picture.


@dataclass(frozen=True)
class CamMethod:
    cam_class: type  # a pytorch-grad-cam BaseCAM subclass
    label: str
    # The map does not depend on the explained score: shown for comparison, never the default.
    gradient_free: bool = False


CAM_REGISTRY: dict[str, CamMethod] = {
    "gradcam": CamMethod(GradCAM, "Grad-CAM"),
    "gradcam++": CamMethod(GradCAMPlusPlus, "Grad-CAM++"),
    "layercam": CamMethod(LayerCAM, "LayerCAM"),
    "eigencam": CamMethod(
        EigenCAM,
        "EigenCAM (gradient-free: the feature map's main component, not specific to the score)",
        gradient_free=True,
    ),
}
# Views of the one registry, by the names the pages and the CLI read.
CAM_METHODS: dict[str, type] = {name: method.cam_class for name, method in CAM_REGISTRY.items()}
CAM_LABELS: dict[str, str] = {name: method.label for name, method in CAM_REGISTRY.items()}
GRADIENT_FREE = frozenset(name for name, method in CAM_REGISTRY.items() if method.gradient_free)
# The default is the score-specific method that covered the lesion best on average (bench/cam_coverage.py,
# bench/RESULTS.md, 2026-11-27: 75 ISIC 2017 images, default model v2, share of CAM energy inside an Otsu
# lesion mask): Grad-CAM++ 31.9%, LayerCAM 31.1% (paired -0.7%, CI -1.2 to -0.4), Grad-CAM 14.5% — Grad-CAM's
# map was empty (no positive gradient) on 27 of 75 images. EigenCAM covered 44.4% but is gradient-free.
# Re-measured on v2.2.0 (two tails, maps averaged; 2026-11-28): LayerCAM 36.5%, Grad-CAM++ 36.4% (a tie: -0.1%,
# CI -0.6 to +0.4), Grad-CAM 13.8%: the default stays. On v2.3.0 (2026-12-05, same 75 images): LayerCAM 35.7%,
# Grad-CAM++ 35.2% (-0.5%, CI -1.0 to -0.0), Grad-CAM 15.1%: a half-point difference, the default stays.
DEFAULT_METHOD = "gradcam++"
# Shown side by side on the Saliency page unless the clinician picks others: two gradient methods and the
# gradient-free one, so agreement between them can be judged.
COMPARE_BY_DEFAULT = ("gradcam++", "gradcam", "eigencam")  # the default first


def method_name(method: str) -> str:
    """Canonical registry key for 'GradCAM++', 'gradcam_pp', 'Grad-CAM', …"""
    key = re.sub(r"[\s_\-]", "", str(method).lower()).replace("plusplus", "++").replace("pp", "++")
    if key not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r}; known: {', '.join(CAM_METHODS)}")
    return key
