"""Train/eval transforms suited to dermoscopy (no canonical orientation, variable lighting)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import torch
from PIL import Image
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


@dataclass(frozen=True)
class Reencode:
    """Re-encode an image the way a model's training images were stored (size limit + lossy codec).

    CNNs are sensitive to compression artefacts: a model trained on WebP images scores the original JPEG
    of the same lesion differently, so inference must reproduce the training pixels' history.
    """

    format: str = "WEBP"
    quality: int = 75
    max_side: int | None = None

    def encode(self, img: Image.Image) -> bytes:
        img = img.convert("RGB")
        if self.max_side and max(img.size) > self.max_side:
            img.thumbnail((self.max_side, self.max_side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        img.save(buffer, self.format, quality=self.quality, method=4)
        return buffer.getvalue()

    def __call__(self, img: Image.Image) -> Image.Image:
        with Image.open(io.BytesIO(self.encode(img))) as decoded:
            return decoded.convert("RGB")


def inference_transform(
    image_size: int, mean: tuple[float, ...], std: tuple[float, ...], preprocess: dict | None = None
) -> v2.Compose:
    """The eval transform, preceded by the checkpoint's recorded re-encoding when it has one."""
    steps = eval_transform(image_size, mean, std)
    if preprocess and preprocess.get("reencode"):
        return v2.Compose([Reencode(**preprocess["reencode"]), steps])
    return steps


@dataclass(frozen=True)
class RandomDegrade:
    """Camera and transport variation on a PIL image: resampling through a smaller size and lossy
    re-compression at a random quality. Sources differ in both (HAM10000 is 200x150 upsampled, ISIC 2020
    is 512 px downsampled; JPEG or WebP at various qualities), and a network that can read them learns the
    source instead of the lesion; with this augmentation no re-encoding is needed at inference."""

    p_resample: float = 0.5
    min_side: int = 96
    p_compress: float = 0.5
    quality: tuple[int, int] = (40, 95)
    formats: tuple[str, ...] = ("JPEG", "WEBP")

    def __call__(self, img: Image.Image) -> Image.Image:
        img = img.convert("RGB")
        if torch.rand(()) < self.p_resample and min(img.size) > self.min_side:
            short = int(torch.randint(self.min_side, min(img.size) + 1, ()).item())
            scale = short / min(img.size)
            size = (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale)))
            methods = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS)
            img = img.resize(size, methods[int(torch.randint(0, len(methods), ()).item())])
        if torch.rand(()) < self.p_compress:
            quality = int(torch.randint(self.quality[0], self.quality[1] + 1, ()).item())
            fmt = self.formats[int(torch.randint(0, len(self.formats), ()).item())]
            buffer = io.BytesIO()
            img.save(buffer, fmt, quality=quality)
            with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
                img = decoded.convert("RGB")
        return img
