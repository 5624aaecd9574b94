"""Near-duplicate images in training: candidates found by thumbnail, their effect on out-of-fold figures
reported, and leave-one-source-out runs that really leave the source (and its copies) out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from training import near_duplicates
from training.model_card import render_card
from training.train_cached import source_out_training

SHIPPED = Path(__file__).resolve().parents[2] / "model" / "weights" / "default"


def _shipped(name: str) -> dict:
    return json.loads((SHIPPED / name).read_text())


def _texture(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((96, 96), Image.Resampling.BICUBIC)


def test_a_re_uploaded_copy_with_other_colours_is_a_candidate_and_another_lesion_is_not(tmp_path):
    original = _texture(1)
    recoloured = Image.fromarray(np.clip(np.asarray(original) * 0.8 + 30, 0, 255).astype(np.uint8))
    paths = {}
    for name, image in {"a": original, "a_again": recoloured, "b": _texture(2), "c": _texture(3)}.items():
        paths[name] = tmp_path / f"{name}.jpg"
        image.save(paths[name], quality=90)
    records = pd.DataFrame(
        {
            "image_id": list(paths),
            "image_path": [str(p) for p in paths.values()],
            "dataset": ["isic2017"] * 4,
            "group_id": ["g1", "g2", "g3", "g4"],
            "target": [1, 1, 0, 0],
        }
    )
    found = near_duplicates.find(records)
    assert found[["image_a", "image_b"]].values.tolist() == [["a", "a_again"]]
    # Once they share a group (listed), they are no longer a candidate.
    assert near_duplicates.find(records.assign(group_id=["g1", "g1", "g3", "g4"])).empty


def _oof() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image_id": ["m1", "m1_copy", "m2", "b1", "b2", "b3", "h1"],
            "dataset": ["isic2017"] * 6 + ["ham10000"],
            "target": [1, 1, 1, 0, 0, 0, 0],
            "fold": ["fold0", "fold1", "fold2", "fold0", "fold1", "fold2", "fold0"],
            "logit_v0": [2.0, 2.0, -1.0, 0.0, -2.0, -3.0, 0.0],
            "logit_v1": [2.0, 2.0, -1.0, 0.0, -2.0, -3.0, 0.0],
        }
    )


def test_the_report_counts_split_pairs_and_scores_each_source_without_both_copies():
    result = near_duplicates.report(_oof(), [("m1", "m1_copy"), ("x", "y")])
    assert (result["pairs"], result["split_across_folds"], result["melanoma_pairs_split"]) == (1, 1, 1)
    row = result["by_dataset"]["isic2017"]
    assert row["dropped"] == 2
    assert row["auc"] > row["auc_without"]  # the copy ranked its twin's melanoma high
    assert row["auc_without"] == pytest.approx(2 / 3)  # m2 against b1, b2, b3, without the pair
    assert "ham10000" not in result["by_dataset"]  # nothing dropped there


def test_the_report_scores_as_the_model_deploys_not_by_the_mean_logit():
    # b0's views disagree (6, -2): mean logit 2 but mean probability 0.56; m0 (1, 1): mean logit 1, probability 0.73
    oof = pd.DataFrame(
        {
            "image_id": ["m0", "b0", "c1", "c2"],
            "dataset": ["isic2017"] * 4,
            "target": [1, 0, 0, 0],
            "fold": ["fold0", "fold1", "fold0", "fold1"],
            "logit_v0": [1.0, 6.0, -5.0, -5.0],
            "logit_v1": [1.0, -2.0, -5.0, -5.0],
        }
    )
    row = near_duplicates.report(oof, [("c1", "c2")])["by_dataset"]["isic2017"]
    assert row["auc"] == 1.0  # by the mean logit b0 would outrank the melanoma (AUC 0.5)
    # the checkpoint's calibration is applied to each view first: logits (2, -2) average 0.5, above m0's 0.38
    shifted = near_duplicates.report(oof, [("c1", "c2")], scale=0.5, bias=-1.0)["by_dataset"]["isic2017"]
    assert shifted["auc_without"] == 0.0


def test_the_report_updates_a_checkpoints_evidence_and_its_card(tmp_path):
    config = _shipped("config.json")
    validation = _shipped("validation.json")
    validation.pop("near_duplicates", None)
    (tmp_path / "cv").mkdir()
    _oof().to_csv(tmp_path / "cv" / "oof.csv", index=False)
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "validation.json").write_text(json.dumps(validation))
    near_duplicates.update_checkpoint(tmp_path, [("m1", "m1_copy")])
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert "**Near-duplicate images**" in card and "1 pairs, 1 of them in different folds" in card
    assert json.loads((tmp_path / "validation.json").read_text())["near_duplicates"]["pairs"] == 1


def test_the_shipped_card_is_what_its_evidence_renders():
    config = _shipped("config.json")
    validation = _shipped("validation.json")
    assert (SHIPPED / "MODEL_CARD.md").read_text() == render_card(config, validation)


def test_leaving_out_a_source_leaves_out_its_population_and_its_copies_elsewhere():
    records = pd.DataFrame(
        {
            "image_id": ["p1", "p2", "s1", "s2", "h1", "k1", "k_copy"],
            "dataset": [*["isic2020_patients"] * 2, "isic2020", "isic2020", "ham10000", "isic2017", "isic2020"],
            "group_id": [
                "isic2020:IP_1",
                "isic2020:IP_1",
                "isic2020:IP_2",
                "isic2020:IP_3",
                "ham10000:L1",
                *["isic2017:K"] * 2,
            ],
        }
    )
    train, held_out = source_out_training(records, "isic2020_patients")
    assert held_out == ["isic2020", "isic2020_patients"]
    assert records.loc[train, "image_id"].tolist() == ["h1", "k1"]
    train, held_out = source_out_training(records, "isic2017")
    assert held_out == ["isic2017"]
    assert records.loc[train, "image_id"].tolist() == ["p1", "p2", "s1", "s2", "h1"]  # k_copy is k1's copy


def test_the_card_says_when_a_left_out_source_was_not_a_new_source():
    validation = _shipped("validation.json")
    config = _shipped("config.json")
    assert "not a new source" not in render_card(config, validation)  # v2.3.0's row was rerun population-out
    # A run that left out only the source (as v2.3.0's first run did, with the ISIC 2020 subset in training):
    validation["leave_one_source_out"]["isic2020_patients"] = {"auc": 0.773, "n": 1984, "n_melanoma": 25}
    card = render_card(config, validation)
    assert "| isic2020_patients (not a new source: isic2020, the same population, stayed in training) |" in card
    assert "| isic2020_patients | 1984 (25) | 0.796 (0.701–0.879) | 0.52 (13/25) |" in card  # melanomas above
