import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from data.images import ImageDecodeError, decode_image


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture
def real_jpeg(datasets_dir) -> bytes:
    return next((datasets_dir / "ham10000" / "images").glob("*.jpg")).read_bytes()


def test_real_jpeg_decodes_to_rgb(real_jpeg):
    img = decode_image(real_jpeg, "lesion.jpg")
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(real_jpeg))).convert("RGB")
    assert img.mode == "RGB"
    assert img.size == reference.size
    assert np.array_equal(np.asarray(img), np.asarray(reference))  # the file's own pixels, nothing resampled


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (80, 40), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    out = decode_image(encode(img, "JPEG", exif=exif), "rotated.jpg")
    assert out.size == (40, 80)


def test_alpha_is_composited_on_white():
    img = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    out = decode_image(encode(img, "PNG"), "alpha.png")
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (255, 255, 255)


def _palette_image() -> Image.Image:
    img = Image.new("P", (32, 32), 0)
    img.putpalette([10, 20, 30] * 256)
    return img


@pytest.mark.parametrize(
    ("make", "rgb"),
    [
        (lambda: Image.new("L", (32, 32), 100), (100, 100, 100)),
        (_palette_image, (10, 20, 30)),  # the palette colour, not the index
        (lambda: Image.new("CMYK", (32, 32), (0, 255, 255, 0)), (255, 0, 0)),  # cyan-free = red, not inverted
        (lambda: Image.new("LA", (32, 32), (100, 255)), (100, 100, 100)),
        (lambda: Image.new("1", (32, 32), 1), (255, 255, 255)),
    ],
    ids=["L", "P", "CMYK", "LA", "1"],
)
def test_other_modes_become_rgb(make, rgb):
    img = make()
    fmt = "JPEG" if img.mode == "CMYK" else "PNG"
    out = decode_image(encode(img, fmt), f"x.{fmt.lower()}")
    assert out.mode == "RGB"
    pixels = np.asarray(out).reshape(-1, 3).astype(int)
    assert np.abs(pixels - np.array(rgb)).max() <= 2  # every pixel keeps its colour (JPEG rounding aside)


def test_16_bit_grayscale_keeps_its_range():
    arr = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    out = np.asarray(decode_image(encode(Image.fromarray(arr), "PNG"), "deep.png"))
    assert out.min() == 0
    assert out.max() == 255  # scaled, not clipped to white


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="empty.jpg: file is empty"):
        decode_image(tmp_path / "empty.jpg")


def test_truncated_jpeg(real_jpeg):
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_image(real_jpeg[: len(real_jpeg) // 2], "half.jpg")


def test_non_image_file():
    with pytest.raises(ImageDecodeError, match="notes.txt: not a recognised image format"):
        decode_image(b"patient notes, not an image", "notes.txt")


def test_missing_file(tmp_path):
    with pytest.raises(ImageDecodeError, match="file not found"):
        decode_image(tmp_path / "nope.jpg")


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims an enormous size: the classic decompression bomb."""
    raw = encode(Image.new("L", (1, 1)), "PNG")
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    start = raw.index(b"IHDR") - 4
    return raw[:start] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + raw[start + 25 :]


def test_decompression_bomb_is_refused_before_decoding_in_our_words():
    with pytest.raises(ImageDecodeError) as info:
        decode_image(png_claiming_size(100_000, 100_000), "bomb.png")
    assert info.value.reason == (
        "image too large (10000 megapixels); the limit is 100 megapixels — export a smaller copy"
    )
    assert "DOS" not in str(info.value) and "decompression bomb" not in str(info.value)


def test_pixel_limit_is_configurable(real_jpeg):
    with pytest.raises(ImageDecodeError, match="too large"):
        decode_image(real_jpeg, "x.jpg", max_pixels=1000)


@pytest.mark.parametrize(("scale", "dtype"), [(1 / 255, np.float32), (1.0, np.float32)], ids=["0-1", "0-255"])
def test_float_greyscale_tiff_is_read_on_its_own_scale(scale, dtype):
    grey = np.tile(np.arange(0, 256, 4, dtype=np.float64), (64, 1))  # 0..252 in each row
    out = np.asarray(decode_image(encode(Image.fromarray((grey * scale).astype(dtype)), "TIFF"), "f.tif"))
    np.testing.assert_allclose(out[..., 0], grey, atol=1)  # 0-1 floats were divided by 255 again: black


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    import pathlib

    from data.settings import LIMITS

    big = tmp_path / "sparse.jpg"
    with open(big, "wb") as handle:  # sparse: 1 GB declared, nothing written
        handle.truncate(LIMITS.max_image_bytes + 1)
    read = []
    real_read = pathlib.Path.read_bytes
    monkeypatch.setattr(pathlib.Path, "read_bytes", lambda self: read.append(self) or real_read(self))
    with pytest.raises(ImageDecodeError, match=f"at most {LIMITS.max_image_mb} MB is accepted"):
        decode_image(big)
    assert read == []  # refused from its size alone


def test_a_pipe_is_refused_not_read(tmp_path):
    import os

    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageDecodeError, match="not a regular file"):
        decode_image(fifo)  # reading it would wait for a writer for ever
