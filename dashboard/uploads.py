"""Uploaded files -> lesion images: the upload limits, zip archives read in memory, image checks.

Every image goes through the input rules shared with the predict CLI and the training data
(data.images: one pixel limit, the lesion geometry, one picture per file) and the store's own check, so
what is accepted here is what the store keeps and the model scores. No Streamlit here.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

from PIL import Image

from dashboard.store.files import FORMAT_EXTENSIONS, inspect_image
from dashboard.store.privacy import filename_looks_personal
from data.images import ImageDecodeError, decode_image, jpeg_bytes, probe_image
from data.settings import LIMITS, MIB, Limits

IMAGE_SUFFIXES = tuple(sorted({"jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp"}))
UPLOAD_TYPES = (*IMAGE_SUFFIXES, "zip")
# Pillow formats an upload may be (those the store keeps); the scoring decodes them with the same rules.
UPLOAD_FORMATS = tuple(FORMAT_EXTENSIONS)
# Operating-system clutter inside archives: skipped without an error card.
_JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
# Documents that travel in a zip beside the images (a notes.txt, a referral PDF): skipped with a notice,
# not an error card — nothing is wrong with the upload.
_DOCUMENT_SUFFIXES = {".txt", ".md", ".csv", ".tsv", ".json", ".xml", ".pdf", ".doc", ".docx", ".rtf", ".odt"}
_DOCUMENT_SUFFIXES |= {".xls", ".xlsx", ".ods", ".html", ".htm", ".log"}

DISPLAY_PX = 768  # saliency maps are computed and shown at this size, not at full resolution

ProblemKind = Literal["error", "duplicate", "notice", "skipped", "other_patient"]


# ---------------------------------------------------------------- upload limits


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int = LIMITS.max_image_bytes  # per image (data/settings.py; the store's own limit)
    max_pixels: int = LIMITS.max_pixels  # the one pixel limit of every input (data/settings.py), the store's too
    max_images: int = 200  # per review
    max_total_bytes: int = 600 * 1024 * 1024  # all images of one review, held in memory
    max_zip_members: int = 1_000
    max_zip_uncompressed: int = 1024 * 1024 * 1024
    max_compression_ratio: float = 100.0  # JPEG/PNG barely compress; 100x is a zip bomb
    thumbnail_px: int = 384


DEFAULT_LIMITS = UploadLimits()
# The file uploader's own limit (its caption shows it): one image, or one zip of images, per file.
UPLOAD_FILE_MB = DEFAULT_LIMITS.max_file_bytes // MIB


def upload_help(limits: Limits = LIMITS) -> str:
    """The uploader's help text: the accepted types and the limits, from the settings the checks use."""
    return (
        f"Accepted: {', '.join(UPLOAD_TYPES)} — up to {limits.max_image_mb} MB and {limits.max_megapixels} "
        "megapixels per image. Identical images are recognised and loaded once."
    )


def uploader_label(limits: Limits = LIMITS) -> str:
    return (
        "Drop all of this patient's lesion images here — several at once, or a zip of them (each file up to "
        f"{limits.max_image_mb} MB)"
    )


def as_mb(n: float) -> str:
    return f"{n / MIB:.1f} MB"


@dataclass(frozen=True)
class UploadProblem:
    filename: str
    reason: str
    kind: ProblemKind = "error"


@dataclass
class UploadedImage:
    """One lesion image of the review in progress."""

    sha256: str
    filename: str
    data: bytes = field(repr=False)
    image_format: str
    width: int
    height: int
    thumbnail: Image.Image = field(repr=False)
    site: str = "unknown"
    label: str = ""
    existing_lesion_id: int | None = None
    _display: Image.Image | None = field(default=None, repr=False, compare=False)
    _thumb_jpeg: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        """Short, stable id for widget keys."""
        return self.sha256[:16]

    def image(self) -> Image.Image:
        """The full-size, upright RGB image."""
        return decode_image(self.data, self.filename)

    def thumbnail_jpeg(self) -> bytes:
        """The thumbnail encoded once, so reruns of the page do not re-encode every image."""
        if self._thumb_jpeg is None:
            self._thumb_jpeg = jpeg_bytes(self.thumbnail, quality=90)
        return self._thumb_jpeg

    def display_image(self, max_px: int = DISPLAY_PX) -> Image.Image:
        """Upright RGB at most `max_px` on a side (decoded once): for overlays and the saliency page."""
        if self._display is None:
            img = self.image()
            img.thumbnail((max_px, max_px))
            self._display = img
        return self._display


