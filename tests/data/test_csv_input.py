"""The predict CLI's CSV reader (read_kaggle with on_missing="keep") on real-world spreadsheets: blank and
placeholder patient ids."""

from __future__ import annotations

import io
import logging

import pytest
from PIL import Image

from data.csv_files import parse_csv
from data.errors import DatasetError
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


# ---------------------------------------------------------------- encodings, malformed rows, delimiters

VISIT = (
    "image_name,patient_id,sex,anatom_site_general_challenge\n"
    "ISIC_0272509,Pé,female,torso\nISIC_1632118,Pé,male,torso\n"
)


@pytest.mark.parametrize(
    ("encoding", "warned"),
    [
        ("cp1252", "Windows-1252 (cp1252)"),
        ("latin-1", "Windows-1252 (cp1252)"),
        ("utf-16", None),
        ("utf-8-sig", None),
        ("utf-16-le", "UTF-16-LE"),  # no byte-order mark: it was read as Latin-1, "i m a g e _ n a m e"
        ("utf-16-be", "UTF-16-BE"),
    ],
)
def test_common_encodings_are_read(tmp_path, images, caplog, encoding, warned):
    with caplog.at_level(logging.WARNING):
        records = read(tmp_path, images, VISIT.encode(encoding))
    assert records["image_id"].tolist() == ["ISIC_0272509", "ISIC_1632118"]
    assert records["group_id"].tolist() == ["Pé", "Pé"]
    assert records["sex"].tolist() == ["female", "male"]
    if warned and warned.startswith("UTF-16"):
        assert f"visit.csv has no byte-order mark; read as {warned}" in caplog.text
    elif warned:
        assert f"visit.csv is not UTF-8; read as {warned}" in caplog.text
    else:
        assert "not UTF-8" not in caplog.text


def test_a_row_with_too_many_fields_is_refused_alone(tmp_path, images):
    text = (
        "image_name,patient_id,sex,anatom_site_general_challenge\n"
        "ISIC_0272509,P1,female,torso\n"
        "ISIC_1632118,P1,female,head, neck\n"
        "ISIC_1757941,P1,female,torso,,\n"  # trailing empty cells: fine
    )
    records = read(tmp_path, images, text)
    assert records["image_id"].tolist() == ["ISIC_0272509", "ISIC_1632118", "ISIC_1757941"]
    problems = records[ROW_PROBLEM].tolist()
    assert problems[0] is None and problems[2] is None
    assert problems[1].startswith("line 3 has 5 fields but the header has 4 (a value with an unquoted comma?")


def test_training_still_refuses_a_malformed_file_naming_the_line(tmp_path, images):
    from data.errors import DatasetError

    with pytest.raises(DatasetError, match="line 3 has 3 fields but the header has 2"):
        read(tmp_path, images, "image_name,target\nISIC_0272509,0\nISIC_1632118,0,1\n", on_missing="raise")


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_separated_files_are_detected(tmp_path, images, delimiter):
    text = VISIT.replace(",", delimiter)
    records = read(tmp_path, images, text)
    assert records["image_id"].tolist() == ["ISIC_0272509", "ISIC_1632118"]
    assert records["sex"].tolist() == ["female", "male"]


def test_blank_lines_are_skipped_and_lines_counted(tmp_path, images):
    text = "image_name,patient_id\n\nISIC_0272509,P1\n  \nISIC_1632118,P1\nISIC_0272509,P1\n"
    records = read(tmp_path, images, text)
    assert records["image_id"].tolist() == ["ISIC_0272509", "ISIC_1632118", "ISIC_0272509"]
    assert records[ROW_PROBLEM][2] == "line 6 lists 'ISIC_0272509' again (first on line 3); scored once"


def test_an_empty_file_is_refused_clearly(tmp_path, images):
    from data.errors import DatasetError

    with pytest.raises(DatasetError, match="visit.csv is empty: no header line"):
        read(tmp_path, images, "")


# ---------------------------------------------------------------- column names


