"""What the pages say about a limit is built from the limit the checks enforce (data/settings.py)."""

from __future__ import annotations

import struct
import zlib

from dashboard.patient_form import validate_new_patient
from dashboard.uploads import UploadLimits, check_image, upload_help, uploader_label
from data.settings import LIMITS, MIB, Limits


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_the_uploader_text_follows_the_limit_settings():
    other = Limits(max_image_bytes=7 * MIB, max_pixels=42_000_000)
    assert "up to 7 MB and 42 megapixels per image" in upload_help(other)
    assert "each file up to 7 MB" in uploader_label(other)
    default = upload_help()
    assert f"up to {LIMITS.max_image_mb} MB and {LIMITS.max_megapixels} megapixels per image" in default


def test_the_pixel_limit_the_uploader_states_is_the_one_an_upload_is_refused_at():
    side = int((LIMITS.max_pixels + 1) ** 0.5) + 1  # a square just over the limit
    refused = check_image("scan.png", _png_header_only(side, side), UploadLimits())
    assert f"the limit is {LIMITS.max_megapixels} megapixels" in refused.reason
    assert f"{LIMITS.max_megapixels} megapixels per image" in upload_help()


def test_the_new_patient_form_applies_the_store_s_identifier_and_birth_year_limits():
    longest = "P" * LIMITS.identifier_max
    assert validate_new_patient(longest, LIMITS.earliest_birth_year, "female") == []
    (too_long,) = validate_new_patient(longest + "X", None, "unknown")
    assert f"the limit is {LIMITS.identifier_max}" in too_long
    (too_early,) = validate_new_patient("PT-1", LIMITS.earliest_birth_year - 1, "unknown")
    assert str(LIMITS.earliest_birth_year) in too_early
    assert validate_new_patient("  ", None, "unknown") == ["Enter a pseudonymous patient identifier."]
    assert "control characters" in validate_new_patient("PT\x07", None, "unknown")[0]
    assert "sex" in validate_new_patient("PT-1", None, "other")[0]
