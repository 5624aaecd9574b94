"""training/evaluate_triage.py on SYNTHETIC out-of-fold files (clearly synthetic: no real predictions exist
yet). Real runs use the trainer's oof.csv + oof_embeddings.npz; see the module docstring."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from model.triage_settings import triage_settings
from training.evaluate_triage import EvaluationError, Grid, align, evaluate, load_inputs, main


def synthetic_oof(seed: int = 0, informative_ud: bool = True, patients: int = 120, folds: int = 5):
    """Patients with 1-9 lesions; each patient's benign lesions cluster around a patient centre. With
    `informative_ud`, melanomas are drawn away from that centre (ugly ducklings); otherwise they sit
    in the cluster like everything else. P(melanoma) is a noisy, only moderately good model score."""
    rng = np.random.default_rng(seed)
    rows, emb = [], []
    dim = 32
    for i in range(patients):
        n = int(rng.choice([1, 2, 3, 4, 5, 6, 9], p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.05, 0.05]))
        centre = rng.normal(size=dim)
        n_mel = int(rng.random() < 0.5) if n > 1 else int(rng.random() < 0.3)
        for j in range(n):
            y = int(j < n_mel)
            spread = 1.5 if (y and informative_ud) else 0.3
            emb.append(centre + spread * rng.normal(size=dim))
            logit = 1.0 * y - 0.5 + rng.normal(scale=1.0)
            rows.append(
                {
                    "image_id": f"SYN_{i:04d}_{j}",
                    "dataset": "synthetic",
                    "group_id": f"synthetic:P{i:04d}",
                    "fold": i % folds,
                    "target": y,
                    "p_melanoma": 1 / (1 + np.exp(-logit)),
                }
            )
    oof = pd.DataFrame(rows)
    # Other datasets' rows (no embeddings) are ignored, as in the trainer's real oof.csv.
    extra = pd.DataFrame(
        {
            "image_id": ["HAM_x"],
            "dataset": ["ham10000"],
            "group_id": ["ham10000:L1"],
            "fold": [0],
            "target": [1],
            "p_melanoma": [0.9],
        }
    )
    return pd.concat([oof, extra], ignore_index=True), oof.image_id.to_numpy(), np.asarray(emb, dtype=np.float16)


@pytest.fixture
def files(tmp_path):
    oof, ids, emb = synthetic_oof()
    oof.to_csv(tmp_path / "oof.csv", index=False)
    np.savez_compressed(tmp_path / "oof_embeddings.npz", image_id=ids.astype(str), embedding=emb)
    return tmp_path / "oof.csv", tmp_path / "oof_embeddings.npz"


def test_cli_writes_report_and_settings(files, tmp_path):
    oof, npz = files
    out = tmp_path / "reports" / "triage_evaluation.md"
    settings_out = tmp_path / "triage_settings.json"
    assert (
        main(
            [
                "--oof",
                str(oof),
                "--embeddings",
                str(npz),
                "--out",
                str(out),
                "--settings-out",
                str(settings_out),
                "--n-boot",
                "60",
                "--title",
                "SYNTHETIC triage evaluation",
            ]
        )
        == 0
    )
    report = out.read_text()
    assert report.startswith("# SYNTHETIC triage evaluation")
    for heading in (
        "## Conclusion",
        "## All patients",
        "## Patients with ≥ 3 lesions",
        "## Cross-fitting",
        "## Outlier flag",
        "## Deployed settings",
    ):
        assert heading in report
    for label in (
        "model only",
        "ugly duckling only (loo_cosine)",
        "ugly duckling only (lof)",
        "combined (cross-fitted)",
        "top-1 sensitivity",
        "pAUC",
        "lesions reviewed per melanoma",
    ):
        assert label in report
    settings = json.loads(settings_out.read_text())  # strict JSON (no NaN)
    assert settings["chosen_by"].startswith("training/evaluate_triage.py")
    merged = triage_settings({"triage": settings})  # what the checkpoint config will hold
    assert merged["from_checkpoint"] and merged["ud_method"] in ("loo_cosine", "lof")


def test_informative_ud_is_found_and_kept():
    oof, ids, emb = synthetic_oof(informative_ud=True)
    rows, matrix = align(oof, ids, emb.astype(np.float32))
    ev = evaluate(rows, matrix, n_boot=60)
    assert ev.data["rows"] == len(ids) and ev.data["patients"] == 120
    ud = ev.ud_subset["ugly duckling only (loo_cosine)"]["concordance"]["value"]
    assert ud > 0.75  # planted outliers: UD alone separates them
    combined = ev.all_patients["combined (cross-fitted)"]
    model = ev.all_patients["model only"]
    assert combined["concordance"]["value"] > model["concordance"]["value"]
    assert ev.settings["weight_ud"] > 0 and "helps" in ev.conclusion
    assert len(ev.folds) == 5 and all(f["weight_ud"] > 0 for f in ev.folds)


def test_uninformative_ud_says_so_and_deploys_weight_zero():
    oof, ids, emb = synthetic_oof(seed=3, informative_ud=False)
    rows, matrix = align(oof, ids, emb.astype(np.float32))
    ev = evaluate(rows, matrix, n_boot=60)
    assert ev.settings["weight_ud"] == 0.0
    assert "does not help" in ev.conclusion
    assert "weight 0" in ev.settings["chosen_by"]


def test_cross_fitting_never_looks_at_the_evaluated_fold():
    """Scrambling fold 0's labels must not change the weight chosen for fold 0."""
    oof, ids, emb = synthetic_oof(seed=1)
    rows, matrix = align(oof, ids, emb.astype(np.float32))
    grid = Grid(ud_methods=("loo_cosine",), weights=(0.0, 0.5, 1.0))
    first = evaluate(rows, matrix, grid, n_boot=0).folds[0]
    scrambled = rows.copy()
    in_fold = scrambled.fold == 0
    scrambled.loc[in_fold, "target"] = 1 - scrambled.loc[in_fold, "target"]
    second = evaluate(scrambled, matrix, grid, n_boot=0).folds[0]
    assert (first["ud_method"], first["weight_ud"]) == (second["ud_method"], second["weight_ud"])


def test_input_errors(tmp_path):
    oof, ids, emb = synthetic_oof()
    leaky = oof.copy()
    multi = leaky.group_id.value_counts().index[0]  # a patient with several lesions
    leaky.loc[leaky.index[leaky.group_id == multi][0], "fold"] += 1
    with pytest.raises(EvaluationError, match="not patient-grouped"):
        align(leaky, ids, emb)
    with pytest.raises(EvaluationError, match="no OOF row has an embedding"):
        align(oof, np.array(["nope"]), emb[:1])
    oof.drop(columns=["p_melanoma"]).to_csv(tmp_path / "bad.csv", index=False)
    np.savez(tmp_path / "e.npz", image_id=ids, embedding=emb)
    with pytest.raises(EvaluationError, match="missing column"):
        load_inputs(tmp_path / "bad.csv", tmp_path / "e.npz")
    assert (
        main(
            [
                "--oof",
                str(tmp_path / "none.csv"),
                "--embeddings",
                str(tmp_path / "e.npz"),
                "--out",
                str(tmp_path / "r.md"),
            ]
        )
        == 2
    )
