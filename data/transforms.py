"""Train/eval transforms suited to dermoscopy (no canonical orientation, variable lighting)."""

from __future__ import annotations

import torch
from torchvision.transforms import v2


class RandomRot90:
    """Dermoscopy has no 'up': every 90° rotation is an equally valid view."""

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        k = int(torch.randint(0, 4, ()).item())
        return torch.rot90(img, k, dims=(-2, -1)) if k else img


def eval_transform(image_size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> v2.Compose:
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.Resize((image_size, image_size), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )


def train_transform(image_size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> v2.Compose:
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.RandomResizedCrop((image_size, image_size), scale=(0.6, 1.0), ratio=(0.8, 1.25), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            RandomRot90(),
            v2.RandomApply([v2.RandomAffine(degrees=30, translate=(0.05, 0.05), scale=(0.9, 1.1))], p=0.5),
            # Lighting and camera differ between clinics; hue is left alone (costly, and colour is diagnostic).
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.15),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )
