"""The trainer on small real subsets of ../shared, on CPU (gloo)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from model.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]
SMALL = [
    "--datasets",
    "isic2020",
    "--limit-per-dataset",
    "48",
    "--fold",
    "0",
    "--image-size",
    "64",
    "--workers",
    "1",
    "--max-steps-per-epoch",
    "3",
    "--device",
    "cpu",
]


def train(out: Path, *args: str, nproc: int = 1) -> subprocess.CompletedProcess:
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc > 1 else []
    cmd = [sys.executable, *launcher, "-m", "training.train", "--out", str(out), *SMALL, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "fold_0" / "state" / "resume_weights.safetensors"))


def max_difference(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a if a[k].is_floating_point())


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_with_the_same_global_batch(datasets_dir, tmp_path):
    # BatchNorm statistics are frozen so that per-rank batches cannot differ from one big batch.
    common = ["--epochs", "1", "--bn-mode", "frozen", "--dropout", "0"]
    ddp = train(tmp_path / "ddp", *common, "--batch-size", "4", "--check-sync", nproc=2)
    # --check-sync compared all ranks' weights after every step (3 steps: --max-steps-per-epoch) and found them equal
    assert '"sync_checks": 3' in ddp.stderr, ddp.stderr[-3000:]
    train(tmp_path / "single", *common, "--batch-size", "8")
    assert max_difference(weights(tmp_path / "ddp"), weights(tmp_path / "single")) < 1e-3


@pytest.mark.slow
def test_resume_after_interruption_equals_uninterrupted_run(datasets_dir, tmp_path):
    common = ["--epochs", "2", "--batch-size", "8"]
    train(tmp_path / "straight", *common)
    train(tmp_path / "broken", *common, "--stop-after-epochs", "1")
    assert (tmp_path / "broken" / "fold_0" / "log.csv").exists() is False  # stopped before finishing
    resumed = train(tmp_path / "broken", *common, "--resume")
    assert "resumed" in resumed.stderr
    assert max_difference(weights(tmp_path / "straight"), weights(tmp_path / "broken")) == 0.0
    straight_log = (tmp_path / "straight" / "fold_0" / "log.csv").read_text().splitlines()
    broken_log = (tmp_path / "broken" / "fold_0" / "log.csv").read_text().splitlines()
    assert [line.split(",")[1] for line in straight_log] == [line.split(",")[1] for line in broken_log]


@pytest.mark.slow
def test_training_writes_loadable_checkpoints_and_oof(datasets_dir, tmp_path):
    train(tmp_path / "run", "--epochs", "1", "--batch-size", "8")
    model, config = load_checkpoint(tmp_path / "run" / "fold_0" / "last")
    assert config["network"]["image_size"] == 64
    assert config["network"]["mean"] == config["network"]["std"] == [0.5, 0.5, 0.5]  # tf_efficientnet_lite0's own
    assert config["training"]["data"]["isic2020"]["images"] == 48
    import pandas as pd

    oof = pd.read_csv(tmp_path / "run" / "oof.csv")
    assert oof["p_melanoma"].between(0, 1).all()
    assert set(oof["fold"]) == {0}
    emb = np.load(tmp_path / "run" / "oof_embeddings.npz")
    assert emb["embedding"].shape == (len(oof), model.embedding_dim)


@pytest.mark.parametrize("backbone", ["resnet18", "tf_efficientnet_lite0", "efficientnet_b3"])
def test_network_config_takes_normalisation_and_size_from_the_backbone(backbone):
    import timm

    from training.train import network_config, parse_args

    expected = timm.create_model(backbone, pretrained=False).pretrained_cfg  # what resolve_data_config reads
    net_cfg = network_config(parse_args(["--backbone", backbone]))
    assert net_cfg.backbone == backbone
    assert net_cfg.mean == pytest.approx(expected["mean"]) and net_cfg.std == pytest.approx(expected["std"])
    assert net_cfg.image_size == expected["input_size"][-1]
    # an explicit --image-size wins; the normalisation stays the backbone's
    sized = network_config(parse_args(["--backbone", backbone, "--image-size", "96"]))
    assert (sized.image_size, sized.mean, sized.std) == (96, net_cfg.mean, net_cfg.std)


def test_resnet18_is_not_normalised_like_efficientnet_lite():
    from training.train import network_config, parse_args

    resnet = network_config(parse_args(["--backbone", "resnet18"]))
    lite = network_config(parse_args([]))
    assert resnet.mean == pytest.approx((0.485, 0.456, 0.406)) and resnet.std == pytest.approx((0.229, 0.224, 0.225))
    assert (lite.backbone, lite.image_size, lite.mean, lite.std) == (
        "tf_efficientnet_lite0",
        224,
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
    )  # the default model's recipe is unchanged


V3 = [
    "--datasets", "isic2020", "ham10000",
    "--balance-prevalence", "0.15", "--samples-per-epoch", "32", "--pos-weight", "none",
    "--meta-dropout", "0.3", "--degrade", "--epochs", "1", "--batch-size", "8",
]  # fmt: skip


@pytest.mark.slow
def test_balanced_run_keeps_each_tta_views_logit_out_of_fold(datasets_dir, tmp_path):
    import pandas as pd

    result = train(tmp_path / "run", *V3)
    assert '"images_per_s"' in result.stderr
    oof = pd.read_csv(tmp_path / "run" / "oof.csv")
    assert set(oof["dataset"]) == {"isic2020", "ham10000"}
    assert {"logit_v0", "logit_v1", "sex", "age"} <= set(oof.columns)
    mean_logit = oof[["logit_v0", "logit_v1"]].mean(axis=1)
    assert np.allclose(oof["p_melanoma"], 1 / (1 + np.exp(-mean_logit)), atol=1e-5)
    assert not np.allclose(oof["logit_v0"], oof["logit_v1"])  # two views, not one copied
    config = load_checkpoint(tmp_path / "run" / "fold_0" / "last")[1]["training"]["config"]
    assert (config["balance_prevalence"], config["meta_dropout"], config["degrade"]) == (0.15, 0.3, True)


@pytest.mark.slow
def test_final_model_scores_the_external_set_it_never_saw(datasets_dir, tmp_path):
    import pandas as pd

    train(tmp_path / "final", *V3, "--fold", "none", "--external", "derm7pt")
    external = pd.read_csv(tmp_path / "final" / "external_derm7pt.csv")
    assert set(external["dataset"]) == {"derm7pt"} and len(external) == 48  # limit_per_dataset applies
    assert {"logit_v0", "logit_v1", "p_melanoma"} <= set(external.columns)


@pytest.mark.slow
def test_colour_constancy_is_trained_behind_recorded_and_repeated_by_the_predictor(datasets_dir, tmp_path):
    import pandas as pd

    from data.datasets import load_datasets
    from model.predictor import Predictor

    args = ["--fold", "none", "--external", "derm7pt", "--batch-augment", "--decoded-side", "72"]
    train(tmp_path / "final", *V3, *args, "--colour-constancy-power", "6")
    folder = tmp_path / "final" / "last"
    _, config = load_checkpoint(folder)
    assert config["preprocess"] == {"colour_constancy": {"power": 6.0}}
    assert config["training"]["config"]["colour_constancy_power"] == 6.0
    # The external scores were made behind the same step as the deployed predictor's: the same view logits
    # (the predictor averages the views' probabilities, the trainer keeps each view's logit).
    external = pd.read_csv(tmp_path / "final" / "external_derm7pt.csv").head(6)
    expected = (1 / (1 + np.exp(-external[["logit_v0", "logit_v1"]].to_numpy()))).mean(1)
    records = load_datasets(["derm7pt"]).set_index("image_id").loc[external["image_id"]].reset_index()
    predictor = Predictor.from_checkpoint(folder, device="cpu")
    assert np.allclose(predictor.predict_records(records, tta=2, workers=1).scores["p_melanoma"], expected, atol=1e-5)
    predictor.transform = predictor.transform.transforms[-1]  # the same network without the step scores otherwise
    without = predictor.predict_records(records, tta=2, workers=1).scores["p_melanoma"]
    assert np.abs(without - expected).max() > 1e-3


def test_the_trainer_normalises_colour_before_augmenting_and_records_every_step(tmp_path):
    from PIL import Image

    from data.transforms import ShadesOfGray, eval_transform
    from training.bundle import DATASETS, manifest, write_manifest
    from training.train import checkpoint_preprocess, network_config, pixel_transforms
    from training.train_config import TrainConfig

    image = Image.new("RGB", (80, 80), (190, 120, 70))  # a warm cast
    image.paste((90, 40, 30), (20, 20, 60, 60))
    cfg = TrainConfig(image_size=32, colour_constancy_power=6.0)
    net_cfg = network_config(cfg)
    augment, evaluate = pixel_transforms(cfg, net_cfg)
    plain = eval_transform(32, net_cfg.mean, net_cfg.std)
    assert torch.equal(evaluate(image), plain(ShadesOfGray(6.0)(image)))
    assert isinstance(augment.transforms[0], ShadesOfGray)  # first, before any random colour change
    assert torch.equal(pixel_transforms(TrainConfig(image_size=32), net_cfg)[1](image), plain(image))

    write_manifest(tmp_path, manifest("WEBP", 75, {"isic2020": 384}, 384))
    bundled = TrainConfig(data_root=str(tmp_path / DATASETS), colour_constancy_power=6.0)
    steps = checkpoint_preprocess(bundled)
    assert list(steps) == ["reencode", "colour_constancy"] and steps["colour_constancy"] == {"power": 6.0}
    assert checkpoint_preprocess(TrainConfig()) is None


def test_colour_constancy_power_is_checked():
    from training.train_config import parse_args

    with pytest.raises(SystemExit, match="must be >= 1"):
        parse_args(["--colour-constancy-power", "0.5"])
    assert parse_args(["--colour-constancy-power", "6"]).colour_constancy_power == 6.0
    assert parse_args([]).colour_constancy_power is None


def test_external_test_data_cannot_be_trained_on(tmp_path):
    from training.train_config import TrainConfig
    from training.train_data import load_records

    with pytest.raises(ValueError, match="external test data only"):
        load_records(TrainConfig(datasets=["isic2020", "derm7pt"]))


@pytest.mark.slow
def test_batch_augmentation_trains_from_images_decoded_once(datasets_dir, tmp_path):
    import json

    import pandas as pd

    result = train(tmp_path / "run", *V3, "--batch-augment", "--decoded-side", "72")
    oof = pd.read_csv(tmp_path / "run" / "oof.csv")
    assert {"logit_v0", "logit_v1"} <= set(oof.columns) and len(oof) > 0
    log = [json.loads(line) for line in (tmp_path / "run" / "fold_0" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] > 0 and log[-1]["images_per_s"] > 0
    config = load_checkpoint(tmp_path / "run" / "fold_0" / "last")[1]["training"]
    assert config["config"]["batch_augment"] is True and config["decode_seconds"] >= 0
    assert "Traceback" not in result.stderr


def test_the_ranking_loss_needs_batch_augmentation_and_a_sane_setting():
    from training.train_config import parse_args

    with pytest.raises(SystemExit, match="needs --batch-augment"):
        parse_args(["--pair-loss-weight", "0.5"])
    with pytest.raises(SystemExit, match="must be >= 0"):
        parse_args(["--pair-loss-weight", "-1", "--batch-augment"])
    with pytest.raises(SystemExit, match="--pairs-per-batch >= 1"):
        parse_args(["--pair-loss-weight", "0.5", "--pairs-per-batch", "0", "--batch-augment"])
    assert parse_args(["--pair-loss-weight", "0.5", "--batch-augment"]).pairs_per_batch == 16


@pytest.mark.slow
def test_batch_augmented_training_with_the_within_patient_ranking_loss(datasets_dir, tmp_path):
    import json
    import re

    args = ["--datasets", "isic2020_patients", "--epochs", "1", "--batch-size", "8", "--batch-augment"]
    result = train(
        tmp_path / "run", *args, "--decoded-side", "72", "--pair-loss-weight", "0.5", "--pairs-per-batch", "2"
    )
    assert re.search(r"within-patient ranking loss: [1-9]\d* \(melanoma, benign\) pairs", result.stderr)
    log = [json.loads(line) for line in (tmp_path / "run" / "fold_0" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] > 0
    config = load_checkpoint(tmp_path / "run" / "fold_0" / "last")[1]["training"]["config"]
    assert config["pair_loss_weight"] == 0.5 and config["pairs_per_batch"] == 2
