import shutil

import pandas as pd

from model.predict import main


def test_scores_isic2020_test_folder_into_a_submission(datasets_dir, tmp_path):
    out = tmp_path / "submission.csv"
    assert main(["--input", str(datasets_dir / "isic2020" / "test"), "--out", str(out), "--tta", "2"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:2]) == ["image_name", "target"]
    assert len(table) == 7
    assert table["image_name"].str.match(r"ISIC_\d{7}$").all()
    assert table["target"].between(0, 1).all()
    assert not (tmp_path / "submission.errors.csv").exists()


def test_mixed_folder_gives_scores_and_one_clear_error(datasets_dir, tmp_path, fresh_checkpoint, capsys):
    from PIL import Image

    folder = tmp_path / "mixed"
    folder.mkdir()
    jpgs = sorted((datasets_dir / "ham10000" / "images").glob("*.jpg"))[:2]
    for p in jpgs:
        shutil.copy(p, folder / p.name)
    Image.open(jpgs[0]).save(folder / "as_png.png")
    (folder / "corrupt.jpg").write_bytes(jpgs[1].read_bytes()[:500])
    out = tmp_path / "pred.csv"
    code = main(["--checkpoint", str(fresh_checkpoint), "--input", str(folder), "--out", str(out)])
    assert code == 0
    assert len(pd.read_csv(out)) == 3
    errors = pd.read_csv(tmp_path / "pred.errors.csv")
    assert errors["image_id"].tolist() == ["corrupt"]
    assert "truncated" in errors["reason"][0] or "corrupt" in errors["reason"][0]
    assert "corrupt: " in capsys.readouterr().err


def test_nothing_scored_is_a_failure(tmp_path, fresh_checkpoint):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    assert main(["--checkpoint", str(fresh_checkpoint), "--input", str(folder), "--out", str(tmp_path / "p.csv")]) == 1


def test_bad_csv_is_reported_not_raised(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("name\nx\n")
    assert main(["--input", str(tmp_path / "t.csv"), "--images", str(tmp_path), "--out", str(tmp_path / "p.csv")]) == 2
    assert "missing required column(s): image_name" in capsys.readouterr().err
