"""Per-domain alignment of cached trunk activations (training/domain_alignment.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from training.domain_alignment import align, align_domains, channel_stats, domains
from training.train_cached import CachedData


def _features(n: int, offset: float, scale: float, seed: int) -> torch.Tensor:
    """(n, 3 views, 4 channels, 2, 2) float16, channel c centred at offset * c and spread scale * (c + 1)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 4, 2, 2, generator=g)
    c = torch.arange(4, dtype=torch.float32)[None, None, :, None, None]
    return (x * scale * (c + 1) + offset * c).half()


def test_channel_stats_read_only_the_clean_views():
    x = torch.zeros(5, 3, 2, 1, 1, dtype=torch.float16)
    x[:, 2] = 100.0  # an augmented view: not what the deployed predictor sees
    x[:, 0, 1] = 2.0
    mean, sd = channel_stats(x, np.arange(5))
    assert mean.tolist() == pytest.approx([0.0, 1.0])
    assert sd.tolist() == pytest.approx([1e-3, 1.0 + 1e-3])


def test_align_maps_a_domain_onto_the_target_statistics():
    train = _features(400, offset=0.0, scale=1.0, seed=0)
    shifted = _features(300, offset=3.0, scale=2.5, seed=1)  # another camera: every channel moved and widened
    features = torch.cat([train, shifted])
    rows = np.arange(400, 700)
    target = channel_stats(features, np.arange(400))
    before = channel_stats(features, rows)
    assert (before[0] - target[0]).abs().max() > 2
    align(features, rows, before, target)
    after = channel_stats(features, rows)
    assert torch.allclose(after[0], target[0], atol=0.02)
    assert torch.allclose(after[1], target[1], rtol=0.02)
    assert torch.equal(features[:400], train)  # the other rows untouched


def test_domains_are_sources_or_each_held_out_patient():
    records = pd.DataFrame(
        {
            "dataset": ["ham10000", "ham10000", "isic2020_patients", "isic2020_patients"],
            "group_id": ["a", "b", "p1", "p2"],
        }
    )
    held = np.array([False, False, True, True])
    assert domains(records, held, "patient").tolist() == ["ham10000", "ham10000", "patient:p1", "patient:p2"]
    assert domains(records, held, "source").tolist() == ["ham10000"] * 2 + ["isic2020_patients"] * 2
    with pytest.raises(ValueError, match="test domain 'clinic'"):
        domains(records, held, "clinic")


def test_each_patient_is_aligned_on_its_own_images():
    a = _features(40, offset=0.0, scale=1.0, seed=2)
    p1 = _features(20, offset=2.0, scale=1.0, seed=3)
    p2 = _features(20, offset=-2.0, scale=3.0, seed=4)
    records = pd.DataFrame(
        {"dataset": ["ham10000"] * 40 + ["isic2020_patients"] * 40, "group_id": ["h"] * 40 + ["p1"] * 20 + ["p2"] * 20}
    )
    data = CachedData(records, torch.cat([a, p1, p2]), {})
    held = (records["dataset"] == "isic2020_patients").to_numpy()
    align_domains(data, np.flatnonzero(~held), domains(records, held, "patient"))
    target = channel_stats(data.features, np.arange(40))
    for rows in (np.arange(40, 60), np.arange(60, 80)):
        mean, sd = channel_stats(data.features, rows)
        assert torch.allclose(mean, target[0], atol=0.03) and torch.allclose(sd, target[1], rtol=0.03)


@pytest.mark.slow
def test_tiny_alignment_run_end_to_end(datasets_dir, tmp_path):
    """Real images: a tiny cache, the tail trained without the held-out population, its figures written."""
    from training import domain_alignment, trunk_cache

    cache = tmp_path / "cache"
    args = ["--out", str(cache), "--limit-per-dataset", "16", "--image-size", "96", "--views", "3"]
    assert trunk_cache.main([*args, "--datasets", "ham10000", "isic2017", "isic2020_patients"]) == 0
    out = tmp_path / "run"
    common = ["--cache", str(cache), "--datasets", "ham10000", "isic2017", "isic2020_patients", "--out", str(out)]
    common += ["--epochs", "1", "--samples-per-epoch", "32", "--batch-size", "16", "--n-boot", "20"]
    assert domain_alignment.main(["--test-domain", "patient", *common]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["n"] == 16 and result["left_out"] == ["isic2020_patients"]
    oof = pd.read_csv(out / "oof.csv")
    assert result["n_melanoma"] == int(oof["target"].sum())
    assert {"share_before", "top5", "within_auc"} <= set(result["whole_patient"])
    assert set(oof["dataset"]) == {"isic2020_patients"} and oof[["logit_v0", "logit_v1"]].notna().all().all()


def test_external_mode_refuses_a_training_source(tmp_path):
    from training import domain_alignment

    with pytest.raises(SystemExit, match="ham10000: not an external-only source"):
        domain_alignment.main(["--external", "ham10000", "--out", str(tmp_path)])


@pytest.mark.slow
def test_tiny_external_run_scores_the_external_source_three_ways(datasets_dir, tmp_path):
    """Real images: reference, test-time aligned and aligned-in-training tails scored on derm7pt."""
    from training import domain_alignment, trunk_cache

    cache = tmp_path / "cache"
    args = ["--out", str(cache), "--limit-per-dataset", "16", "--image-size", "96", "--views", "3"]
    assert trunk_cache.main([*args, "--datasets", "ham10000", "isic2017", "derm7pt"]) == 0
    out = tmp_path / "run"
    common = ["--cache", str(cache), "--datasets", "ham10000", "isic2017", "--out", str(out)]
    common += ["--epochs", "1", "--samples-per-epoch", "32", "--batch-size", "16", "--n-boot", "20"]
    assert domain_alignment.main(["--external", "derm7pt", *common]) == 0
    result = json.loads((out / "result.json").read_text())
    frames = {name: pd.read_csv(out / name / "oof.csv") for name in ("reference", "test_time", "aligned")}
    for name, frame in frames.items():
        assert set(frame["dataset"]) == {"derm7pt"} and len(frame) == 16
        assert result[name]["n"] == 16 and result[name]["n_melanoma"] == int(frame["target"].sum())
    # the same reference tail, so test-time alignment alone moved its logits
    assert frames["reference"]["image_id"].tolist() == frames["test_time"]["image_id"].tolist()
    assert not np.allclose(frames["reference"]["logit_v0"], frames["test_time"]["logit_v0"])
