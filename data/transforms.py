"""Train/eval transforms suited to dermoscopy (no canonical orientation, variable lighting)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
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


@dataclass(frozen=True)
class ShadesOfGray:
    """Colour constancy (Finlayson & Trezzi 2004; for dermoscopy Barata et al. 2015): estimate the light's
    colour as the Minkowski p-norm of each channel and divide it out, so every image looks lit by white
    light. Cameras, light sources and white balance differ between clinics and ISIC sources; a network that
    sees them can learn the source instead of the lesion.

    The estimate comes from a <= `estimate_side` px copy (a global statistic; the full image gives the same
    gains to within ~1%) and is applied as a per-channel lookup table, so it costs little at any size."""

    power: float = 6.0
    estimate_side: int = 256

    def gains(self, img: Image.Image) -> np.ndarray:
        """The per-channel factors that map the estimated light to grey (mean gain 1)."""
        small = img.convert("RGB")
        if max(small.size) > self.estimate_side:
            small = small.copy()
            small.thumbnail((self.estimate_side, self.estimate_side), Image.Resampling.BILINEAR)
        pixels = np.asarray(small, dtype=np.float64).reshape(-1, 3) / 255.0
        light = np.power(np.mean(np.power(pixels, self.power), axis=0), 1.0 / self.power)
        if not np.all(light > 1e-6):
            return np.ones(3)  # a black channel: nothing to estimate from, leave the image as it is
        white = light / np.linalg.norm(light) * np.sqrt(3.0)
        return 1.0 / white

    def __call__(self, img: Image.Image) -> Image.Image:
        img = img.convert("RGB")
        levels = np.arange(256, dtype=np.float64)
        table = np.concatenate([np.clip(np.rint(levels * g), 0, 255) for g in self.gains(img)])
        return img.point(table.astype(np.uint8).tolist())


# Preprocessing steps a checkpoint can record under `preprocess` (its config.json), by key, in the order applied;
# each entry's value is the step's keyword arguments.
PREPROCESS_STEPS = {"reencode": Reencode, "colour_constancy": ShadesOfGray}


def preprocess_steps(preprocess: dict | None) -> list:
    """The pixel steps a checkpoint records, in PREPROCESS_STEPS order (they run on the decoded image)."""
    preprocess = preprocess or {}
    unknown = set(preprocess) - set(PREPROCESS_STEPS)
    if unknown:
        raise ValueError(f"unknown preprocessing step(s) {sorted(unknown)}; known: {sorted(PREPROCESS_STEPS)}")
    return [step(**preprocess[key]) for key, step in PREPROCESS_STEPS.items() if preprocess.get(key) is not None]


def colour_constancy_step(power: float | None) -> dict | None:
    """The `preprocess` entry for Shades of Gray with this Minkowski power (None: no colour constancy)."""
    return None if power is None else {"colour_constancy": {"power": float(power)}}


def with_reencode(config: dict, reencode: dict | None) -> dict:
    """A checkpoint config whose recorded re-encoding is `reencode` (None: none); its other pixel steps kept."""
    steps = {k: v for k, v in (config.get("preprocess") or {}).items() if k != "reencode"}
    if reencode is not None:
        steps["reencode"] = reencode
    return {**{k: v for k, v in config.items() if k != "preprocess"}, **({"preprocess": steps} if steps else {})}


def inference_transform(
    image_size: int, mean: tuple[float, ...], std: tuple[float, ...], preprocess: dict | None = None
) -> v2.Compose:
    """The eval transform, preceded by the checkpoint's recorded pixel steps (re-encoding, colour constancy)."""
    steps = eval_transform(image_size, mean, std)
    before = preprocess_steps(preprocess)
    return v2.Compose([*before, steps]) if before else steps


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
