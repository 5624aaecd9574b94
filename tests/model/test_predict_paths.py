"""The predict CLI never writes over its inputs or one output over another: refused (exit 2) before scoring."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from model.predict import main


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (180, 120, 90)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def no_scoring(monkeypatch):
    from model import predictor as predictor_module

    def refuse(*_a, **_k):
        raise AssertionError("nothing may be scored when an output location is refused")

    monkeypatch.setattr(predictor_module.Predictor, "from_checkpoint", refuse)


@pytest.fixture
def visit(tmp_path):
    """in.csv listing two PNGs in imgs/ (as /tmp/audit1/cam1): the originals' bytes, to check nothing changed."""
    images = tmp_path / "imgs"
    images.mkdir()
    originals = {}
    for name in ("ISIC_0272509", "ISIC_1632118"):
        originals[name] = _png()
        (images / f"{name}.png").write_bytes(originals[name])
    csv = tmp_path / "in.csv"
    csv.write_text("image_name,patient_id\nISIC_0272509,P1\nISIC_1632118,P1\n")
    return csv, images, originals


def _unchanged(images, originals) -> bool:
    return {p.stem: p.read_bytes() for p in images.iterdir()} == originals


@pytest.mark.parametrize("cam", ["imgs", "imgs/.", "imgs/sub", "link", "in.csv"])
def test_cam_in_the_image_folder_is_refused(tmp_path, visit, no_scoring, capsys, cam):
    csv, images, originals = visit
    (tmp_path / "link").symlink_to(images)
    code = main(
        ["--input", str(csv), "--images", str(images), "--out", str(tmp_path / "p.csv"), "--cam", str(tmp_path / cam)]
    )
    assert code == 2
    assert "--cam" in capsys.readouterr().err
    assert _unchanged(images, originals)
    assert not (tmp_path / "p.csv").exists()


def test_cam_in_the_default_image_folder_of_a_csv_is_refused(tmp_path, no_scoring, capsys):
    (tmp_path / "visit").mkdir()
    (tmp_path / "visit" / "A.png").write_bytes(_png())
    (tmp_path / "visit.csv").write_text("image_name\nA\n")
    argv = ["--input", str(tmp_path / "visit.csv"), "--out", str(tmp_path / "p.csv"), "--cam", str(tmp_path / "visit")]
    assert main(argv) == 2
    assert "the image folder" in capsys.readouterr().err


def test_cam_in_an_input_folder_is_refused(tmp_path, visit, no_scoring, capsys):
    _, images, originals = visit
    assert main(["--input", str(images), "--out", str(tmp_path / "p.csv"), "--cam", str(images)]) == 2
    assert "--cam" in capsys.readouterr().err
    assert _unchanged(images, originals)


def test_cam_beside_or_above_the_images_is_allowed(tmp_path, visit, monkeypatch):
    from model.predict import parse_args
    from model.predict_paths import check_outputs

    csv, images, _ = visit
    for cam in (tmp_path / "overlays", tmp_path):
        args = parse_args(
            ["--input", str(csv), "--images", str(images), "--out", str(tmp_path / "p.csv"), "--cam", str(cam)]
        )
        check_outputs(args)  # no DatasetError


def test_errors_file_may_not_be_the_input_csv(tmp_path, visit, no_scoring, capsys):
    _, images, _ = visit
    source = tmp_path / "X.errors.csv"
    source.write_text("image_name\nISIC_0272509\n")
    assert main(["--input", str(source), "--images", str(images), "--out", str(tmp_path / "X.csv")]) == 2
    assert "the errors file" in capsys.readouterr().err
    assert source.read_text() == "image_name\nISIC_0272509\n"


def test_out_may_not_be_the_input_csv_through_a_link(tmp_path, visit, no_scoring, capsys):
    csv, images, _ = visit
    (tmp_path / "alias.csv").symlink_to(csv)
    assert main(["--input", str(csv), "--images", str(images), "--out", str(tmp_path / "alias.csv")]) == 2
    assert "is the input file" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["out", "errors"])
def test_cam_may_not_be_an_output_file(tmp_path, visit, no_scoring, capsys, target):
    csv, images, _ = visit
    out = tmp_path / "X"
    cam = out if target == "out" else tmp_path / "X.errors.csv"
    assert main(["--input", str(csv), "--images", str(images), "--out", str(out), "--cam", str(cam)]) == 2
    assert "are the same path" in capsys.readouterr().err


def test_out_may_not_replace_an_image_of_an_input_folder(tmp_path, visit, no_scoring, capsys):
    _, images, originals = visit
    out = images / "ISIC_0272509.png"
    assert main(["--input", str(images), "--out", str(out)]) == 2
    assert "is an input image" in capsys.readouterr().err
    assert _unchanged(images, originals)


