"""The predict CLI's CSV reader (read_kaggle with on_missing="keep") on real-world spreadsheets: blank and
placeholder patient ids."""

from __future__ import annotations

import io
import logging

import pytest
from PIL import Image

from data.readers import ROW_PROBLEM, read_kaggle

NAMES = ("ISIC_0272509", "ISIC_1632118", "ISIC_1757941", "ISIC_0599605")


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (180, 120, 90)).save(buffer, "PNG")
    for name in NAMES:
        (folder / f"{name}.png").write_bytes(buffer.getvalue())
    return folder


def read(tmp_path, images, text: str, **kwargs):
    csv = tmp_path / "visit.csv"
    csv.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return read_kaggle(csv, images, dataset="input", on_missing=kwargs.pop("on_missing", "keep"), **kwargs)


def test_a_blank_patient_id_is_no_patient_and_is_reported_by_line(tmp_path, images, caplog):
    text = "image_name,patient_id,sex\nISIC_0272509,IP_0408084,female\nISIC_1632118,,female\nISIC_1757941\n"
    with caplog.at_level(logging.WARNING):
        records = read(tmp_path, images, text)
    assert records["group_id"].tolist() == ["IP_0408084", None, None]
    assert records[ROW_PROBLEM].isna().all()  # still scored
    message = " ".join(r.message for r in caplog.records if "patient id" in r.message)
    assert "2 row(s) without a patient id" in message and "line(s) 3, 4" in message
    assert "ISIC_" not in message and "IP_" not in message  # no identifiers in the log


@pytest.mark.parametrize("placeholder", ["NA", "unknown", "-", "n/a", "None", " ? "])
def test_placeholder_patient_ids_are_blank(tmp_path, images, placeholder):
    text = f"image_name,patient_id\nISIC_0272509,{placeholder}\nISIC_1632118,{placeholder}\nISIC_1757941,IP_6130936\n"
    records = read(tmp_path, images, text)
    assert records["group_id"].tolist() == [None, None, "IP_6130936"]


def test_a_patient_id_with_control_characters_is_refused(tmp_path, images, caplog):
    text = "image_name,patient_id\nISIC_0272509,IP_04\x0008084\nISIC_1632118,IP_0408084\n"
    with caplog.at_level(logging.WARNING):
        records = read(tmp_path, images, text)
    assert "patient_id contains control or invisible characters" in records[ROW_PROBLEM][0]
    assert "IP_04" not in records[ROW_PROBLEM][0]
    assert records[ROW_PROBLEM][1] is None


def test_without_a_patient_column_or_in_training_an_image_is_its_own_group(tmp_path, images):
    records = read(tmp_path, images, "image_name,sex\nISIC_0272509,female\nISIC_1632118,male\n")
    assert records["group_id"].tolist() == ["ISIC_0272509", "ISIC_1632118"]
    training = read(tmp_path, images, "image_name,patient_id\nISIC_0272509,IP_1\nISIC_1632118,\n", on_missing="raise")
    assert training["group_id"].tolist() == ["IP_1", "ISIC_1632118"]
