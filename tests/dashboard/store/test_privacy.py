"""Personal metadata never reaches the image files; pixels and orientation do. Identifiers that look
like a name or a date of birth are recognised."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from dashboard.store.privacy import filename_looks_personal, identifier_warnings, strip_metadata
from dashboard.store.validation import original_filename
from dashboard.uploads import default_label

GPS_IFD = 0x8825
ARTIST = 0x013B
ORIENTATION = 0x0112
IMAGE_DESCRIPTION = 0x010E


def _photo(real_jpeg: bytes, *, orientation: int | None, fmt: str = "JPEG") -> bytes:
    """A real lesion photo as a phone would save it: GPS position, an Artist naming the patient, a comment."""
    img = Image.open(io.BytesIO(real_jpeg)).convert("RGB")
    exif = Image.Exif()
    exif[ARTIST] = "Patient Jane Doe DOB 1970-01-01"
    exif[IMAGE_DESCRIPTION] = "Jane Doe, left shoulder"
    if orientation is not None:
        exif[ORIENTATION] = orientation
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 8.0, 30.0), 3: "E", 4: (11.0, 34.0, 12.0)})
    out = io.BytesIO()
    if fmt == "JPEG":
        xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>Jane Doe</dc:creator></x:xmpmeta>'
        img.save(out, format="JPEG", exif=exif, comment=b"Jane Doe 1970-01-01", xmp=xmp, quality=92)
    else:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Author", "Jane Doe")
        img.save(out, format="PNG", exif=exif, pnginfo=info)
    return out.getvalue()


def _pixels(data: bytes, *, orient: bool = False) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    if orient:
        img = ImageOps.exif_transpose(img)
    return np.asarray(img.convert("RGB"))


def _no_personal_metadata(data: bytes) -> None:
    img = Image.open(io.BytesIO(data))
    exif = img.getexif()
    assert ARTIST not in exif and IMAGE_DESCRIPTION not in exif and GPS_IFD not in exif
    assert exif.get(ORIENTATION, 1) == 1
    assert not exif.get_ifd(GPS_IFD)
    for key in ("comment", "xmp", "XML:com.adobe.xmp", "Author", "exif", "icc_profile"):
        assert key not in img.info, key
    assert b"Jane Doe" not in data and b"1970-01-01" not in data


@pytest.mark.parametrize("orientation", [None, 1])
def test_upright_jpeg_keeps_its_compressed_pixels(sample_images, orientation):
    original = _photo(sample_images[0], orientation=orientation)
    assert b"Jane Doe" in original and Image.open(io.BytesIO(original)).getexif().get(ARTIST)
    cleaned = strip_metadata(original)
    _no_personal_metadata(cleaned)
    assert Image.open(io.BytesIO(cleaned)).format == "JPEG"
    assert np.array_equal(_pixels(cleaned), _pixels(original))  # the scan data is untouched
    assert strip_metadata(cleaned) == cleaned  # nothing left to strip: the bytes (and hash) stay


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_rotated_photo_is_stored_upright_with_the_same_pixels(sample_images, orientation):
    original = _photo(sample_images[1], orientation=orientation)
    cleaned = strip_metadata(original)
    _no_personal_metadata(cleaned)
    assert np.array_equal(_pixels(cleaned), _pixels(original, orient=True))
    if orientation in (6, 8):
        w, h = Image.open(io.BytesIO(original)).size
        assert Image.open(io.BytesIO(cleaned)).size == (h, w)


def test_png_text_chunks_and_exif_are_dropped(sample_images):
    original = _photo(sample_images[2], orientation=None, fmt="PNG")
    cleaned = strip_metadata(original)
    _no_personal_metadata(cleaned)
    assert np.array_equal(_pixels(cleaned), _pixels(original))


def test_clean_upload_is_kept_byte_for_byte(sample_images):
    assert strip_metadata(sample_images[0]) == sample_images[0]


def test_the_store_keeps_no_personal_metadata(store, sample_images, make_lesion, make_review):
    original = _photo(sample_images[3], orientation=6)
    visit_id = store.save_review(make_review([make_lesion(original)]))
    [lesion] = store.load_visit(visit_id).lesions
    kept = lesion.image.path.read_bytes()
    _no_personal_metadata(kept)
    assert np.array_equal(_pixels(kept), _pixels(original, orient=True))
    # Hashed as stored; the hash of the upload is kept so a re-upload of the same photo is recognised.
    import hashlib

    assert lesion.image.sha256 == hashlib.sha256(kept).hexdigest()
    assert lesion.image.source_sha256 == hashlib.sha256(original).hexdigest()
    assert (lesion.image.width, lesion.image.height) == Image.open(io.BytesIO(kept)).size


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("Jane Doe 1970-01-01", ["name", "date"]),
        ("Doe, Jane", ["name"]),
        ("jane doe", ["name"]),
        ("PT-0042", []),
        ("IP_6648913", []),
        ("PT-APPTEST-001", []),
        ("MRN 0042", []),
        ("X 31.01.1970", ["date"]),
        ("K-19700131", ["date"]),
        ("01/31/1970", ["date"]),
    ],
)
def test_identifier_warnings(identifier, expected):
    found = identifier_warnings(identifier)
    assert len(found) == len(expected)
    for word, message in zip(expected, found, strict=True):
        assert word in message


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def test_the_segments_kept_for_decoding_carry_no_appended_text(sample_images):
    """JFIF APP0 and Adobe APP14 stay (the decoder reads them), cut to their standard fields."""
    base = strip_metadata(_photo(sample_images[0], orientation=None))
    jfif = _segment(0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"Jane Doe 1970-01-01")
    adobe = _segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01" + b"Jane Doe 1970-01-01")
    other = _segment(0xE0, b"JFXX\0\x10" + b"Jane Doe 1970-01-01")
    start = 2 + (2 + int.from_bytes(base[4:6], "big") if base[2:4] == b"\xff\xe0" else 0)  # after SOI (+ JFIF)
    original = base[:2] + jfif + adobe + other + base[start:]
    assert np.array_equal(_pixels(original), _pixels(base))
    cleaned = strip_metadata(original)
    assert b"Jane Doe" not in cleaned and b"JFXX" not in cleaned
    assert b"JFIF\0" in cleaned and b"Adobe" in cleaned
    assert np.array_equal(_pixels(cleaned), _pixels(original))
    assert strip_metadata(cleaned) == cleaned


@pytest.mark.parametrize(("fmt", "orientation"), [("JPEG", 6), ("PNG", None)])
def test_an_icc_profile_is_not_kept(sample_images, fmt, orientation):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = Image.open(io.BytesIO(sample_images[0])).convert("RGB")
    exif = Image.Exif()
    if orientation:
        exif[ORIENTATION] = orientation
    out = io.BytesIO()
    img.save(out, format=fmt, icc_profile=icc, exif=exif)
    assert "icc_profile" in Image.open(io.BytesIO(out.getvalue())).info
    cleaned = strip_metadata(out.getvalue())  # both are re-encoded (rotated JPEG, PNG): the PNG path
    assert Image.open(io.BytesIO(cleaned)).format == "PNG"
    assert "icc_profile" not in Image.open(io.BytesIO(cleaned)).info


@pytest.mark.parametrize(
    "make",
    [
        lambda g: Image.frombytes(
            "I;16B", (g.shape[1], g.shape[0]), (g.astype(np.uint16) * 257).astype(">u2").tobytes()
        ),
        lambda g: Image.fromarray(g.astype(np.int32)),  # mode I: Pillow cannot write it as PNG
        lambda g: Image.fromarray((g / 255.0).astype(np.float32)),
    ],
    ids=["I;16B", "I", "F"],
)
def test_a_deep_greyscale_tiff_is_stored_as_the_pixels_that_were_scored(make):
    from data.images import decode_image

    grey = np.tile(np.arange(0, 256, 4), (48, 1))
    buffer = io.BytesIO()
    make(grey).save(buffer, "TIFF")
    upload = buffer.getvalue()
    stored = strip_metadata(upload)  # big-endian 16-bit came out white; mode I could not be saved at all
    scored = np.asarray(decode_image(upload, "x.tif"), dtype=int)
    np.testing.assert_array_equal(np.asarray(decode_image(stored, "x.png"), dtype=int), scored)
    assert abs(scored[..., 0].mean() - grey.mean()) < 2


@pytest.mark.parametrize(
    "name",
    [
        "Doe_Jane_1961-03-02_back.jpg",
        "Smith-John.png",
        "DOE.JANE.jpg",
        "jane doe.tif",
        "19610302.jpg",
        "x_31.01.1961.png",
        "Doe_Jane_back_left.jpg",  # a name beside site words is still a name
        "mole_Jane_Doe.png",
        "Smith_back.jpg",  # one surname and a site word: the commonest way clinics name photos
        "Jones_left_forearm.jpg",
        "Nguyen_L_shin.jpg",
        "Glenn_Close.jpg",
    ],
)
def test_a_file_name_like_a_name_or_a_date_is_neither_stored_nor_the_label(name):
    assert filename_looks_personal(name)
    assert original_filename(name) == "image" + name[name.rindex(".") :].lower()
    assert default_label(name, 4) == "lesion 4"


@pytest.mark.parametrize(
    "name",
    [
        "IMG_0231.JPG",
        "back.jpg",
        "mole 1.jpg",
        "ISIC_0027419.jpg",
        "lesion3.tif",
        "back_left.jpg",  # body-site and camera words are not names (they lost their label before)
        "ISIC_1265653_fu.jpg",
        "left_upper_arm_mole.png",
        "DSC_0042_closeup.jpg",
    ],
)
def test_a_plain_file_name_is_kept_and_labels_the_lesion(name):
    assert not filename_looks_personal(name)
    assert original_filename(name) == name
    assert default_label(name, 4) == name[: name.rindex(".")]


def test_a_stored_file_name_loses_its_folders():
    assert original_filename("Doe Jane/IMG_0231.JPG") == "IMG_0231.JPG"
    assert original_filename("C:\\Patients\\Doe, Jane\\IMG_0231.JPG") == "IMG_0231.JPG"


def test_iptc_app15_and_bytes_after_the_end_marker_are_dropped():
    """IPTC (APP13) holds the patient's name in clinic software; APP15 and a trailer after FF D9 can too."""
    out = io.BytesIO()
    Image.fromarray(np.tile(np.arange(0, 256, 4, dtype=np.uint8), (48, 1))).convert("RGB").save(out, "JPEG")
    clean = out.getvalue()
    iptc = _segment(0xED, b"Photoshop 3.0\0" + b"8BIM\x04\x04\0\0\0\0\0\x0d\x1c\x02\x05\0\x08" + b"Jane Doe")
    app15 = _segment(0xEF, b"Jane Doe 1970-01-01")
    original = clean[:2] + iptc + app15 + clean[2:] + b"Jane Doe"
    assert original.endswith(b"\xff\xd9Jane Doe")
    assert np.array_equal(_pixels(original), _pixels(clean))
    cleaned = strip_metadata(original)
    assert b"Jane Doe" not in cleaned
    assert cleaned.endswith(b"\xff\xd9")
    assert np.array_equal(_pixels(cleaned), _pixels(clean))


def test_a_windows_path_is_judged_by_its_file_name_alone():
    """Some browsers send the full Windows path: only the file's own name is judged (and kept), so a plain
    lesion photo in a dated folder is not flagged, and a patient-named file in a plain folder still is."""
    assert not filename_looks_personal("C:\\Photos\\2026-05-04\\back_left.jpg")
    assert filename_looks_personal("D:\\clinic\\photos\\Doe_Jane_back.jpg")