def test_known_columns_are_matched_in_any_case(tmp_path, images, caplog):
    text = " IMAGE_NAME ,Patient_ID,Sex,Age_Approx,width\nISIC_0272509,IP_1,F,45,640\nISIC_1632118,IP_1,M,50,640\n"
    with caplog.at_level(logging.WARNING):
        records = read(tmp_path, images, text)
    assert records["image_id"].tolist() == ["ISIC_0272509", "ISIC_1632118"]
    assert records["group_id"].tolist() == ["IP_1", "IP_1"]
    assert records["sex"].tolist() == ["female", "male"]
    assert records["age"].tolist() == [45.0, 50.0]
    assert "not used" not in caplog.text  # width is simply not a column the model reads


def test_unused_columns_that_look_like_known_ones_are_warned_about(tmp_path, images, caplog):
    text = "image_name,patient,age,site,benign_malignant\nISIC_0272509,IP_1,45,torso,benign\n"
    with caplog.at_level(logging.WARNING):
        records = read(tmp_path, images, text)
    assert records["group_id"].tolist() == ["ISIC_0272509"]  # no patient_id column: nothing guessed
    for column, known in (("patient", "patient_id"), ("age", "age_approx"), ("site", "anatom_site_general_challenge")):
        assert f"column '{column}' is not used; did you mean '{known}'?" in caplog.text
    assert "benign_malignant" not in caplog.text


def test_an_exact_column_wins_over_another_case(tmp_path, images):
    records = read(tmp_path, images, "image_name,sex,SEX\nISIC_0272509,F,M\n")
    assert records["sex"].tolist() == ["female"]


def test_a_name_repeated_in_another_unicode_spelling_is_one_row(tmp_path, images):
    import unicodedata

    composed = "läsion"
    (images / f"{composed}.png").write_bytes((images / f"{NAMES[0]}.png").read_bytes())
    decomposed = unicodedata.normalize("NFD", composed)
    records = read(tmp_path, images, f"image_name\n{composed}\n{decomposed}\n")
    assert records[ROW_PROBLEM][0] is None
    assert records[ROW_PROBLEM][1] == f"line 3 lists {decomposed!r} again (first on line 2); scored once"


def test_an_empty_row_is_not_counted_as_a_row_without_a_patient(tmp_path, images, caplog):
    with caplog.at_level(logging.WARNING):
        records = read(tmp_path, images, "image_name,patient_id\nISIC_0272509,P1\n,\n")
    assert records[ROW_PROBLEM][1] == "image_name is empty"
    assert "without a patient id" not in caplog.text


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("\nimage_name;patient_id\r\nA;P1\r\n", ["image_name", "patient_id"]),  # a blank line before the header
        ("image_name;age_approx\rA;0,5\r", ["image_name", "age_approx"]),  # old Mac line ends, a decimal comma
        ('image_name;"site, as typed"\nA;torso\n', ["image_name", "site, as typed"]),  # a comma inside quotes
        ('image_name,"a;b"\nA,x\n', ["image_name", "a;b"]),  # and the other way round
    ],
)
def test_the_separator_is_read_from_the_first_header_line_as_the_csv_module_splits_it(tmp_path, text, columns):
    path = tmp_path / "visit.csv"
    path.write_bytes(text.encode())
    assert list(parse_csv(path).frame.columns) == columns


def test_an_unclosed_quote_is_named_with_its_line(tmp_path):
    from data.csv_files import read_csv as read_table

    path = tmp_path / "visit.csv"
    path.write_text('image_name,patient_id\nISIC_1,P1\n"ISIC_2,P1\nISIC_3,P1\n')
    with pytest.raises(DatasetError, match=r"line 3: a quote \(\"\) opens a value that is never closed"):
        read_table(path, ["image_name"])
    path.write_text('image_name,note\nISIC_1,"two\nlines"\n')  # a closed multi-line value is fine
    assert read_table(path, ["image_name"])["note"].tolist() == ["two\nlines"]


def test_excels_separator_line_is_read_as_the_separator_not_the_header(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("sep=;\r\nimage_name;patient_id\r\nISIC_1;P1\r\n")
    table = parse_csv(path)
    assert list(table.frame.columns) == ["image_name", "patient_id"]
    assert table.frame.to_dict("records") == [{"image_name": "ISIC_1", "patient_id": "P1"}]
    assert table.lines == [3]  # the file's own line numbers, the separator line counted
