"""The predict CLI end to end on spreadsheet-style CSVs (tiny network: the plumbing, not the scores)."""

from __future__ import annotations

import io
import logging

import pandas as pd
import pytest
from PIL import Image

from model.predict import main

NAMES = ("ISIC_0272509", "ISIC_1632118", "ISIC_1757941", "ISIC_0599605", "ISIC_5874357")


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, name in enumerate(NAMES):
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (40 * i, 120, 90)).save(buffer, "PNG")
        (folder / f"{name}.png").write_bytes(buffer.getvalue())
    return folder


def run(tiny_checkpoint, tmp_path, images, data: bytes | str) -> tuple[int, pd.DataFrame]:
    csv = tmp_path / "visit.csv"
    csv.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    out = tmp_path / "p.csv"
    argv = ["--checkpoint", str(tiny_checkpoint), "--tta", "1", "--input", str(csv), "--images", str(images)]
    code = main([*argv, "--out", str(out)])
    table = pd.read_csv(out, dtype={"patient_id": str}, keep_default_na=False) if out.exists() else pd.DataFrame()
    return code, table


def test_rows_without_a_patient_id_get_no_invented_patient(tiny_checkpoint, tmp_path, images, caplog):
    text = (
        "image_name,patient_id\n"
        "ISIC_0272509,IP_0408084\nISIC_1632118,IP_0408084\nISIC_1757941,IP_0408084\n"
        "ISIC_0599605,\nISIC_5874357,NA\n"
    )
    with caplog.at_level(logging.WARNING):
        code, table = run(tiny_checkpoint, tmp_path, images, text)
    assert code == 0
    assert list(table.columns) == [
        "image_name",
        "target",
        "patient_id",
        "ugly_duckling",
        "triage_score",
        "patient_rank",
        "tta_spread",
        "tta_views",
    ]
    alone = table.set_index("image_name").loc[["ISIC_0599605", "ISIC_5874357"]]
    assert (alone["patient_id"] == "").all() and (alone["patient_rank"] == "").all()
    assert (alone["ugly_duckling"] == "").all()
    assert pd.to_numeric(alone["target"]).between(0, 1).all()
    ranks = table.loc[table["patient_id"] == "IP_0408084", "patient_rank"].astype(int)
    assert sorted(ranks) == [1, 2, 3]
    warned = caplog.text  # the CLI's log goes to stderr
    assert "2 row(s) without a patient id" in warned and "line(s) 5, 6" in warned


def test_a_patient_id_with_a_nul_goes_to_the_errors_file(tiny_checkpoint, tmp_path, images, capsys):
    code, table = run(
        tiny_checkpoint, tmp_path, images, "image_name,patient_id\nISIC_0272509,IP_04\x0008\nISIC_1632118,P\n"
    )
    assert code == 0
    assert table["image_name"].tolist() == ["ISIC_1632118"]
    errors = pd.read_csv(tmp_path / "p.errors.csv")
    assert errors["image_id"].tolist() == ["ISIC_0272509"]
    assert "patient_id contains control" in errors["reason"][0]


def test_one_malformed_row_and_a_cp1252_file_still_score_the_rest(tiny_checkpoint, tmp_path, images):
    text = "image_name,patient_id,anatom_site_general_challenge\nISIC_0272509,Pé,torso\nISIC_1632118,Pé,head, neck\n"
    code, table = run(tiny_checkpoint, tmp_path, images, text.encode("cp1252"))
    assert code == 0
    assert table["image_name"].tolist() == ["ISIC_0272509"]
    assert table["patient_id"].tolist() == ["Pé"]
    errors = pd.read_csv(tmp_path / "p.errors.csv")
    assert errors["image_id"].tolist() == ["ISIC_1632118"]
    assert errors["reason"][0].startswith("line 3 has 4 fields but the header has 3")


def test_errors_file_defuses_formula_paths(tiny_checkpoint, tmp_path, images, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "=cmd"
    images.rename(folder)
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "p.csv"
    argv = ["--checkpoint", str(tiny_checkpoint), "--tta", "1", "--input", "=cmd", "--out", str(out)]
    assert main(argv) == 0
    errors = pd.read_csv(tmp_path / "p.errors.csv")
    assert errors["image_path"].tolist() == ["'=cmd/broken.png"]


def test_a_patient_id_a_spreadsheet_would_run_is_written_defused(tiny_checkpoint, tmp_path, images):
    code, table = run(tiny_checkpoint, tmp_path, images, "image_name,patient_id\nISIC_0272509,=1+2\nISIC_1632118,P2\n")
    assert code == 0
    assert table["patient_id"].tolist() == ["'=1+2", "P2"]


def test_a_csv_reads_its_images_from_the_folder_of_its_name_by_default(tiny_checkpoint, tmp_path, images):
    """visit.CSV (any case) -> visit/, when --images is not given."""
    images.rename(tmp_path / "visit")
    csv = tmp_path / "visit.CSV"
    csv.write_text("image_name\nISIC_0272509\n")
    out = tmp_path / "p.csv"
    assert main(["--checkpoint", str(tiny_checkpoint), "--tta", "1", "--input", str(csv), "--out", str(out)]) == 0
    assert pd.read_csv(out)["image_name"].tolist() == ["ISIC_0272509"]


def test_an_earlier_runs_errors_file_goes_when_this_run_has_none(tiny_checkpoint, tmp_path, images):
    (tmp_path / "p.errors.csv").write_text("image_id,image_path,reason\nold,old.png,an earlier run's error\n")
    code, table = run(tiny_checkpoint, tmp_path, images, "image_name\nISIC_0272509\n")
    assert code == 0 and table["image_name"].tolist() == ["ISIC_0272509"]
    assert not (tmp_path / "p.errors.csv").exists()


def test_a_csv_that_lists_no_image_exits_1_naming_it(tiny_checkpoint, tmp_path, images, capsys):
    code, _ = run(tiny_checkpoint, tmp_path, images, "image_name,patient_id\n")
    assert code == 1
    assert f"error: no images listed in {tmp_path / 'visit.csv'}" in capsys.readouterr().err


def test_the_terminal_shows_20_errors_then_how_many_more(tiny_checkpoint, tmp_path, images, capsys):
    """The errors file has every one; stderr the first 20 and a count of the rest."""
    for missing, more in ((20, None), (21, 1)):
        names = "".join(f"missing_{i:02d}\n" for i in range(missing))
        code, table = run(tiny_checkpoint, tmp_path, images, "image_name\nISIC_0272509\n" + names)
        assert code == 0 and table["image_name"].tolist() == ["ISIC_0272509"]
        err = capsys.readouterr().err
        assert err.count("error: missing_") == 20
        assert ("… and 1 more" in err) == (more is not None)
        assert len(pd.read_csv(tmp_path / "p.errors.csv")) == missing
