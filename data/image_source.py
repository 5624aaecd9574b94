"""Does an image come from a clearly different source than the patient's other images?

An image from another camera or resolution can look unlike the patient's other lesions only because of its
source: a 200×150 photo among 1024 px dermoscopy, or a small image upscaled, stood out as an "ugly duckling"
for that reason alone. These pure functions describe each image's source (pixel size, fine detail, the
EXIF camera when the upload still has it) and name the images that differ clearly from the patient's others:

    sources = [describe_source(img, camera_model(raw)) for img, raw in uploads]
    caveats = source_caveats(sources, references=earlier_sources)   # one message or None per image

Fine detail: the mean absolute difference between the image and itself halved and enlarged again (what a
2× upscale lacks), over the mean difference from a σ=4 blur (the image's texture), on the grey image. On
real dermoscopy (isic2020_patients at 384 px, HAM10000 at 200×150) it is 0.36-0.61; the same images
upscaled 2× or 3× give 0.17-0.30. An image below UPSCALED_SHARE of the patient's median is flagged
(upscaled or heavily compressed).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

SIZE_FACTOR = 2.0  # shorter side at least this many times larger or smaller than the patient's median
ASPECT_FACTOR = 1.25  # width/height this far from the patient's median shape (4:3 vs 1:1 is 1.33)
UPSCALED_SHARE = 0.6  # fine detail under this share of the patient's median: likely upscaled
MIN_IMAGES = 3  # with fewer images there is no "usual" source to differ from
_EXIF_MAKE, _EXIF_MODEL = 271, 272


@dataclass(frozen=True)
class ImageSource:
    width: int
    height: int
    detail: float  # fine detail (see the module docstring); lower = smoother, e.g. upscaled
    camera: str | None = None  # EXIF make + model of the upload, when it had one

    @property
    def shorter_side(self) -> int:
        return min(self.width, self.height)

    @property
    def aspect(self) -> float:
        return self.width / self.height


def fine_detail(image: Image.Image) -> float:
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    height, width = grey.shape
    if min(height, width) < 8:
        raise ValueError(f"an image of {width}×{height} px is too small to measure its detail")
    halved = cv2.resize(grey, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    again = cv2.resize(halved, (width, height), interpolation=cv2.INTER_LINEAR)
    texture = float(np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 4)).mean())
    return float(np.abs(grey - again).mean()) / max(texture, 1e-6)


def camera_model(image: Image.Image) -> str | None:
    """EXIF "Make Model" of an image as uploaded (before its metadata is stripped), or None."""
    try:
        exif = image.getexif()
    except (OSError, ValueError, AttributeError):
        return None
    parts = [str(exif.get(tag, "")).strip("\x00 ").strip() for tag in (_EXIF_MAKE, _EXIF_MODEL)]
    make, model = parts
    if model.lower().startswith(make.lower()):
        make = ""  # "Canon Canon EOS 5D" -> "Canon EOS 5D"
    text = " ".join(p for p in (make, model) if p)
    return text[:80] or None


def describe_source(image: Image.Image, camera: str | None = None) -> ImageSource:
    return ImageSource(image.width, image.height, fine_detail(image), camera)


def _differences(source: ImageSource, others: Sequence[ImageSource]) -> list[str]:
    found = []
    usual_side = float(np.median([o.shorter_side for o in others]))
    ratio = source.shorter_side / usual_side
    usual_w = int(np.median([o.width for o in others]))
    usual_h = int(np.median([o.height for o in others]))
    if ratio >= SIZE_FACTOR or ratio <= 1 / SIZE_FACTOR:
        found.append(f"{source.width}×{source.height} px where the others are about {usual_w}×{usual_h} px")
    usual_aspect = float(np.median([o.aspect for o in others]))
    if abs(math.log(source.aspect / usual_aspect)) >= math.log(ASPECT_FACTOR) and not found:
        found.append(f"a {source.width}×{source.height} frame where the others are about {usual_w}×{usual_h}")
    usual_detail = float(np.median([o.detail for o in others]))
    if source.detail < UPSCALED_SHARE * usual_detail:
        found.append("much less fine detail than the others (upscaled or heavily compressed)")
    cameras = Counter(o.camera for o in others if o.camera)
    if source.camera and cameras and source.camera not in cameras:
        found.append(f"taken with {source.camera}, the others with {cameras.most_common(1)[0][0]}")
    return found


def source_caveats(sources: Sequence[ImageSource], references: Sequence[ImageSource] = ()) -> list[str | None]:
    """One caveat (or None) per image in `sources`: how it differs from the patient's other images.

    Each image is compared with all the others of the patient: the other images of this visit and the
    `references` (earlier visits' images), so one odd image does not move the "usual" it is compared with.
    Fewer than MIN_IMAGES images in all: nothing is said (no usual source to differ from).
    """
    everyone = [*sources, *references]
    if len(everyone) < MIN_IMAGES:
        return [None] * len(sources)
    caveats: list[str | None] = []
    for i, source in enumerate(sources):
        found = _differences(source, everyone[:i] + everyone[i + 1 :])
        caveats.append(
            "Image source differs from this patient's other images: "
            + "; ".join(found)
            + ". Its ugly-duckling comparison may reflect the camera or resolution, not the lesion."
            if found
            else None
        )
    return caveats
