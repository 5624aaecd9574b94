"""The dashboard's upload check applies the same input rules, in the same words, as the predict CLI."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from dashboard.uploads import DEFAULT_LIMITS, UploadProblem, check_image
from data.images import MAX_PIXELS, ImageDecodeError, decode_image


def _encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _png_header(width: int, height: int) -> bytes:
    raw = _encode(Image.new("L", (1, 1)), "PNG")
    chunk = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    start = raw.index(b"IHDR") - 4
    return raw[:start] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + raw[start + 25 :]


def _frames(fmt: str, n: int) -> bytes:
    frames = [Image.new("RGB", (64, 64), (40 * i, 90, 160)) for i in range(n)]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:])


CASES = {
    "dot.png": _encode(Image.new("RGB", (1, 1)), "PNG"),
    "line.png": _png_header(300_000, 1),
    "strip.png": _png_header(60_000, 2),
    "banner.png": _encode(Image.new("RGB", (500, 100)), "PNG"),
    "scan.png": _png_header(12_000, 10_000),  # 120 MP: between Pillow's warning and refusal
    "bomb.png": _png_header(30_000, 20_000),  # 600 MP: Pillow refuses to open it at all
    "pages.tif": _frames("TIFF", 2),
    "anim.webp": _frames("WEBP", 3),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dashboard_refuses_what_the_cli_refuses_in_the_same_words(name):
    data = CASES[name]
    with pytest.raises(ImageDecodeError) as cli:
        decode_image(data, name)
    problem = check_image(name, data)
    assert isinstance(problem, UploadProblem) and problem.kind == "error"
    assert problem.reason == cli.value.reason


def test_animated_gif_is_refused_by_both(tmp_path):
    data = _frames("GIF", 3)
    with pytest.raises(ImageDecodeError, match="holds 3 frames"):
        decode_image(data, "anim.gif")
    problem = check_image("anim.gif", data)
    assert isinstance(problem, UploadProblem) and "not an image this dashboard can read" in problem.reason


def test_one_pixel_limit_for_upload_check_store_and_cli():
    from dashboard.store.api import DEFAULT_MAX_IMAGE_PIXELS

    assert DEFAULT_LIMITS.max_pixels == DEFAULT_MAX_IMAGE_PIXELS == MAX_PIXELS == Image.MAX_IMAGE_PIXELS


def test_a_normal_photo_still_passes():
    facts, thumb = check_image("mole.jpg", _encode(Image.new("RGB", (640, 480), (150, 90, 70)), "JPEG"))
    assert (facts["width"], facts["height"]) == (640, 480) and max(thumb.size) <= DEFAULT_LIMITS.thumbnail_px
