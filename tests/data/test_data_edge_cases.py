"""The data layer at its edges: a limit one pixel past, a melanoma label against a diagnosis, a metadata row
without a label, one lesion in two datasets, a camera nobody else names, benign spellings, a file hashed in
chunks (each pinned after a mutation of that line went unnoticed)."""

from __future__ import annotations

import hashlib
import io

import pandas as pd
import pytest
from PIL import Image

from data.datasets import combine
from data.hashing import sha256_bytes, sha256_file
from data.image_source import ImageSource, source_caveats
from data.images import MAX_ASPECT, MIN_SIDE, ImageDecodeError, decode_image, probe_image
from data.readers import read_derm7pt, read_isic2017, read_kaggle
from data.schema import normalise_diagnosis


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "gray").save(buf, "PNG")
    return buf.getvalue()


def write_images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.png").write_bytes(png(64, 64))


def test_one_pixel_beyond_the_aspect_limit_is_refused():
    too_wide = int(MIN_SIDE * MAX_ASPECT) + 1
    with pytest.raises(ImageDecodeError, match="times longer than wide"):
        decode_image(png(too_wide, MIN_SIDE), "strip.png")
    with pytest.raises(ImageDecodeError, match="times longer than wide"):
        probe_image(png(MIN_SIDE, too_wide), "strip.png")


def test_one_pixel_beyond_the_pixel_limit_is_refused():
    assert decode_image(png(64, 64), "ok.png", max_pixels=64 * 64).size == (64, 64)
    with pytest.raises(ImageDecodeError, match="image too large"):
        decode_image(png(64, 64), "big.png", max_pixels=64 * 64 - 1)


def test_kaggle_melanoma_label_wins_over_a_contradicting_diagnosis(tmp_path):
    write_images(tmp_path / "train", ["A", "B"])
    (tmp_path / "train.csv").write_text("image_name,patient_id,diagnosis,target\nA,P1,nevus,1\nB,P1,nevus,0\n")
    records = read_kaggle(tmp_path / "train.csv", tmp_path / "train")
    assert list(records["diagnosis"]) == ["melanoma", "nevus"]
    assert list(records["target"]) == [1, 0]


def test_derm7pt_melanoma_label_wins_over_a_contradicting_diagnosis(tmp_path):
    write_images(tmp_path / "images", ["A", "B"])
    (tmp_path / "labels.csv").write_text(
        "image_name,diagnosis,target,location,sex\nA,nevus,1,back,female\nB,nevus,0,back,male\n"
    )
    records = read_derm7pt(tmp_path)
    assert list(records["diagnosis"]) == ["melanoma", "nevus"]
    assert list(records["site"]) == ["torso", "torso"]


def test_isic2017_metadata_rows_without_a_label_add_no_images(tmp_path):
    write_images(tmp_path / "ISIC-2017_Training_Data", ["I1", "I2", "I3"])
    (tmp_path / "ISIC-2017_Training_Classes.csv").write_text("image_id,melanoma\nI1,1.0\nI2,0.0\n")
    (tmp_path / "ISIC-2017_Training_Data_metadata.csv").write_text(
        "image_id,age_approximate,sex\nI1,55,male\nI2,unknown,female\nI3,40,male\n"
    )
    records = read_isic2017(tmp_path)
    assert list(records["image_id"]) == ["I1", "I2"]
    assert list(records["target"]) == [1, 0]
    assert list(records["diagnosis"]) == ["melanoma", "unknown"]
    assert list(records["sex"]) == ["male", "female"]


def records(dataset: str, rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image_path": [f"/{dataset}/{image}.jpg" for image, _ in rows],
            "image_id": [image for image, _ in rows],
            "group_id": [group for _, group in rows],
            "dataset": dataset,
            "sex": "unknown",
            "age": float("nan"),
            "site": "unknown",
            "diagnosis": "unknown",
            "target": pd.Series([0] * len(rows), dtype="Int64"),
        }
    )


def test_the_whole_patient_copy_wins_and_one_patient_stays_one_group():
    full = records("isic2020", [("ISIC_X1", "IP_1"), ("ISIC_X2", "IP_1"), ("ISIC_X3", "IP_2")])
    patients = records("isic2020_patients", [("ISIC_X1", "IP_1"), ("ISIC_X4", "IP_1")])
    for order in ((full, patients), (patients, full)):
        combined = combine(order).set_index("image_id")
        assert sorted(combined.index) == ["ISIC_X1", "ISIC_X2", "ISIC_X3", "ISIC_X4"]
        assert combined.loc["ISIC_X1", "dataset"] == "isic2020_patients"
        assert combined.loc["ISIC_X1", "image_path"] == "/isic2020_patients/ISIC_X1.jpg"
        # IP_1's images from both copies form one group, so the patient never sits in two folds.
        assert set(combined.loc[["ISIC_X1", "ISIC_X2", "ISIC_X4"], "group_id"]) == {"isic2020:IP_1"}
        assert combined.loc["ISIC_X3", "group_id"] == "isic2020:IP_2"


def test_a_camera_is_not_a_caveat_when_the_others_name_none():
    sources = [ImageSource(600, 450, 0.5, "Apple iPhone 13"), ImageSource(600, 450, 0.5), ImageSource(600, 450, 0.5)]
    assert source_caveats(sources) == [None, None, None]


def test_benign_diagnosis_spellings_never_become_melanoma():
    names = pd.Series(["Lentigo NOS", "solar lentigo", "seborrheic keratosis", "NV", " MEL ", "dermatofibroma", "x"])
    assert list(normalise_diagnosis(names)) == ["bkl", "bkl", "bkl", "nevus", "melanoma", "df", "unknown"]


def test_file_hash_covers_every_byte_across_chunks(tmp_path):
    data = bytes(range(256)) * ((1 << 20) // 256 * 2 + 3)  # two 1 MiB chunks and a short last one
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    assert sha256_file(path) == sha256_bytes(data) == hashlib.sha256(data).hexdigest()