@pytest.mark.parametrize("failing", ["p.csv", "p.errors.csv"])
def test_a_write_failure_after_scoring_is_a_clear_exit_1(tiny_checkpoint, tmp_path, monkeypatch, capsys, failing):
    import errno
    from pathlib import Path

    import pandas as pd

    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "A.png").write_bytes(_png())
    (folder / "broken.png").write_bytes(b"not a png")
    real_to_csv = pd.DataFrame.to_csv

    def disk_full(frame, path, *args, **kwargs):
        if failing in Path(path).name:  # the file itself or a temporary file beside it
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_to_csv(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    out = tmp_path / "p.csv"
    code = main(["--checkpoint", str(tiny_checkpoint), "--tta", "1", "--input", str(folder), "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"error: could not write {tmp_path / failing}: No space left on device" in err
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written file left behind
    assert not (tmp_path / failing).exists()


@pytest.mark.parametrize("out", ["-", "fifo", "loop"])
def test_out_must_be_a_regular_file(tmp_path, visit, no_scoring, capsys, out):
    """--out names a file the CSV is renamed onto: a pipe or device would be replaced, not written through
    (as root, --out /dev/stdout turned /dev/stdout into a regular file), and "-" is no file."""
    import os

    csv, images, _ = visit
    if out == "fifo":
        os.mkfifo(tmp_path / "fifo")
    if out == "loop":
        (tmp_path / "loop").symlink_to(tmp_path / "loop")
    target = out if out == "-" else str(tmp_path / out)
    assert main(["--input", str(csv), "--images", str(images), "--out", target]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("regular file" in err or "give a file name" in err or "symbolic" in err)
    if out == "fifo":
        assert (tmp_path / "fifo").is_fifo()


def test_out_through_a_symlink_writes_the_linked_file_and_keeps_the_link(tiny_checkpoint, tmp_path, visit):
    csv, images, _ = visit
    real = tmp_path / "results" / "predictions.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    assert (
        main(["--checkpoint", str(tiny_checkpoint), "--input", str(csv), "--images", str(images), "--out", str(link)])
        == 0
    )
    assert link.is_symlink() and real.read_text().startswith("image_name")


def test_out_may_not_be_the_input_csv_through_a_hard_link(tmp_path, visit, no_scoring, capsys):
    import os

    csv, images, _ = visit
    os.link(csv, tmp_path / "hard.csv")
    assert main(["--input", str(csv), "--images", str(images), "--out", str(tmp_path / "hard.csv")]) == 2
    assert "is the input file" in capsys.readouterr().err


def test_out_may_not_replace_an_image_in_the_images_folder_of_a_csv(tmp_path, visit, no_scoring, capsys):
    csv, images, originals = visit
    out = images / "ISIC_0272509.png"
    assert main(["--input", str(csv), "--images", str(images), "--out", str(out)]) == 2
    assert "is an input image" in capsys.readouterr().err
    assert _unchanged(images, originals)


@pytest.mark.parametrize(
    ("denied", "words"),
    [("p.csv", "--out {p}/out/p.csv exists and is not writable"), ("out", "--out {p}/out/p.csv: the folder")],
)
def test_outputs_that_cannot_be_written_are_refused_before_scoring(
    tmp_path, visit, no_scoring, capsys, monkeypatch, denied, words
):
    """(Permissions are stubbed: the tests may run as root, which may write anywhere.)"""
    import os

    from model import predict_paths

    csv, images, _ = visit
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "p.csv"
    out.write_text("earlier results\n")
    real_access = os.access
    monkeypatch.setattr(
        predict_paths.os, "access", lambda p, mode: False if os.path.basename(p) == denied else real_access(p, mode)
    )
    assert main(["--input", str(csv), "--images", str(images), "--out", str(out)]) == 2
    assert words.format(p=tmp_path) in capsys.readouterr().err
    assert out.read_text() == "earlier results\n"


def test_an_earlier_errors_file_that_cannot_be_removed_is_a_clear_exit_1(
    tiny_checkpoint, tmp_path, visit, monkeypatch, capsys
):
    from pathlib import Path

    csv, images, _ = visit
    stale = tmp_path / "p.errors.csv"
    stale.write_text("image_id,image_path,reason\nold,old.png,an earlier run's error\n")
    real_unlink = Path.unlink

    def locked(self, *args, **kwargs):
        if self.name == stale.name:
            raise PermissionError(13, "Permission denied")
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", locked)
    argv = ["--checkpoint", str(tiny_checkpoint), "--input", str(csv), "--images", str(images)]
    assert main([*argv, "--out", str(tmp_path / "p.csv")]) == 1
    assert f"error: could not remove the earlier run's {stale}: Permission denied" in capsys.readouterr().err


def test_out_may_not_replace_an_image_in_the_default_folder_of_an_upper_case_csv(tmp_path, visit, no_scoring, capsys):
    csv, images, originals = visit
    images.rename(tmp_path / "VISIT")
    images = tmp_path / "VISIT"
    csv.rename(tmp_path / "VISIT.CSV")
    assert main(["--input", str(tmp_path / "VISIT.CSV"), "--out", str(images / "ISIC_0272509.png")]) == 2
    assert "is an input image" in capsys.readouterr().err
    assert _unchanged(images, originals)


def test_a_write_that_fails_half_way_leaves_the_earlier_output_whole(tiny_checkpoint, tmp_path, visit, monkeypatch):
    import errno

    import pandas as pd

    csv, images, _ = visit
    out = tmp_path / "p.csv"
    out.write_text("earlier results\n")

    def half_then_full(frame, path, *args, **kwargs):
        with open(path, "w") as f:
            f.write("image_name,tar")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_full)
    argv = ["--checkpoint", str(tiny_checkpoint), "--input", str(csv), "--images", str(images)]
    assert main([*argv, "--out", str(out)]) == 1
    assert out.read_text() == "earlier results\n"
    assert not list(tmp_path.glob(".*.tmp"))
