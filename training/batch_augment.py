"""Training augmentation on whole batches of uint8 images (on the GPU when there is one).

Why: on a GPU the per-image PIL pipeline (data.transforms.train_transform after RandomDegrade, ~9 ms per
image per CPU core, measured in bench/RESULTS.md) cannot feed the network; the images are small, so the
whole training set is decoded once into one uint8 tensor (training/decoded_images.py) and each batch is
augmented here, with the same distributions as the PIL pipeline:

- resampling through a smaller size and JPEG re-compression (RandomDegrade; WebP has no GPU codec, so JPEG
  only, one quality per batch);
- a random resized crop (area 0.6-1, aspect 0.8-1.25), horizontal and vertical flips, a random multiple of
  90 degrees and, with p=0.5, a small affine (+-30 degrees, 5% shift, scale 0.9-1.1), composed into ONE
  affine map per image and sampled once (affine_grid + grid_sample), so the image is resampled once;
- brightness, contrast and saturation jitter (0.2, 0.2, 0.15);
- then the network's normalisation.

Random parameters are drawn on the CPU from a torch.Generator, so a seed gives the same augmentations on
any device.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.io import decode_jpeg, encode_jpeg


@dataclass(frozen=True)
class BatchAugment:
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    degrade: bool = True
    crop_scale: tuple[float, float] = (0.6, 1.0)
    crop_ratio: tuple[float, float] = (0.8, 1.25)
    p_affine: float = 0.5
    degrees: float = 30.0
    translate: float = 0.05
    affine_scale: tuple[float, float] = (0.9, 1.1)
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.15
    p_resample: float = 0.5
    min_side: int = 96
    p_compress: float = 0.5
    quality: tuple[int, int] = (40, 95)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> normalised float (B, 3, size, size), on the images' device."""
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 images (B, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        if self.degrade:
            images = self.resample(images, generator)
            images = self.compress(images, generator)
        x = images.float() / 255.0
        theta = self.geometry(len(x), generator).to(x.device)
        grid = F.affine_grid(theta, [len(x), 3, self.size, self.size], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        x = self.colour(x, generator)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    # ------------------------------------------------------------ camera and transport

    def resample(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """With p_resample, down to a random side in [min_side, H] and back up (a lower-resolution camera)."""
        side = images.shape[-1]
        if side <= self.min_side:
            return images
        chosen = torch.rand(len(images), generator=generator) < self.p_resample
        sides = torch.randint(self.min_side, side + 1, (len(images),), generator=generator)
        out = images.clone()
        for i in chosen.nonzero().flatten().tolist():
            small = F.interpolate(images[i : i + 1].float(), size=int(sides[i]), mode="bilinear", antialias=True)
            back = F.interpolate(small, size=images.shape[-2:], mode="bilinear", align_corners=False)
            out[i] = back.round().clamp(0, 255).to(torch.uint8)[0]
        return out

    def compress(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """With p_compress, JPEG at one random quality per batch (nvjpeg on a GPU).

        torchvision.io's codecs are deprecated from torchvision 0.29 in favour of torchcodec, which neither this
        machine nor the GPU machine has; they still work in both (0.29 here, 0.26 there)."""
        chosen = (torch.rand(len(images), generator=generator) < self.p_compress).nonzero().flatten().tolist()
        quality = int(torch.randint(self.quality[0], self.quality[1] + 1, (), generator=generator))
        if not chosen:
            return images
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The image decoding and encoding", DeprecationWarning)
            encoded = encode_jpeg([images[i].contiguous() for i in chosen], quality=quality)
            if images.device.type == "cuda":
                decoded = decode_jpeg(encoded, device=images.device)
            else:
                decoded = [decode_jpeg(e) for e in encoded]
        out = images.clone()
        for i, image in zip(chosen, decoded, strict=True):
            out[i] = image
        return out

    # ------------------------------------------------------------ geometry and colour

    def geometry(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, 2, 3) maps from output to input coordinates (affine_grid's convention), one per image."""

        def uniform(low: float, high: float) -> torch.Tensor:
            return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)

        area = uniform(*self.crop_scale)
        ratio = torch.exp(uniform(math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1])))
        w = torch.sqrt(area * ratio).clamp(max=1.0)  # half-extent in [-1, 1] coordinates: 1 = the whole image
        h = torch.sqrt(area / ratio).clamp(max=1.0)
        cx, cy = uniform(-1, 1) * (1 - w), uniform(-1, 1) * (1 - h)
        crop = _matrices(w, 0 * w, cx, 0 * w, h, cy)
        flip_x = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).double()
        flip_y = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).double()
        flips = _matrices(flip_x, 0 * w, 0 * w, 0 * w, flip_y, 0 * w)
        quarter = torch.randint(0, 4, (n,), generator=generator).double() * (math.pi / 2)
        rot90 = _rotation(quarter, torch.ones(n, dtype=torch.float64), 0 * w, 0 * w)
        use = torch.rand(n, generator=generator) < self.p_affine
        angle = torch.deg2rad(uniform(-self.degrees, self.degrees)) * use
        scale = torch.where(use, uniform(*self.affine_scale), torch.ones(n, dtype=torch.float64))
        shift = 2 * self.translate
        tx, ty = uniform(-shift, shift) * use, uniform(-shift, shift) * use
        affine = _rotation(angle, 1 / scale, tx, ty)
        theta = crop @ flips @ rot90 @ affine
        return theta[:, :2, :].float()

    def colour(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = len(x)

        def factor(amount: float) -> torch.Tensor:
            return (1 + amount * (2 * torch.rand(n, generator=generator) - 1)).view(n, 1, 1, 1).to(x.device)

        b, c, s = factor(self.brightness), factor(self.contrast), factor(self.saturation)
        x = (x * b).clamp(0, 1)
        gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
        x = ((x - gray.mean((2, 3), keepdim=True)) * c + gray.mean((2, 3), keepdim=True)).clamp(0, 1)
        gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
        return ((x - gray) * s + gray).clamp(0, 1)


def _matrices(a, b, c, d, e, f) -> torch.Tensor:
    """(n, 3, 3) homogeneous matrices [[a, b, c], [d, e, f], [0, 0, 1]]."""
    row3 = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(len(a), 3)
    return torch.stack([torch.stack([a, b, c], 1), torch.stack([d, e, f], 1), row3], 1)


def _rotation(angle: torch.Tensor, scale: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    return _matrices(cos, -sin, tx, sin, cos, ty)
