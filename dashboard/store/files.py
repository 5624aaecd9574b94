"""Content-addressed image files under the data directory.

Each distinct byte string is stored once, at ``ab/cd/<sha256>.<ext>``, where
``ext`` comes from the format Pillow decoded, never from the uploader's
filename. Files are written to a temporary name in the target directory and
renamed into place, so a crash leaves either the whole file or a stray
``.tmp-*`` file, never a truncated image under its final name.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from dashboard.store.permissions import make_private_dirs
from data.hashing import sha256_bytes, sha256_file

# Formats a dermoscope or phone camera produces. Restricting Image.open to
# these keeps Pillow's rarer (and historically less hardened) decoders out.
FORMAT_EXTENSIONS: dict[str, str] = {"JPEG": "jpg", "PNG": "png", "TIFF": "tif", "WEBP": "webp", "BMP": "bmp"}
# Pillow's JPEG decoder reports many phone photos as MPO (a JPEG with extra frames): stored as the JPEG it is.
STORED_EXTENSIONS: dict[str, str] = {**FORMAT_EXTENSIONS, "MPO": "jpg"}
TEMP_PREFIX = ".tmp-"

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageInfo:
    """What the store learns from an uploaded image before saving it."""

    sha256: str
    image_format: str  # Pillow's name, e.g. "JPEG"
    width: int
    height: int
    byte_size: int

    @property
    def extension(self) -> str:
        return STORED_EXTENSIONS[self.image_format]

    @property
    def relpath(self) -> str:
        return blob_relpath(self.sha256, self.extension)


def is_sha256(value: str) -> bool:
    return isinstance(value, str) and bool(_SHA256_RE.match(value))


def blob_relpath(sha256: str, extension: str) -> str:
    if not is_sha256(sha256):
        raise ValueError("not a lowercase hex SHA-256 digest")
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def inspect_image(data: bytes, *, max_bytes: int, max_pixels: int) -> ImageInfo:
    """Validate that ``data`` is a fully decodable image within the limits.

    Raises ValueError with a message fit to show the clinician.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"image must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise ValueError("image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ValueError(f"image is {_mb(len(data))}, over the {_mb(max_bytes)} upload limit")
    try:
        # Pillow warns (DecompressionBombWarning) above Image.MAX_IMAGE_PIXELS
        # and raises above twice that; treat the warning as a refusal too.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(FORMAT_EXTENSIONS)) as img:
                image_format = img.format or ""
                width, height = img.size
                if width <= 0 or height <= 0:
                    raise ValueError(f"image has invalid dimensions {width}x{height}")
                if width * height > max_pixels:
                    raise ValueError(f"image is {width}x{height} pixels, over the limit of {max_pixels:,} pixels")
                # Header parsing alone accepts truncated files; decode them fully.
                img.load()
    except UnidentifiedImageError:
        raise ValueError(
            "file is not a decodable image (accepted formats: " + ", ".join(FORMAT_EXTENSIONS) + ")"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"image is too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, EOFError) as exc:
        raise ValueError(f"image could not be decoded (corrupt or truncated): {exc}") from None
    if image_format not in STORED_EXTENSIONS:
        raise ValueError(f"unsupported image format {image_format!r}")
    return ImageInfo(
        sha256=sha256_bytes(data), image_format=image_format, width=width, height=height, byte_size=len(data)
    )


class BlobStore:
    """The image files under one data directory."""

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        if create:  # a read-only check (integrity) must not create a mistyped folder
            make_private_dirs(self.root)

    def path(self, relpath: str) -> Path:
        """Absolute path of a stored relative path, refusing anything outside the root."""
        path = (self.root / relpath).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError("stored image path points outside the data directory")
        return path

    def put(self, data: bytes, info: ImageInfo) -> bool:
        """Store ``data`` under its content address. Returns True if a file was written.

        Identical bytes already on disk are left alone; a file whose content no
        longer matches its name (corruption) is replaced by the good bytes.
        """
        if sha256_bytes(data) != info.sha256:
            raise ValueError("image bytes do not match their computed SHA-256")
        target = self.path(info.relpath)
        if target.is_file() and sha256_file(target) == info.sha256:
            # In use again: a fresh time keeps the orphan pruner (which spares files changed within the hour)
            # off a file an earlier review left unreferenced and this save is about to refer to.
            os.utime(target)
            return False
        make_private_dirs(target.parent)
        fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".part", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, target)  # atomic on POSIX within one filesystem
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return True

    def remove(self, relpath: str) -> None:
        """Delete a stored file (orphan pruning); refuses paths outside the root like ``path``."""
        self.path(relpath).unlink(missing_ok=True)

    def iter_files(self) -> Iterator[Path]:
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                yield Path(dirpath) / name


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some filesystems do not support it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
