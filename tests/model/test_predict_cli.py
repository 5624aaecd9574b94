import shutil

import pandas as pd
import pytest

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


def test_links_and_pipes_in_a_folder_get_error_rows_not_silence(datasets_dir, tmp_path, fresh_checkpoint):
    import os

    folder = tmp_path / "mixed"
    folder.mkdir()
    jpg = sorted((datasets_dir / "ham10000" / "images").glob("*.jpg"))[0]
    shutil.copy(jpg, folder / jpg.name)
    (folder / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    os.mkfifo(folder / "fifo.jpg")
    out = tmp_path / "pred.csv"
    assert main(["--checkpoint", str(fresh_checkpoint), "--input", str(folder), "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 1
    reasons = pd.read_csv(tmp_path / "pred.errors.csv").set_index("image_id")["reason"].to_dict()
    assert set(reasons) == {"dangling", "loop", "fifo"}
    assert "not found" in reasons["dangling"] and "regular file" in reasons["fifo"]


def test_nothing_scored_is_a_failure(tmp_path, fresh_checkpoint):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    assert main(["--checkpoint", str(fresh_checkpoint), "--input", str(folder), "--out", str(tmp_path / "p.csv")]) == 1


def test_bad_csv_is_reported_not_raised(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("name\nx\n")
    assert main(["--input", str(tmp_path / "t.csv"), "--images", str(tmp_path), "--out", str(tmp_path / "p.csv")]) == 2
    assert "missing required column(s): image_name" in capsys.readouterr().err


# ---------------------------------------------------------------- the contract under bad input


def _png(size=(64, 64), colour=(180, 120, 90)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def one_real_image(datasets_dir, tmp_path):
    """A folder with one real ISIC JPEG (ISIC_0015719, as in the bug report) and its name."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    source = datasets_dir / "isic2020" / "train" / "ISIC_0015719.jpg"
    if not source.exists():
        source = sorted((datasets_dir / "isic2020" / "train").glob("*.jpg"))[0]
    shutil.copy(source, folder / source.name)
    return folder, source.stem


def run_cli(checkpoint, *args: str) -> int:
    return main(["--checkpoint", str(checkpoint), "--tta", "1", *args])


@pytest.mark.parametrize(
    ("bad_name", "reason"),
    [
        ("missing_one", "image file not found"),
        ("{name}.jpg", "includes the file extension .jpg"),
        ("läsion_ünïcode", "image file not found"),
        ("../{name}", "is a path"),
        ('=HYPERLINK("http://x")', "which spreadsheet programs run as a formula"),
    ],
)
def test_the_crashing_csvs_score_the_good_row_and_report_the_bad_one(
    fresh_checkpoint, one_real_image, tmp_path, capsys, bad_name, reason
):
    folder, name = one_real_image
    bad = bad_name.format(name=name)
    csv = tmp_path / "in.csv"
    pd.DataFrame({"image_name": [name, bad], "sex": ["F", "M"], "age_approx": [45, 50]}).to_csv(csv, index=False)
    out = tmp_path / "p.csv"
    assert run_cli(fresh_checkpoint, "--input", str(csv), "--images", str(folder), "--out", str(out)) == 0
    table = pd.read_csv(out)
    assert table["image_name"].tolist() == [name]
    assert list(table.columns) == ["image_name", "target", "tta_spread", "tta_views"]
    errors = pd.read_csv(tmp_path / "p.errors.csv", keep_default_na=False)
    # A name a spreadsheet would run as a formula is written defused (leading apostrophe), never as is.
    assert errors["image_id"].tolist() == ["'" + bad if bad.startswith("=") else bad]
    assert reason in errors["reason"][0]
    assert f"error: {bad}: " in capsys.readouterr().err


def test_unicode_names_that_exist_are_scored(fresh_checkpoint, one_real_image, tmp_path):
    folder, name = one_real_image
    shutil.copy(folder / f"{name}.jpg", folder / "läsion_ünïcode.jpg")
    csv = tmp_path / "in.csv"
    csv.write_text(f"image_name\n{name}\nläsion_ünïcode\n", encoding="utf-8")
    out = tmp_path / "p.csv"
    assert run_cli(fresh_checkpoint, "--input", str(csv), "--images", str(folder), "--out", str(out)) == 0
    table = pd.read_csv(out)
    assert table["image_name"].tolist() == [name, "läsion_ünïcode"]
    # The same pixels: equal up to float rounding (a batch's row position can change CPU reduction order).
    assert table["target"][1] == pytest.approx(table["target"][0], abs=1e-5)
    assert not (tmp_path / "p.errors.csv").exists()


def test_a_bad_dashboard_setting_does_not_stop_scoring(tiny_checkpoint, one_real_image, tmp_path, monkeypatch):
    # The sign-in lockout is the dashboard's setting: a typo in it stopped this command line too.
    monkeypatch.setenv("TRIAGE_LOGIN_LOCK_MINUTES", "abc")
    monkeypatch.setenv("TRIAGE_IDLE_TIMEOUT_MINUTES", "nan")
    folder, name = one_real_image
    out = tmp_path / "p.csv"
    assert run_cli(tiny_checkpoint, "--input", str(folder), "--out", str(out)) == 0
    assert pd.read_csv(out)["image_name"].tolist() == [name]


def test_nothing_scorable_in_a_csv_exits_1_but_still_writes_both_files(fresh_checkpoint, one_real_image, tmp_path):
    folder, _ = one_real_image
    csv = tmp_path / "in.csv"
    csv.write_text("image_name\nmissing_one\nmissing_two\n")
    out = tmp_path / "p.csv"
    assert run_cli(fresh_checkpoint, "--input", str(csv), "--images", str(folder), "--out", str(out)) == 1
    assert pd.read_csv(out).empty
    assert len(pd.read_csv(tmp_path / "p.errors.csv")) == 2


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
        (["--batch-size", "many"], "--batch-size: must be a whole number of images"),
        (["--tta", "0"], "--tta: must be from 1 to 8 views, got 0"),
        (["--tta", "99"], "--tta: must be from 1 to 8 views, got 99"),
        (["--cam-method", "bogus"], "unknown CAM method 'bogus'; known: gradcam"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_scored(tmp_path, capsys, monkeypatch, args, words):
    from model import predictor as predictor_module

    def no_loading(*_a, **_k):
        raise AssertionError("the checkpoint must not be loaded when an argument is bad")

    monkeypatch.setattr(predictor_module.Predictor, "from_checkpoint", no_loading)
    out = tmp_path / "p.csv"
    assert main(["--input", str(tmp_path), "--out", str(out), *args]) == 2
    assert words in capsys.readouterr().err
    assert not out.exists()


def test_views_from_1_to_the_maximum_are_accepted():
    from model.predict import parse_args
    from model.predictor import MAX_TTA

    for views in ("1", str(MAX_TTA)):
        assert parse_args(["--input", "x", "--out", "y.csv", "--tta", views]).tta == int(views)


@pytest.mark.parametrize(
    ("name", "words"),
    [("gone.csv", "does not exist"), ("list.txt", "must be a CSV file or a folder of images")],
)
def test_an_input_that_is_no_csv_or_folder_is_named(tmp_path, capsys, monkeypatch, name, words):
    from model import predictor as predictor_module

    monkeypatch.setattr(
        predictor_module.Predictor, "from_checkpoint", lambda *a, **k: (_ for _ in ()).throw(AssertionError)
    )
    if name == "list.txt":
        (tmp_path / name).write_text("image_name\nA\n")
    out = tmp_path / "p.csv"
    assert main(["--input", str(tmp_path / name), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --input") and str(tmp_path / name) in err and words in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("where", ["existing folder", "under a file"])
def test_unwritable_output_is_refused_before_scoring(tmp_path, capsys, monkeypatch, where):
    from model import predictor as predictor_module

    monkeypatch.setattr(
        predictor_module.Predictor, "from_checkpoint", lambda *a, **k: (_ for _ in ()).throw(AssertionError)
    )
    if where == "existing folder":
        out = tmp_path / "results"
        out.mkdir()
        words = "is a folder; give a file name"
    else:
        (tmp_path / "file.txt").write_text("x")
        out = tmp_path / "file.txt" / "p.csv"
        words = "is not a folder"
    assert main(["--input", str(tmp_path), "--out", str(out)]) == 2
    assert words in capsys.readouterr().err


def test_output_may_not_overwrite_the_input_csv(tmp_path, capsys):
    csv = tmp_path / "in.csv"
    csv.write_text("image_name\nA\n")
    assert main(["--input", str(csv), "--out", str(csv)]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert csv.read_text() == "image_name\nA\n"


def test_metadata_f_m_mean_female_male_and_nonsense_is_reported(tiny_checkpoint, one_real_image, tmp_path, caplog):
    import logging

    folder, name = one_real_image
    out = tmp_path / "p.csv"

    def score(sex: str, age: str) -> float:
        csv = tmp_path / "in.csv"
        csv.write_text(f"image_name,sex,age_approx\n{name},{sex},{age}\n")
        # a tiny random network: its metadata branch still turns every different input into a different score
        assert run_cli(tiny_checkpoint, "--input", str(csv), "--images", str(folder), "--out", str(out)) == 0
        return float(pd.read_csv(out)["target"][0])

    assert score("F", "45") == score("female", "45")
    assert score("M", "45") == score("male", "45")
    assert score("F", "45") != score("M", "45")  # the network reads the metadata, so the equalities mean something
    with caplog.at_level(logging.WARNING):
        nonsense = score("banana", "forty")
    assert nonsense == score("", "")  # treated as unknown …
    messages = " ".join(r.message for r in caplog.records)
    # … and reported by line, like unknown sites; never the values (free text may name a person)
    assert "1 sex values not recognised" in messages and "1 age values" in messages and "(lines 2)" in messages
    assert "banana" not in messages and "forty" not in messages
    for age in ("-5", "300", "1e308"):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert score("", age) == nonsense
        assert "1 age values that are not an age in years" in " ".join(r.message for r in caplog.records)


def test_degenerate_images_are_reported_not_scored(fresh_checkpoint, one_real_image, tmp_path):
    import io

    from PIL import Image

    folder, name = one_real_image
    (folder / "dot.png").write_bytes(_png((1, 1)))
    (folder / "line.png").write_bytes(_png((300_000, 1)))
    (folder / "strip.png").write_bytes(_png((60_000, 2)))
    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    (folder / "anim.gif").write_bytes(buffer.getvalue())
    buffer = io.BytesIO()
    frames[0].save(buffer, "TIFF", save_all=True, append_images=frames[1:2])
    (folder / "pages.tif").write_bytes(buffer.getvalue())
    out = tmp_path / "p.csv"
    assert run_cli(fresh_checkpoint, "--input", str(folder), "--out", str(out)) == 0
    assert pd.read_csv(out)["image_name"].tolist() == [name]
    reasons = pd.read_csv(tmp_path / "p.errors.csv").set_index("image_id")["reason"].to_dict()
    assert "only 1×1 px; a lesion image needs at least 32 px" in reasons["dot"]
    assert "only 300000×1 px" in reasons["line"]
    assert "only 60000×2 px" in reasons["strip"]
    assert reasons["anim"].startswith("the file holds 3 frames (GIF); a lesion image must be a single picture")
    assert reasons["pages"].startswith("the file holds 2 pages (TIFF)")


def test_ctrl_c_while_scoring_is_one_line_and_leaves_the_output_as_it_was(tmp_path, monkeypatch, capsys):
    from model import predictor as predictor_module

    class Interrupted:
        tta = 2

        def predict_records(self, *args, **kwargs):
            raise KeyboardInterrupt

    monkeypatch.setattr(predictor_module.Predictor, "from_checkpoint", lambda *a, **k: Interrupted())
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"x")
    out = tmp_path / "pred.csv"
    out.write_text("earlier results\n")
    assert main(["--input", str(folder), "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted: nothing written" in err and "Traceback" not in err
    assert out.read_text() == "earlier results\n"


@pytest.mark.parametrize(
    ("failure", "code", "words"),
    [
        (PermissionError(13, "Permission denied"), 1, "could not write the overlays to --cam"),
        (ValueError("no layer to explain"), 2, "--cam: no layer to explain (the predictions were written to"),
    ],
)
def test_overlays_that_cannot_be_written_fail_the_run_and_keep_the_predictions(
    tiny_checkpoint, tmp_path, monkeypatch, capsys, failure, code, words
):
    from model import cam

    def failing(*args, **kwargs):
        raise failure

    monkeypatch.setattr(cam, "write_overlays", failing)
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "A.png").write_bytes(_png())
    out = tmp_path / "p.csv"
    assert run_cli(tiny_checkpoint, "--input", str(folder), "--out", str(out), "--cam", str(tmp_path / "cams")) == code
    assert words in capsys.readouterr().err
    assert pd.read_csv(out)["image_name"].tolist() == ["A"]


def test_the_batch_size_and_checkpoint_given_are_the_ones_loaded(tmp_path, monkeypatch, capsys):
    from model import predictor as predictor_module
    from model.checkpoint import CheckpointError

    asked = {}

    def load(checkpoint, **kwargs):
        asked.update(kwargs, checkpoint=checkpoint)
        raise CheckpointError("stop here: only the arguments matter")

    monkeypatch.setattr(predictor_module.Predictor, "from_checkpoint", load)
    argv = ["--input", str(tmp_path), "--out", str(tmp_path / "p.csv"), "--batch-size", "7"]
    assert main([*argv, "--checkpoint", str(tmp_path / "ckpt")]) == 2
    assert asked == {"checkpoint": tmp_path / "ckpt", "batch_size": 7}
    assert "error: stop here" in capsys.readouterr().err


def test_help_exits_0_and_a_missing_argument_2(capsys):
    assert main(["--help"]) == 0
    assert "--batch-size" in capsys.readouterr().out
    assert main(["--input", "x"]) == 2
    assert "the following arguments are required: --out" in capsys.readouterr().err
