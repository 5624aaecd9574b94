import logging

import pandas as pd
import pytest

from data.datasets import combine, load_dataset, load_datasets
from data.errors import DatasetError
from data.readers import read_folder, read_kaggle
from data.schema import RECORD_COLUMNS, SITES


@pytest.mark.parametrize(
    ("name", "images", "melanomas"), [("isic2020", 751, 383), ("ham10000", 10015, 1113), ("isic2017", 2150, 404)]
)
def test_shared_datasets_load_with_exact_counts(datasets_dir, name, images, melanomas):
    records = load_dataset(name, datasets_dir / name)
    assert list(records.columns) == RECORD_COLUMNS
    assert len(records) == images
    assert int(records["target"].sum()) == melanomas
    assert records["image_path"].notna().all()
    assert set(records["site"]) <= set(SITES)
    assert set(records["sex"]) <= {"male", "female", "unknown"}


def test_groups_are_patients_lesions_or_images(datasets_dir):
    isic2020 = load_dataset("isic2020", datasets_dir / "isic2020")
    assert isic2020["group_id"].nunique() == 506  # real patients
    ham = load_dataset("ham10000", datasets_dir / "ham10000")
    assert ham["group_id"].nunique() == 7470  # lesions, several images each
    isic2017 = load_dataset("isic2017", datasets_dir / "isic2017")
    assert (isic2017["group_id"] == isic2017["image_id"]).all()


def test_ham_sites_map_onto_isic2020_vocabulary(datasets_dir):
    ham = load_dataset("ham10000", datasets_dir / "ham10000")
    meta = pd.read_csv(datasets_dir / "ham10000" / "HAM10000_metadata.csv")
    merged = ham.merge(meta[["image_id", "localization"]], on="image_id")
    pairs = set(zip(merged["localization"], merged["site"], strict=True))
    assert ("back", "torso") in pairs
    assert ("face", "head/neck") in pairs
    assert ("acral", "palms/soles") in pairs
    assert ("genital", "oral/genital") in pairs
    assert ("unknown", "unknown") in pairs


def test_combined_datasets_namespace_groups(datasets_dir):
    combined = load_datasets(["isic2020", "isic2017"], datasets_dir)
    assert len(combined) == 751 + 2150
    assert combined["group_id"].str.startswith(("isic2020:", "isic2017:")).all()


def write_images(folder, names, image_bytes):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.jpg").write_bytes(image_bytes)


@pytest.fixture
def jpeg_bytes(datasets_dir):
    return next((datasets_dir / "isic2020" / "test").glob("*.jpg")).read_bytes()


def test_missing_columns_are_named(tmp_path):
    (tmp_path / "train.csv").write_text("name,patient\nISIC_1,IP_1\n")
    with pytest.raises(DatasetError, match="missing required column\\(s\\): image_name"):
        read_kaggle(tmp_path / "train.csv", tmp_path)


def test_missing_images_are_counted_and_named(tmp_path, jpeg_bytes):
    write_images(tmp_path / "train", ["ISIC_1"], jpeg_bytes)
    (tmp_path / "train.csv").write_text("image_name,target\nISIC_1,0\nISIC_2,1\nISIC_3,0\n")
    with pytest.raises(DatasetError, match="2 listed image\\(s\\) missing .*ISIC_2, ISIC_3"):
        read_kaggle(tmp_path / "train.csv", tmp_path / "train")
    kept = read_kaggle(tmp_path / "train.csv", tmp_path / "train", on_missing="keep")
    assert kept["image_path"].isna().sum() == 2


