"""Personal data that must not reach the case store: image metadata, and identifiers that name a person.

``strip_metadata(data)`` returns the image bytes the store keeps: no EXIF (GPS, camera owner, "Artist",
dates), no XMP, no IPTC, no comments, no ICC profile, no embedded thumbnails or extra MPO frames, and the
EXIF orientation applied to the pixels. Decoded pixels stay exactly those of the (oriented) upload:

- a JPEG that needs no rotation keeps its compressed scan data byte for byte; metadata segments
  (APP1–APP13, APP15, COM) and anything after the first image's end marker are dropped, and the two kept
  for decoding are cut to their standard fields (JFIF APP0: 14 bytes, its thumbnail dropped; Adobe
  APP14: 12 bytes), so that text appended to them does not travel; other APP0/APP14 content is dropped;
- anything else (a rotated JPEG, PNG, TIFF, WebP, BMP) is decoded, rotated upright and written as a
  lossless PNG without text chunks.

``identifier_warnings(text)`` says when a patient identifier looks like a name or a date of birth.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from pathlib import PurePosixPath

from PIL import Image, ImageOps

from data.errors import TriageError
from data.images import to_rgb

# JPEG markers without a length field.
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_APP0, _APP14 = 0xE0, 0xEE
# Kept, cut to their standard fields: APP0 (JFIF: pixel density) and APP14 (Adobe: the colour transform the
# decoder needs).
_DROP = {*range(0xE1, 0xEE), 0xEF, 0xFE}  # APP1..APP13, APP15, COM
_JFIF_FIELDS = 14  # "JFIF\0", version 2, units 1, densities 2 + 2, thumbnail size 1 + 1
_ADOBE_FIELDS = 12  # "Adobe", version 2, flags 2 + 2, transform 1
# Modes PNG keeps as they are. Any other (32-bit or big-endian 16-bit grey, float, CMYK, ...) is stored as the
# 8-bit RGB it was scored as (data.images.to_rgb): Pillow cannot write mode I as PNG, and its own conversion
# clips 16-bit grey to white.
_PNG_MODES = {"1", "L", "LA", "I;16", "P", "RGB", "RGBA"}
_EXIF_ORIENTATION = 0x0112


class MetadataError(TriageError, ValueError):
    """The image could not be cleaned (a malformed JPEG structure)."""


def strip_metadata(data: bytes) -> bytes:
    """The image without personal metadata, orientation applied (see the module docstring).

    Returns ``data`` itself when there is nothing to remove, so clean uploads keep their hash.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # limits are checked by the caller
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
            if fmt in ("JPEG", "MPO") and orientation in (1, None):
                return _strip_jpeg(data)
            upright = ImageOps.exif_transpose(img)
            if upright is None:  # pragma: no cover - only with in_place=True
                upright = img
            if upright.mode not in _PNG_MODES:
                upright = to_rgb(upright)
            out = io.BytesIO()
            # Pixels only: no pnginfo or exif, and icc_profile=None, or Pillow copies the upload's profile.
            upright.save(out, format="PNG", optimize=False, icc_profile=None)
            return out.getvalue()


def _segment_length(data: bytes, pos: int) -> int:
    if pos + 4 > len(data):
        raise MetadataError("JPEG segment header runs past the end of the file")
    (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
    if length < 2 or pos + 2 + length > len(data):
        raise MetadataError("JPEG segment length runs past the end of the file")
    return length


def _strip_jpeg(data: bytes) -> bytes:
    if data[:2] != b"\xff\xd8":
        raise MetadataError("not a JPEG (no start-of-image marker)")
    out = bytearray(b"\xff\xd8")
    pos = 2
    dropped = False
    in_scan = False
    n = len(data)
    while pos < n:
        if in_scan:
            # Entropy-coded data: copy up to the next real marker (FF00 is a stuffed byte, FFD0-D7 restarts).
            nxt = data.find(b"\xff", pos)
            while nxt != -1 and nxt + 1 < n and (data[nxt + 1] == 0x00 or 0xD0 <= data[nxt + 1] <= 0xD7):
                nxt = data.find(b"\xff", nxt + 2)
            if nxt == -1 or nxt + 1 >= n:
                raise MetadataError("JPEG ends inside its image data (truncated)")
            out += data[pos:nxt]
            pos = nxt
            in_scan = False
            continue
        if data[pos] != 0xFF:
            raise MetadataError(f"JPEG structure broken at byte {pos}")
        marker = data[pos + 1] if pos + 1 < n else -1
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _EOI:
            out += b"\xff\xd9"
            pos += 2
            dropped = dropped or pos < n  # trailing data: MPO frames, vendor trailers
            break
        if marker in _STANDALONE or marker == _SOI:
            out += data[pos : pos + 2]
            pos += 2
            continue
        length = _segment_length(data, pos)
        end = pos + 2 + length
        if marker in _DROP:
            dropped = True
        elif marker in (_APP0, _APP14):
            kept = _standard_fields(marker, data[pos + 4 : end])
            out += kept
            dropped = dropped or kept != data[pos:end]
        else:
            out += data[pos:end]
        pos = end
        if marker == _SOS:
            in_scan = True
    else:
        raise MetadataError("JPEG has no end-of-image marker (truncated)")
    return bytes(out) if dropped else data


def _standard_fields(marker: int, payload: bytes) -> bytes:
    """A JFIF APP0 or Adobe APP14 segment cut to its standard fields (a JFIF thumbnail set to none), or
    nothing when the segment is neither."""
    if marker == _APP0 and payload.startswith(b"JFIF\0") and len(payload) >= _JFIF_FIELDS:
        fields = payload[: _JFIF_FIELDS - 2] + b"\0\0"
    elif marker == _APP14 and payload.startswith(b"Adobe") and len(payload) >= _ADOBE_FIELDS:
        fields = payload[:_ADOBE_FIELDS]
    else:
        return b""
    return bytes([0xFF, marker]) + struct.pack(">H", len(fields) + 2) + fields


# ---------------------------------------------------------------- identifiers

PSEUDONYM_HELP = (
    "Pseudonymous means a code from the clinic's own list (for example PT-0042) that only the clinic's key "
    "links to the person — never a name, date of birth, address, phone or national ID number."
)

_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(19|20)\d{2}[-./ ](0?[1-9]|1[0-2])[-./ ](0?[1-9]|[12]\d|3[01])(?!\d)"),  # 1970-01-31
    re.compile(r"(?<!\d)(0?[1-9]|[12]\d|3[01])[-./ ](0?[1-9]|1[0-2])[-./ ]((19|20)?\d{2})(?!\d)"),  # 31.01.1970
    re.compile(r"(?<!\d)(0?[1-9]|1[0-2])[-./ ](0?[1-9]|[12]\d|3[01])[-./ ]((19|20)\d{2})(?!\d)"),  # 01/31/1970
    re.compile(r"(?<!\d)(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)"),  # 19700131
    re.compile(r"(?<!\d)(0[1-9]|[12]\d|3[01])(0[1-9]|1[0-2])(19|20)\d{2}(?!\d)"),  # 31011970
)
_WORD = re.compile(r"^[^\W\d_][^\W\d_'’.-]*[^\W\d_]$|^[^\W\d_]{2,}$")


