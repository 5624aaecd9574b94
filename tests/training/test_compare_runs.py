"""Comparing training runs on their out-of-fold predictions: paired per source and on whole patients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training import compare_runs


def write_run(folder, logits: np.ndarray, targets: np.ndarray, datasets: list[str], groups: list[str]):
    folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "image_id": [f"img{i}" for i in range(len(logits))],
            "group_id": groups,
            "dataset": datasets,
            "target": targets,
            "logit_v0": logits,
            "logit_v1": logits,
            "p_raw": 1 / (1 + np.exp(-logits)),
            "fold": "fold0",
        }
    ).to_csv(folder / "oof.csv", index=False)
    return str(folder)


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(0)
    # 40 complete patients of 6 lesions (melanoma at position 0 in every second patient) + 120 HAM images
    n_pat, per = 40, 6
    target_p = np.array([(i % per == 0) and (i // per) % 2 == 0 for i in range(n_pat * per)], dtype=int)
    groups_p = [f"isic2020_patients:p{i // per}" for i in range(n_pat * per)]
    target_h = (np.arange(120) % 4 == 0).astype(int)
    groups_h = [f"ham10000:h{i}" for i in range(120)]
    targets = np.concatenate([target_p, target_h])
    datasets = ["isic2020_patients"] * len(target_p) + ["ham10000"] * 120
    groups = groups_p + groups_h
    perfect = targets * 5.0 + rng.normal(0, 0.1, len(targets))
    noise = rng.normal(0, 1, len(targets))
    return {
        "perfect": write_run(tmp_path / "perfect", perfect, targets, datasets, groups),
        "noise": write_run(tmp_path / "noise", noise, targets, datasets, groups),
        "targets": targets,
        "perfect_logits": perfect,
        "noise_logits": noise,
    }


def test_a_perfect_ranker_beats_noise_per_source_and_on_whole_patients(runs):
    result = compare_runs.compare(compare_runs.load_run(runs["noise"]), compare_runs.load_run(runs["perfect"]), 200)
    assert set(result["sources"]) == {"ham10000", "isic2020_patients"}
    for row in result["sources"].values():
        assert row["a"] == pytest.approx(1.0)
        assert row["diff"] > 0.2 and row["ci"][0] > 0
    share = result["ranking"]["share_before"]
    assert share["a"] == 0.0 and share["diff"] < 0 and share["ci"][1] < 0
    assert result["ranking"]["top5"]["a"] == 1.0
    # comparing a run with itself: no difference, a zero-width interval
    same = compare_runs.compare(compare_runs.load_run(runs["noise"]), compare_runs.load_run(runs["noise"]), 50)
    assert all(r["diff"] == 0 and r["ci"] == [0, 0] and r["detectable"] == 0 for r in same["sources"].values())


def test_each_difference_says_what_it_could_have_detected(runs):
    result = compare_runs.compare(compare_runs.load_run(runs["noise"]), compare_runs.load_run(runs["perfect"]), 200)
    for row in [*result["sources"].values(), *result["ranking"].values()]:
        width = row["ci"][1] - row["ci"][0]
        assert row["detectable"] == pytest.approx(width / 3.92 * 2.80, rel=1e-3)
    # fewer patients, wider interval, larger detectable difference: the same runs on a quarter of the patients
    few = compare_runs.load_run(runs["noise"])
    few = few[few["group_id"].str.extract(r"(\d+)$")[0].astype(int) < 10]
    small = compare_runs.compare(few, compare_runs.load_run(runs["perfect"]), 200)
    assert small["ranking"]["share_before"]["detectable"] > result["ranking"]["share_before"]["detectable"]


def test_an_ensemble_averages_the_runs_logits_image_by_image(runs):
    ensemble = compare_runs.load_run(f"{runs['perfect']}+{runs['noise']}")
    expected = (runs["perfect_logits"] + runs["noise_logits"]) / 2
    assert np.allclose(ensemble.sort_values("image_id", key=lambda s: s.str[3:].astype(int))["score"], expected)


def test_a_folder_without_predictions_is_refused_by_name(tmp_path, runs):
    with pytest.raises(SystemExit, match="empty: no oof.csv"):
        compare_runs.load_run(f"{runs['noise']}+{tmp_path / 'empty'}")


def test_the_report_lists_every_candidate_and_measure(runs, tmp_path):
    out = tmp_path / "report.md"
    assert (
        compare_runs.main(
            ["--reference", runs["noise"], "--candidate", runs["perfect"], "--out", str(out), "--n-boot", "50"]
        )
        == 0
    )
    text = out.read_text()
    assert f"`{runs['perfect']}`" in text
    for measure in ("AUC ham10000", "AUC isic2020_patients", "ranking share_before", "ranking top5"):
        assert measure in text
    assert "detectable (80% power)" in text
