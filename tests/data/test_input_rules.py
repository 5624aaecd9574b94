"""The one input-validation layer: pixel limit, lesion geometry, multi-frame files, metadata values."""

from __future__ import annotations

import io
import logging
import struct
import zlib

import pandas as pd
import pytest
from PIL import Image

from data.images import MAX_ASPECT, MAX_PIXELS, MIN_SIDE, ImageDecodeError, decode_image, probe_image
from data.readers import ROW_PROBLEM, image_name_problem, read_folder, read_kaggle
from data.schema import normalise_age, normalise_sex


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims another size (nothing large is ever allocated)."""
    raw = encode(Image.new("L", (1, 1)), "PNG")
    chunk = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    start = raw.index(b"IHDR") - 4
    return raw[:start] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + raw[start + 25 :]


def reason_of(data: bytes, name: str = "x") -> str:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data, name)
    return info.value.reason


# ---------------------------------------------------------------- degenerate images


@pytest.mark.parametrize(
    ("size", "words"),
    [
        ((1, 1), "only 1×1 px; a lesion image needs at least 32 px on each side"),
        ((300_000, 1), "only 300000×1 px"),
        ((60_000, 2), "only 60000×2 px"),
        ((MIN_SIDE - 1, 200), f"only {MIN_SIDE - 1}×200 px"),
        ((1000, 200), "5.0 times longer than wide; a lesion image may be at most 4:1"),
    ],
)
def test_degenerate_sizes_are_refused_from_the_header(size, words):
    assert words in reason_of(png_claiming_size(*size), "strip.png")
    with pytest.raises(ImageDecodeError, match="px"):
        probe_image(png_claiming_size(*size), "strip.png")


def test_the_geometry_limits_themselves_are_accepted():
    decode_image(encode(Image.new("RGB", (MIN_SIDE, MIN_SIDE)), "PNG"), "small.png")
    decode_image(encode(Image.new("RGB", (int(MIN_SIDE * MAX_ASPECT), MIN_SIDE)), "PNG"), "wide.png")


def test_geometry_can_be_skipped_for_images_that_are_not_lesions():
    assert decode_image(encode(Image.new("RGB", (1, 1)), "PNG"), "icon.png", lesion=False).size == (1, 1)


def test_animated_gif_is_refused_not_scored_on_its_first_frame():
    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "green", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    reason = reason_of(data, "anim.gif")
    assert reason.startswith("the file holds 3 frames (GIF); a lesion image must be a single picture")


def test_multi_page_tiff_is_refused():
    pages = [Image.new("RGB", (64, 64), c) for c in ("red", "green")]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    assert reason_of(data, "scan.tif").startswith("the file holds 2 pages (TIFF)")


def test_single_frame_gif_and_tiff_are_single_pictures():
    for fmt in ("GIF", "TIFF"):
        assert decode_image(encode(Image.new("RGB", (64, 64), "red"), fmt), f"one.{fmt.lower()}").size == (64, 64)


def test_one_pixel_limit_in_our_words_on_both_sides_of_pillows_guard():
    # Between Pillow's warning and refusal thresholds, and far beyond: one limit, one wording.
    for width, height, mp in ((12_000, 10_000, 120), (20_000, 20_000, 400)):
        reason = reason_of(png_claiming_size(width, height), "scan.png")
        assert reason.startswith(f"image too large ({mp} megapixels)")
        assert "the limit is 100 megapixels" in reason and "DOS" not in reason
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS
    # Just under the limit passes the header check (geometry and frames are fine too).
    assert probe_image(png_claiming_size(10_000, 9_999), "big.png").width == 10_000


def test_formats_can_be_restricted_with_a_clear_message():
    data = encode(Image.new("RGB", (64, 64)), "GIF")
    with pytest.raises(ImageDecodeError, match="not an image in an accepted format \\(accepted: JPEG, PNG\\)"):
        decode_image(data, "a.gif", formats=("JPEG", "PNG"))


def test_a_path_that_is_not_a_file_is_a_clear_error(tmp_path):
    with pytest.raises(ImageDecodeError, match="is a folder"):
        decode_image(tmp_path)
    with pytest.raises(ImageDecodeError, match="no image file given"):
        decode_image(float("nan"), "row 3")


# ---------------------------------------------------------------- metadata values


def test_sex_m_and_f_are_mapped_and_nonsense_is_reported(caplog):
    with caplog.at_level(logging.WARNING):
        sex = normalise_sex(pd.Series(["F", "M", "banana", "", "unknown", "Female", None]), "visit.csv")
    assert sex.tolist() == ["female", "male", "unknown", "unknown", "unknown", "female", "unknown"]
    (record,) = [r for r in caplog.records if "sex" in r.message]
    assert "visit.csv: 1 sex values not recognised" in record.message and "(data rows 3)" in record.message
    assert "banana" not in record.message  # free text may name a person: where, never what


def test_invalid_ages_are_reported_and_unknown(caplog):
    with caplog.at_level(logging.WARNING):
        age = normalise_age(pd.Series(["forty", "-5", "300", "1e308", "45", "", "unknown", None]), "visit.csv")
    assert age.isna().tolist() == [True, True, True, True, False, True, True, True]
    assert age[4] == 45.0
    (record,) = [r for r in caplog.records if "age" in r.message]
    assert "visit.csv: 4 age values" in record.message and record.message.endswith("(data rows 1, 2, 3, 4)")
    assert not any(value in record.message for value in ("forty", "-5", "300", "1e308"))


def test_reader_reports_metadata_like_sites(tmp_path, caplog):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in "ABCD":
        (folder / f"{name}.png").write_bytes(encode(Image.new("RGB", (64, 64)), "PNG"))
    (tmp_path / "t.csv").write_text("image_name,sex,age_approx\nA,F,forty\nB,M,45\nC,banana,300\nD,,\n")
    with caplog.at_level(logging.WARNING):
        records = read_kaggle(tmp_path / "t.csv", folder, on_missing="keep")
    assert records["sex"].tolist() == ["female", "male", "unknown", "unknown"]
    assert records["age"].isna().tolist() == [True, False, True, True]
    messages = [r.message for r in caplog.records]
    assert any("1 sex values" in m and m.endswith("(lines 4)") for m in messages)  # the CSV's own line numbers
    assert any("2 age values" in m and m.endswith("(lines 2, 4)") for m in messages)
    assert not any(value in " ".join(messages) for value in ("banana", "forty", "300"))


def test_free_text_in_a_site_is_reported_by_line_and_never_repeated(tmp_path, caplog):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "A.png").write_bytes(encode(Image.new("RGB", (64, 64)), "PNG"))
    (tmp_path / "t.csv").write_text("image_name,anatom_site_general_challenge\nA,left forearm near Mr Smith's scar\n")
    with caplog.at_level(logging.WARNING):
        records = read_kaggle(tmp_path / "t.csv", folder, on_missing="keep")
    assert records["site"].tolist() == ["unknown"]
    assert "1 anatomic site names not recognised, treated as unknown (lines 2)" in caplog.text
    assert "Smith" not in caplog.text


# ---------------------------------------------------------------- names in a CSV


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("ISIC_0015719.jpg", "includes the file extension .jpg; list it without (as 'ISIC_0015719')"),
        ("../secret", "is a path"),
        ("sub/ISIC_1", "is a path"),
        ("=HYPERLINK(1)", "starts with '=', which spreadsheet programs run as a formula"),
        ("@SUM(1)", "formula"),
        ("", "image_name is empty"),
        ("a\x00b", "control or invisible characters"),
    ],
)
def test_bad_image_names_have_a_reason(name, words):
    assert words in image_name_problem(name)


def test_good_and_unicode_names_are_fine():
    for name in ("ISIC_0015719", "läsion_Ω", "lesion.v2", "patient 7 back"):
        assert image_name_problem(name) is None
    # In a folder the name is the file's stem, which may hold another dot.
    assert image_name_problem("x.jpg", listed=False) is None


def test_keep_mode_marks_each_unscorable_row(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    png = encode(Image.new("RGB", (64, 64)), "PNG")
    for name in ("A", "läsion", "B"):
        (folder / f"{name}.png").write_bytes(png)
    (tmp_path / "t.csv").write_text(
        "image_name,patient_id\nA,P\nmissing_one,P\nA.png,P\n../A,P\n=A,P\nläsion,P\nA,P\n,P\nB,P\n", encoding="utf-8"
    )
    records = read_kaggle(tmp_path / "t.csv", folder, on_missing="keep")
    problems = dict(enumerate(records[ROW_PROBLEM]))
    assert problems[0] is None and problems[5] is None and problems[8] is None
    assert "image file not found" in problems[1]
    assert "file extension" in problems[2]
    assert "is a path" in problems[3]
    assert "formula" in problems[4]
    assert problems[6] == "line 8 lists 'A' again (first on line 2); scored once"
    assert problems[7] == "image_name is empty"
    assert records["image_path"].notna().tolist() == [True, False, False, False, False, True, False, False, True]


def test_folder_files_named_like_formulas_are_marked(tmp_path):
    png = encode(Image.new("RGB", (64, 64)), "PNG")
    (tmp_path / "=cmd.png").write_bytes(png)
    (tmp_path / "ok.png").write_bytes(png)
    records = read_folder(tmp_path, keep_problems=True)
    assert records.set_index("image_id")[ROW_PROBLEM].to_dict() == {
        "=cmd": "image_name '=cmd' starts with '=', which spreadsheet programs run as a formula; rename the file",
        "ok": None,
    }
