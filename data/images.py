"""Image decoding that survives real files.

Every failure becomes an ImageDecodeError naming the file and a reason a clinician can act on;
every success is an 8-bit RGB PIL image in display orientation.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# 100 megapixels: more than any dermatoscope or phone produces, far below a decompression bomb.
MAX_PIXELS = 100_000_000
ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated upload must fail loudly, not be padded grey


class ImageDecodeError(ValueError):
    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def image_extensions() -> set[str]:
    """Every file extension Pillow can open (lower case, with the dot)."""
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
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
    if isinstance(source, str | Path):
        path = Path(source)
        name = name or path.name
        try:
            return path.read_bytes(), name
        except FileNotFoundError:
            raise ImageDecodeError(name, "file not found") from None
        except OSError as exc:
            raise ImageDecodeError(name, f"cannot read file ({exc.strerror or exc})") from None
    return bytes(source), name or "<upload>"


def decode_image(source: bytes | str | Path, name: str | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode bytes or a path into an upright RGB image, or raise ImageDecodeError."""
    data, name = read_source(source, name)
    if not data:
        raise ImageDecodeError(name, "file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageDecodeError(
                    name,
                    f"image too large ({width}×{height} = {width * height / 1e6:.0f} megapixels; "
                    f"the limit is {max_pixels / 1e6:.0f} megapixels)",
                )
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError(name, "not a recognised image format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(name, f"image too large, refused as a possible decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            reason = "image data is truncated (incomplete file)"
        raise ImageDecodeError(name, f"corrupt image data: {reason}") from None