def is_zip(name: str, data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06") or name.lower().endswith(".zip")


def is_junk(member: str) -> bool:
    parts = PurePosixPath(member).parts
    return (
        any(p == "__MACOSX" for p in parts)
        or PurePosixPath(member).name.lower() in _JUNK_NAMES
        or PurePosixPath(member).name.startswith("._")
    )


def expand_upload(
    name: str, data: bytes, limits: UploadLimits = DEFAULT_LIMITS
) -> Iterator[tuple[str, bytes] | UploadProblem]:
    """One uploaded file -> its images: itself, or the members of a zip archive.

    Archives are read in memory with hard limits (member count, uncompressed total, per-file size
    checked against the bytes actually read, compression ratio), so a zip bomb is refused, never
    inflated. Nothing is written to disk.
    """
    if not is_zip(name, data):
        yield name, data
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir() and not is_junk(i.filename)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        yield UploadProblem(name, f"damaged or unreadable zip archive ({exc})")
        return
    if not infos:
        yield UploadProblem(name, "the zip archive contains no files")
        return
    if len(infos) > limits.max_zip_members:
        yield UploadProblem(
            name,
            f"the zip archive holds {len(infos):,} files; at most {limits.max_zip_members:,} are accepted",
        )
        return
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_zip_uncompressed:
        yield UploadProblem(
            name,
            f"the zip archive unpacks to {as_mb(declared)}; at most {as_mb(limits.max_zip_uncompressed)} is accepted",
        )
        return
    read_total = 0
    with archive:
        for info in infos:
            member = f"{name}/{info.filename}"
            if info.flag_bits & 0x1:
                yield UploadProblem(member, "encrypted (password-protected) file; cannot be read")
                continue
            if PurePosixPath(info.filename).suffix.lower() in _DOCUMENT_SUFFIXES:
                yield UploadProblem(member, "not an image (a document in the zip); skipped", "skipped")
                continue
            if info.filename.lower().endswith(".zip"):
                yield UploadProblem(member, "zip archives inside a zip archive are not opened")
                continue
            if info.file_size > limits.max_file_bytes:
                yield UploadProblem(
                    member,
                    f"file is {as_mb(info.file_size)}; the limit is {as_mb(limits.max_file_bytes)} per image",
                )
                continue
            if info.compress_size and info.file_size / info.compress_size > limits.max_compression_ratio:
                yield UploadProblem(member, "suspicious compression ratio (zip-bomb protection); file not opened")
                continue
            try:
                with archive.open(info) as handle:
                    # Never trust the header: read at most one byte over the limit.
                    content = handle.read(limits.max_file_bytes + 1)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
                yield UploadProblem(member, f"cannot be extracted from the archive ({exc})")
                continue
            if len(content) > limits.max_file_bytes:
                yield UploadProblem(member, f"file is over the limit of {as_mb(limits.max_file_bytes)} per image")
                continue
            read_total += len(content)
            if read_total > limits.max_zip_uncompressed:
                yield UploadProblem(name, "the zip archive unpacks to more than its header says; stopped reading")
                return
            yield member, content


def check_image(
    name: str, data: bytes, limits: UploadLimits = DEFAULT_LIMITS
) -> tuple[dict[str, Any], Image.Image] | UploadProblem:
    """Validate one image file -> (facts, thumbnail) or a problem naming the reason in plain words."""
    if not data:
        return UploadProblem(name, "file is empty (0 bytes)")
    if len(data) > limits.max_file_bytes:
        return UploadProblem(name, f"file is {as_mb(len(data))}; the limit is {as_mb(limits.max_file_bytes)} per image")
    # The input rules shared with the predict CLI and the training data (data.images), on the header alone
    # before anything is decoded: the pixel limit, the lesion geometry, one picture per file.
    try:
        probe_image(data, name, max_pixels=limits.max_pixels, formats=UPLOAD_FORMATS)
    except ImageDecodeError as exc:
        if exc.reason.startswith("not an image in an accepted format"):
            return UploadProblem(
                name,
                "not an image this dashboard can read (accepted: JPEG, PNG, TIFF, WebP, BMP, or a zip of these)",
            )
        return UploadProblem(name, exc.reason)
    try:
        info = inspect_image(data, max_bytes=limits.max_file_bytes, max_pixels=limits.max_pixels)
    except ValueError as exc:
        reason = str(exc)
        if "truncated" in reason.lower() or "corrupt" in reason.lower():
            reason = "corrupt or truncated image data (the file is incomplete or damaged)"
        return UploadProblem(name, reason)
    try:
        full = decode_image(data, name, max_pixels=limits.max_pixels, formats=UPLOAD_FORMATS)
    except ImageDecodeError as exc:
        return UploadProblem(name, exc.reason)
    thumb = full.copy()
    thumb.thumbnail((limits.thumbnail_px, limits.thumbnail_px))
    facts = {
        "sha256": info.sha256,
        "image_format": info.image_format,
        "width": full.width,
        "height": full.height,
    }
    return facts, thumb


def default_label(filename: str, number: int | None = None) -> str:
    """The file name's stem, unless it reads like a name or a date (then "lesion <number>"): labels reach the
    store, its exports and the reports."""
    stem = PurePosixPath(filename.replace("\\", "/")).stem.strip()
    if not stem or filename_looks_personal(filename):
        return "lesion" if number is None else f"lesion {number}"
    return stem[: LIMITS.label_max]


def png_bytes(image: Image.Image) -> bytes:
    """An image as lossless PNG bytes (for a download button)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