def looks_like_date(text: str) -> bool:
    return any(p.search(text) for p in _DATE_PATTERNS)


def _name_words(text: str) -> list[str]:
    """The words of ``text`` made of letters only (a hyphen or apostrophe inside a name allowed)."""
    words = [w for w in re.split(r"[\s,;]+", text.strip()) if w]
    return [w for w in words if _WORD.match(w.replace("-", "a").replace("'", "a"))]


def looks_like_name(text: str) -> bool:
    """Two or more words made of letters only (``Jane Doe``, ``Doe, Jane``): how names are written."""
    return len(_name_words(text)) >= 2


def _body_words() -> frozenset[str]:
    from data.body_sites import REGIONS
    from data.vocabulary import SITES

    names = [*(region.label for region in REGIONS.values()), *SITES]
    return frozenset(word.lower() for name in names for word in re.findall(r"[^\W\d_]+", name))


# Words clinics name lesion photos with that are not a person's name: body sites and sides, lesion words,
# and what cameras and archives put in file names. Without them "back_left.jpg" or "ISIC_1265653_fu.jpg"
# read as two names and lost their label (the accessibility re-check).
NOT_NAME_WORDS = _body_words() | frozenset(
    {
        "lt", "rt", "l", "r", "mid", "middle", "central", "lateral", "medial", "anterior", "posterior",
        "proximal", "distal", "inner", "outer", "side", "trunk", "leg", "knee", "elbow", "wrist", "ankle",
        "toe", "finger", "nail", "hip", "groin", "nose", "cheek", "forehead", "breast",
        "mole", "moles", "naevus", "nevus", "nevi", "lesion", "lesions", "spot", "macro", "closeup",
        "benign", "malignant", "melanoma", "atypical", "dysplastic",
        "overview", "derm", "dermoscopy", "dermoscopic", "dermatoscope", "clinical", "polarised", "polarized",
        "fu", "followup", "follow", "up", "baseline", "visit", "new", "old", "recheck", "review", "before",
        "after", "img", "image", "dsc", "dscn", "photo", "pic", "scan", "copy", "edit", "edited", "final",
        "isic", "jpeg", "jpg", "png", "tif", "tiff", "heic", "raw", "crop", "cropped",
    }
)  # fmt: skip


def filename_looks_personal(filename: str) -> bool:
    """A file name whose stem reads like a name or a date (``Doe_Jane_1961-03-02_back.jpg``): clinics name
    files after patients. Words split at ``_ - .`` too; a camera's ``IMG_20261207_1015`` counts (its date).
    Two letter-only words read as a name unless every one of them is a body-site, lesion or camera word
    (NOT_NAME_WORDS): ``back_left.jpg`` is not a name, ``Smith_back.jpg`` is."""
    stem = PurePosixPath(filename.replace("\\", "/")).stem
    spaced = re.sub(r"[_.\-]+", " ", stem)
    words = _name_words(spaced)
    return looks_like_date(stem) or (len(words) >= 2 and not all(w.lower() in NOT_NAME_WORDS for w in words))


def identifier_warnings(identifier: str) -> list[str]:
    """Why an identifier looks like personal data (empty when it looks like a pseudonym)."""
    text = (identifier or "").strip()
    found = []
    if looks_like_name(text):
        found.append("it looks like a person's name")
    if looks_like_date(text):
        found.append("it contains what looks like a date (of birth?)")
    return found
