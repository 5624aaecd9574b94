"""Merging fold-by-fold cross-validation runs: the merged folder is what `--fold all` writes (same
out-of-fold logits and embeddings, image by image), and parts that do not make one run are refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from training import merge_folds, train_cached, trunk_cache
from training.assemble_default import load_embeddings


@pytest.fixture(scope="module")
def tiny_cache(datasets_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    args = ["--out", str(cache), "--limit-per-dataset", "12", "--image-size", "96", "--views", "3"]
    assert trunk_cache.main([*args, "--datasets", "ham10000", "isic2020_patients"]) == 0
    return cache


def train(cache, out, fold: str, *extra: str) -> None:
    args = ["--cache", str(cache), "--datasets", "ham10000", "isic2020_patients", "--epochs", "1"]
    args += ["--samples-per-epoch", "32", "--batch-size", "16", "--n-folds", "2", "--fold", fold, "--out", str(out)]
    assert train_cached.main([*args, *extra]) == 0


def test_folds_trained_apart_and_merged_equal_the_whole_cv_run(tiny_cache, tmp_path):
    train(tiny_cache, tmp_path / "all", "all")
    for k in (1, 0):  # any order
        train(tiny_cache, tmp_path / f"part{k}", str(k))
    parts = [str(tmp_path / "part1"), str(tmp_path / "part0")]
    assert merge_folds.main(["--parts", *parts, "--out", str(tmp_path / "merged")]) == 0

    whole = pd.read_csv(tmp_path / "all" / "oof.csv", dtype={"image_id": str})
    merged = pd.read_csv(tmp_path / "merged" / "oof.csv", dtype={"image_id": str})
    assert list(merged.columns) == list(whole.columns) and len(merged) == len(whole)
    pd.testing.assert_frame_equal(merged, whole, check_exact=False, atol=1e-5)
    np.testing.assert_allclose(
        load_embeddings(tmp_path / "merged" / "oof_embeddings.npz", whole["image_id"]),
        load_embeddings(tmp_path / "all" / "oof_embeddings.npz", whole["image_id"]),
        atol=1e-3,
    )
    summary = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert [f["name"] for f in summary["folds"]] == ["fold0", "fold1"]
    assert summary["config"]["fold"] == "all" and summary["merged_from"] == parts


def test_parts_that_are_not_one_whole_run_are_refused_with_the_reason(tiny_cache, tmp_path, capsys):
    train(tiny_cache, tmp_path / "part0", "0")
    train(tiny_cache, tmp_path / "other_seed", "1", "--seed", "7")
    cases = {
        ("part0",): "not each of ['fold0', 'fold1'] once",
        ("part0", "part0"): "not each of",
        ("part0", "other_seed"): "settings ['seed'] differ",
        ("part0", "missing"): "no summary.json",
    }
    for names, reason in cases.items():
        parts = [str(tmp_path / n) for n in names]
        assert merge_folds.main(["--parts", *parts, "--out", str(tmp_path / "merged")]) == 2
        assert reason in capsys.readouterr().err
    assert not (tmp_path / "merged").exists()  # nothing half-written
