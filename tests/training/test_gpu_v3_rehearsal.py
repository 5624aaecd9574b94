"""The v3 GPU path rehearsed on the CPU with tiny data: the device script trains CV + final from a bundle of
original bytes, and the CPU assembly turns its results into a shippable checkpoint whose card says how it
was trained. (The GPU run itself needs a lent machine; this is what makes its few minutes count.)"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.checkpoint import load_checkpoint
from training.bundle import DATASETS, original_manifest, write_manifest
from training.score_images import prediction_table

REPO = Path(__file__).resolve().parents[2]
TINY = "--limit-per-dataset 40 --epochs 1 --samples-per-epoch 32 --batch-size 8 --image-size 64 "
TINY += "--max-steps-per-epoch 2 --device cpu --val-every 1 --n-folds 2 --pairs-per-batch 2"


@pytest.mark.slow
def test_device_script_and_cpu_assembly_make_a_full_fine_tune_checkpoint(datasets_dir, tmp_path):
    import sys

    from bench.bundle_data import IMAGENET_FILE, imagenet_weights

    bundle = tmp_path / "bundle"
    (bundle / "imagenet").mkdir(parents=True)
    (bundle / "imagenet" / IMAGENET_FILE).write_bytes(imagenet_weights())
    (bundle / DATASETS).symlink_to(datasets_dir)  # the readers' own layout, as the shards unpack it
    write_manifest(bundle, original_manifest(["isic2020", "isic2020_patients", "ham10000", "isic2017"]))
    out, run = tmp_path / "out", tmp_path / "run"
    env = {
        **os.environ, "BUNDLE": str(bundle), "OUT": str(out), "RUN": str(run), "PYTHON": sys.executable,
        "WORKERS": "1", "OMP_NUM_THREADS": "1", "EXTRA": TINY, "SKIP_FEED_CHECK": "1",
    }  # fmt: skip
    done = subprocess.run(
        ["bash", "training/train_gpu_v3.sh", "train"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    assert "final done" in (out / "train.log").read_text()
    oof = pd.read_csv(out / "cv" / "oof.csv")
    assert set(oof["dataset"]) == {"isic2020", "isic2020_patients", "ham10000", "isic2017"}
    assert set(oof["fold"]) == {0, 1}
    # what comes back from the device, laid out as the assembly reads it
    assembled_run = tmp_path / "v3"
    (assembled_run / "final").mkdir(parents=True)
    (out / "cv").rename(assembled_run / "cv")
    (out / "final").rename(assembled_run / "final" / "checkpoint")
    from training import assemble_default

    shipped = tmp_path / "shipped"
    args = ["--run", str(assembled_run), "--config", "training/recipes/v3_gpu.json", "--baselines", str(tmp_path)]
    assert (
        assemble_default.main([*args, "--cache", str(tmp_path / "no_cache"), "--out", str(shipped), "--n-boot", "20"])
        == 0
    )
    _, config = load_checkpoint(shipped)
    assert (config["model_id"], config["version"]) == ("melanoma-lite0-224-ft", "3.0.0")
    assert config.get("preprocess") is None  # original bytes: nothing re-encoded at inference
    assert config["training"]["config"]["balance_prevalence"] == 0.15
    assert config["training"]["config"]["batch_augment"] is True  # the recipe's GPU feed, run here on the CPU
    card = (shipped / "MODEL_CARD.md").read_text()
    assert "Fully fine-tuned from ImageNet weights" in card and "partial fine-tuning" not in card
    assert config["training"]["config"]["pair_loss_weight"] == 0.5  # the recipe's within-patient ranking loss
    assert "within-patient ranking loss (2 (melanoma, same-patient benign) pairs per batch" in card
    assert "within-patient ranking loss:" in (out / "train.log").read_text()  # pairs were found and drawn
    validation = json.loads((shipped / "validation.json").read_text())
    assert validation["metadata_sensitivity"] is None  # measured on the trunk cache only


def test_external_scores_are_written_in_the_trainers_format():
    records = pd.DataFrame({"image_id": ["a", "b"], "path": ["x", "y"], "target": [0, 1], "dataset": "derm7pt"})
    result = {"image_id": np.array(["a", "b"]), "logit": np.array([[0.1, 0.2], [1.0, 1.5]])}
    table = prediction_table(records, result)
    assert list(table.columns) == ["image_id", "target", "dataset", "logit_v0", "logit_v1"]  # no file paths
    assert table["logit_v1"].tolist() == [0.2, 1.5]
    with pytest.raises(ValueError, match="same order"):
        prediction_table(records.iloc[::-1], result)


def test_embeddings_saved_for_some_sources_leave_the_others_empty(tmp_path):
    from training.assemble_default import load_embeddings

    np.savez(tmp_path / "e.npz", image_id=np.array(["p1", "p2"]), embedding=np.eye(2, dtype=np.float16))
    emb = load_embeddings(tmp_path / "e.npz", pd.Series(["h1", "p2", "p1"]))
    assert np.isnan(emb[0]).all()
    assert emb[1:].tolist() == [[0.0, 1.0], [1.0, 0.0]]
