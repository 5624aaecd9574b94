"""The CLI and the dashboard score a file through one path: same decode, same TTA policy, same batch loop.

P(melanoma) for the same file agrees within 1e-4 between `python -m model.predict` and the dashboard's
review (upload check -> whole-patient triage), for a 512 px ISIC image and a 4000x3000 photo alike, with
the committed default model (224 px) and each side's default settings.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from model.predict import main
from model.predictor import Predictor


@pytest.fixture(scope="module")
def default_predictor():
    return Predictor.from_checkpoint(None, device="cpu")


@pytest.mark.slow  # the shipped model on real photos, one of them 4000x3000
def test_cli_and_dashboard_agree_on_a_512px_isic_image_and_a_4000x3000_photo(datasets_dir, tmp_path, default_predictor):
    from dashboard.patient_form import PatientContext
    from dashboard.review_state import ReviewState

    source = sorted((datasets_dir / "isic2020" / "train").glob("*.jpg"))[0]
    folder = tmp_path / "visit"
    folder.mkdir()
    shutil.copy(source, folder / "isic.jpg")
    with Image.open(source) as img:
        assert max(img.size) <= 1024  # the ISIC 2020 copies here are ~512 px
        img.convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC).save(folder / "photo.jpg", quality=92)
    files = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]

    out = tmp_path / "cli.csv"
    assert main(["--input", str(folder), "--out", str(out)]) == 0  # default checkpoint, default TTA
    cli = pd.read_csv(out).set_index("image_name")

    review = ReviewState(patient=PatientContext(identifier="PT-AGREE"))
    report = review.add_files(files)
    assert not report.problems, report.problems
    result = review.run_triage(default_predictor)  # the dashboard's default: the model's TTA
    dashboard = review.scored_table().set_index("filename")

    assert default_predictor.tta == 2 and result.tta == 2 and (cli["tta_views"] == 2).all()
    for name in ("isic.jpg", "photo.jpg"):
        stem = name.removesuffix(".jpg")
        assert abs(cli.at[stem, "target"] - dashboard.at[name, "p_melanoma"]) < 1e-4, name
        assert abs(cli.at[stem, "tta_spread"] - dashboard.at[name, "p_spread"]) < 1e-4, name
    # Not trivially equal: the two files really score differently. On the logit scale: the model is calibrated
    # to screening prevalence, so a benign-looking lesion's probability is small (here below 0.01), and it was
    # trained to be robust to resampling, so the 4000x3000 upscale scores close to its 512 px source.
    logit = cli["target"].map(lambda p: np.log(p / (1 - p)))
    assert abs(logit["isic"] - logit["photo"]) > 1e-2
    for name in ("isic.jpg", "photo.jpg"):
        p = dashboard.at[name, "p_melanoma"]
        # relatively close too (the CLI writes 6 decimals: ~1e-3 on the logit at p ~ 0.001)
        assert abs(logit[name.removesuffix(".jpg")] - np.log(p / (1 - p))) < 3e-3


def _checkpoint_with(fresh_checkpoint, tmp_path, inference):
    folder = tmp_path / "ckpt"
    shutil.copytree(fresh_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config["inference"] = inference
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_tta_is_a_property_of_the_model_used_by_cli_and_triage(tiny_checkpoint, datasets_dir, tmp_path):
    from model.triage import LesionInput, triage_patient

    folder = _checkpoint_with(tiny_checkpoint, tmp_path, {"tta": 3})  # plumbing: a tiny network will do
    predictor = Predictor.from_checkpoint(folder, device="cpu")
    assert predictor.tta == 3
    images = tmp_path / "imgs"
    images.mkdir()
    source = sorted((datasets_dir / "isic2020" / "train").glob("*.jpg"))[0]
    shutil.copy(source, images / source.name)

    out = tmp_path / "p.csv"
    assert main(["--checkpoint", str(folder), "--input", str(images), "--out", str(out)]) == 0
    cli = pd.read_csv(out)
    assert cli["tta_views"].tolist() == [3]
    result = triage_patient(predictor, [LesionInput(source.stem, source)])
    assert result.tta == 3
    np.testing.assert_allclose(result.table["p_melanoma"], cli["target"], atol=1e-4)
    # --tta overrides the model's default, and the output says which was used.
    assert main(["--checkpoint", str(folder), "--input", str(images), "--out", str(out), "--tta", "1"]) == 0
    assert pd.read_csv(out)["tta_views"].tolist() == [1]


def test_the_default_is_two_views_when_the_checkpoint_does_not_say(predictor):
    assert "inference" not in predictor.config and predictor.tta == 2


@pytest.mark.parametrize("bad", [0, 9, "two", 2.5])
def test_an_invalid_checkpoint_tta_is_an_error_before_scoring(fresh_checkpoint, tmp_path, capsys, bad):
    folder = _checkpoint_with(fresh_checkpoint, tmp_path, {"tta": bad})
    out = tmp_path / "p.csv"
    assert main(["--checkpoint", str(folder), "--input", str(tmp_path), "--out", str(out)]) == 2
    assert "the checkpoint's inference.tta must be" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("tta", [0, 9, -1])
def test_out_of_range_tta_is_an_error_never_clamped(predictor, tta):
    import torch

    size = predictor.network.image_size
    images = torch.zeros(1, 3, size, size)
    meta = torch.from_numpy(predictor.encoder.encode(pd.DataFrame(index=range(1))))
    with pytest.raises(ValueError, match="tta must be from 1 to 8 views"):
        predictor.predict_tensors(images, meta, tta)


def test_one_loop_reports_broken_items_in_order_and_scores_the_rest(predictor, datasets_dir):
    from data.images import ImageDecodeError, decode_image

    paths = sorted((datasets_dir / "isic2020" / "train").glob("*.jpg"))[:5]

    def broken():
        raise ImageDecodeError("x", "corrupt image data: test")

    def crashing():
        raise RuntimeError("boom")

    loaders = [
        lambda: decode_image(paths[0]),
        broken,
        lambda: decode_image(paths[1]),
        crashing,
        lambda: decode_image(paths[2]),
    ]
    progress = []
    stream = predictor.score_stream(loaders, tta=1, batch_size=2, progress=lambda d, t: progress.append((d, t)))
    assert stream.indices == [0, 2, 4]
    assert stream.errors == [(1, "corrupt image data: test"), (3, "could not be processed (RuntimeError: boom)")]
    assert progress[-1] == (5, 5) and [d for d, _ in progress] == sorted(d for d, _ in progress)
    # Batch size does not change the numbers.
    again = predictor.score_stream(loaders, tta=1, batch_size=5)
    np.testing.assert_allclose(stream.predictions.p_melanoma, again.predictions.p_melanoma, atol=1e-5)