def test_duplicate_ids_and_bad_labels_are_rejected(tmp_path, jpeg_bytes):
    write_images(tmp_path / "train", ["ISIC_1", "ISIC_2"], jpeg_bytes)
    (tmp_path / "dup.csv").write_text("image_name,target\nISIC_1,0\nISIC_1,1\n")
    with pytest.raises(DatasetError, match="duplicate image ids: ISIC_1"):
        read_kaggle(tmp_path / "dup.csv", tmp_path / "train")
    (tmp_path / "bad.csv").write_text("image_name,target\nISIC_1,0\nISIC_2,2\n")
    with pytest.raises(DatasetError, match="labels must be 0 or 1; found 2"):
        read_kaggle(tmp_path / "bad.csv", tmp_path / "train")


def test_unknown_sites_become_unknown_and_are_reported_once(tmp_path, jpeg_bytes, caplog):
    write_images(tmp_path / "train", ["A", "B", "C"], jpeg_bytes)
    (tmp_path / "t.csv").write_text(
        "image_name,patient_id,anatom_site_general_challenge,age_approx,sex\n"
        "A,P1,elbow,,\nB,P1,elbow,45,male\nC,P2,,unknown,FEMALE\n"
    )
    with caplog.at_level(logging.WARNING):
        records = read_kaggle(tmp_path / "t.csv", tmp_path / "train")
    assert list(records["site"]) == ["unknown"] * 3
    site_messages = [r.message for r in caplog.records if "anatomic site" in r.message]
    assert site_messages == ["user (t.csv): 2 anatomic site names not recognised, treated as unknown (lines 2, 3)"]
    assert records["age"].isna().tolist() == [True, False, True]
    assert list(records["sex"]) == ["unknown", "male", "female"]
    assert records["target"].isna().all()  # a test.csv has no labels


def test_any_pillow_extension_is_found(tmp_path, jpeg_bytes):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "A.jpeg").write_bytes(jpeg_bytes)
    Image.new("RGB", (10, 10)).save(folder / "B.png")
    Image.new("RGB", (10, 10)).save(folder / "C.webp")
    (tmp_path / "t.csv").write_text("image_name\nA\nB\nC\n")
    records = read_kaggle(tmp_path / "t.csv", folder)
    assert [p.rsplit(".", 1)[1] for p in records["image_path"]] == ["jpeg", "png", "webp"]


def test_plain_folder_lists_every_file(tmp_path, jpeg_bytes):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes)
    (tmp_path / "a.png").write_bytes(b"not really a png")
    (tmp_path / "notes.txt").write_text("hello")
    records = read_folder(tmp_path)
    assert sorted(records["image_id"]) == ["a.jpg", "a.png", "notes"]
    assert (records["group_id"] == records["image_id"]).all()


def test_same_image_in_two_datasets_is_refused():
    one = pd.DataFrame({c: ["x"] for c in RECORD_COLUMNS}).assign(dataset="a")
    two = one.assign(dataset="b")
    with pytest.raises(DatasetError, match="more than one dataset"):
        combine([one, two])


def test_users_own_kaggle_layout_csv_is_a_dataset(tmp_path, jpeg_bytes):
    clinic = tmp_path / "clinic_a"
    write_images(clinic / "train", ["L1", "L2"], jpeg_bytes)
    (clinic / "train.csv").write_text("image_name,patient_id,target\nL1,P1,0\nL2,P1,1\n")
    records = load_datasets([str(clinic / "train.csv")])
    assert records["dataset"].tolist() == ["clinic_a", "clinic_a"]
    assert records["group_id"].tolist() == ["clinic_a:P1", "clinic_a:P1"]


def test_one_image_name_with_two_files_is_warned_about(tmp_path, jpeg_bytes, caplog):
    import logging

    from data.readers import index_images

    (tmp_path / "a.jpg").write_bytes(jpeg_bytes)
    (tmp_path / "a.png").write_bytes(jpeg_bytes)
    (tmp_path / "b.jpg").write_bytes(jpeg_bytes)
    with caplog.at_level(logging.WARNING, logger="data.readers"):
        index = index_images(tmp_path)
    assert index["a"].name == "a.jpg"
    assert "1 image name(s) have two files" in caplog.text and "a.jpg (used) and a.png" in caplog.text
