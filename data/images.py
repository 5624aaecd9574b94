"""Image decoding that survives real files, and the one input-validation layer for lesion images.

Every failure becomes an ImageDecodeError naming the file and a reason a clinician can act on;
every success is an 8-bit RGB PIL image in display orientation.

The same rules apply wherever an image enters: the predict CLI, the dashboard upload and triage, the
training data and the Grad-CAM writer all decode through `decode_image`, so a file is accepted or
refused everywhere alike, with the same words:

* one pixel limit (`MAX_PIXELS`, 100 megapixels), checked on the header before anything is decoded;
  Pillow's own decompression-bomb guard is aligned with it (`Image.MAX_IMAGE_PIXELS`) and its
  wording is replaced by ours;
* one lesion geometry: at least `MIN_SIDE` pixels on the short side, at most `MAX_ASPECT`:1 long to
  short side (a 1×1 pixel, a 300000×1 strip or a banner is not a lesion photograph);
* one multi-frame policy: a file holding several pictures (animated GIF/WebP/PNG, multi-page TIFF) is
  refused, never silently scored on its first frame; a phone JPEG that carries a preview or depth frame
  (MPO) is the single photograph it shows, and its primary image is used.
"""

from __future__ import annotations

import io
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from data.errors import TriageError
from data.settings import LIMITS

# The one pixel limit of every input (data/settings.py: 100 megapixels).
MAX_PIXELS = LIMITS.max_pixels
# Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that with its own "DOS attack" wording;
# aligned with our limit so no file between Pillow's default (89 MP) and ours is refused in other words.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Below 32 px on the short side there is no dermoscopic structure left to score: the network would
# see an upscaled blur. Dermatoscope and phone images are hundreds to thousands of pixels.
MIN_SIDE = 32
# The network sees a square; a lesion photograph is at most a wide 16:9 frame. Beyond 4:1 the image is
# a strip, a banner or a scan line and would be squashed fourfold or more.
MAX_ASPECT = 4.0
# Formats that carry extra frames which are not separate pictures: MPO is a JPEG with a preview/depth frame.
SINGLE_PICTURE_MULTIFRAME = {"MPO"}
ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated upload must fail loudly, not be padded grey


class ImageDecodeError(TriageError, ValueError):
    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class ImageFacts:
    """What the header says about an accepted image (before any pixel is decoded)."""

    format: str
    width: int
    height: int
    frames: int = 1


def image_extensions() -> set[str]:
    """Every file extension Pillow can open (lower case, with the dot)."""
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def too_large_reason(pixels: int, max_pixels: int = MAX_PIXELS, width: int | None = None, height: int | None = None):
    """The one wording of the pixel limit (used by the CLI, the dashboard and the training data)."""
    size = f": {width:,}×{height:,} px" if width is not None and height is not None else ""
    return (
        f"image too large ({pixels / 1e6:.0f} megapixels){size}; the limit is {max_pixels / 1e6:.0f} megapixels"
        " — export a smaller copy"
    )


def geometry_problem(width: int, height: int) -> str | None:
    """Why an image of this size cannot be a lesion photograph, or None when it can."""
    short, long = min(width, height), max(width, height)
    if short < MIN_SIDE:
        return (
            f"image is only {width}×{height} px; a lesion image needs at least {MIN_SIDE} px on each side "
            "(is this a thumbnail or an icon?)"
        )
    if long > MAX_ASPECT * short:
        return (
            f"image is {width}×{height} px, {long / short:.1f} times longer than wide; a lesion image may be "
            f"at most {MAX_ASPECT:g}:1 (crop it to the lesion)"
        )
    return None


def frame_count(img: Image.Image) -> int:
    try:
        return int(getattr(img, "n_frames", 1) or 1)
    except (OSError, SyntaxError, ValueError, EOFError):
        return 1  # a damaged later frame: the full decode reports it


def multiframe_problem(img: Image.Image) -> str | None:
    """The multi-frame policy: several pictures in one file are refused (MPO counts as one picture)."""
    frames = frame_count(img)
    if frames <= 1 or img.format in SINGLE_PICTURE_MULTIFRAME:
        return None
    what = "pages" if img.format == "TIFF" else "frames"
    return (
        f"the file holds {frames} {what} ({img.format}); a lesion image must be a single picture "
        "— save the one to score as its own file"
    )


def to_rgb(img: Image.Image) -> Image.Image:
    """Any decoded Pillow image as 8-bit RGB, by the same rules as `decode_image`: 16-bit and float
    greyscale scaled (not clipped; a float image whose values stay within 0-1 is read as 0-1), palettes
    expanded, transparency composited on white."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        if img.mode == "F" and arr.max() <= 1.0:  # float images are usually 0-1 (divided by 255: black)
            top = 1.0
        arr = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa"):
        # Transparent margins become white, like the paper a dermoscopy image is usually shown on.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def read_source(source: bytes | str | Path, name: str | None = None) -> tuple[bytes, str]:
    """The bytes of a path or an upload, and the name to report errors under."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), name or "<upload>"
    if not isinstance(source, str | Path):
        raise ImageDecodeError(name or "<unknown>", f"no image file given (got {type(source).__name__})")
    path = Path(source)
    name = name or path.name
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):  # a pipe would block the read for ever, a device never end
            raise ImageDecodeError(name, "not a regular file (a pipe, device or socket)")
        if info.st_size > LIMITS.max_image_bytes:  # before reading it: a 1 GB file is refused, not loaded
            raise ImageDecodeError(
                name, f"the file is {info.st_size / 2**20:.0f} MB; at most {LIMITS.max_image_mb} MB is accepted"
            )
        return path.read_bytes(), name
    except FileNotFoundError:
        raise ImageDecodeError(name, "file not found") from None
    except IsADirectoryError:
        raise ImageDecodeError(name, "is a folder, not an image file") from None
    except OSError as exc:
        raise ImageDecodeError(name, f"cannot read file ({exc.strerror or exc})") from None


_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def _open_checked(
    data: bytes, name: str, max_pixels: int, formats: tuple[str, ...] | None, lesion: bool
) -> tuple[Image.Image, ImageFacts]:
    """Open (header only) and apply the pixel limit, the multi-frame policy and the lesion geometry."""
    if not data:
        raise ImageDecodeError(name, "file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our limit is checked below with our words; Pillow's warning (same threshold) adds nothing.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=list(formats) if formats else None)
    except UnidentifiedImageError:
        if formats:
            raise ImageDecodeError(
                name, f"not an image in an accepted format (accepted: {', '.join(formats)})"
            ) from None
        raise ImageDecodeError(name, "not a recognised image format") from None
    except Image.DecompressionBombError as exc:
        # Pillow refuses to open beyond twice its limit; its message carries the pixel count.
        found = _BOMB_PIXELS.search(str(exc))
        raise ImageDecodeError(name, too_large_reason(int(found.group(1)) if found else 0, max_pixels)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(name, f"corrupt image data: {str(exc) or type(exc).__name__}") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError(name, f"image has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise ImageDecodeError(name, too_large_reason(width * height, max_pixels, width, height))
    if lesion:
        problem = geometry_problem(width, height)
        if problem:
            raise ImageDecodeError(name, problem)
    problem = multiframe_problem(img)
    if problem:
        raise ImageDecodeError(name, problem)
    return img, ImageFacts(format=img.format or "", width=width, height=height, frames=frame_count(img))


def probe_image(
    source: bytes | str | Path,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
    formats: tuple[str, ...] | None = None,
    lesion: bool = True,
) -> ImageFacts:
    """Check a file against the input rules from its header alone; ImageDecodeError when it breaks one."""
    data, name = read_source(source, name)
    img, facts = _open_checked(data, name, max_pixels, formats, lesion)
    img.close()
    return facts


def decode_image(
    source: bytes | str | Path,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
    formats: tuple[str, ...] | None = None,
    lesion: bool = True,
) -> Image.Image:
    """Decode bytes or a path into an upright RGB image, or raise ImageDecodeError.

    formats: Pillow format names to accept (default: any Pillow reads). lesion=False skips the lesion
    geometry (for images that are not lesion photographs); the pixel limit and the multi-frame policy
    always apply.
    """
    data, name = read_source(source, name)
    img, _ = _open_checked(data, name, max_pixels, formats, lesion)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb(img)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            reason = "image data is truncated (incomplete file)"
        raise ImageDecodeError(name, f"corrupt image data: {reason}") from None


def jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    """`image` encoded as JPEG (thumbnails sent to the browser; never the stored or scored pixels)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
