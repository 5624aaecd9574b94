"""Leave-one-source-out evidence: members averaged as the ensemble does, what the runs never saw, whole-patient
figures for the complete patients, and an entry written into a checkpoint's evidence and card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.loso_evidence import loso_entry, member_mean, never_seen, update_checkpoint

SHIPPED = Path(__file__).resolve().parents[2] / "model" / "weights" / "default"


def _patients(shift: float = 0.0) -> pd.DataFrame:
    """Three complete patients of four lesions, one melanoma each (ranked 1st, 2nd and 4th)."""
    rng = np.random.default_rng(0)
    rows = []
    for p, first in enumerate((1, 2, 4)):
        logits = [3.0, 2.0, 1.0, 0.0]
        for lesion in range(4):
            rows.append((f"P{p}L{lesion}", f"isic2020:P{p}", lesion == first - 1, logits[lesion] + shift))
    frame = pd.DataFrame(rows, columns=["image_id", "group_id", "target", "logit"])
    frame["target"] = frame["target"].astype(int)
    frame["dataset"] = "isic2020_patients"
    noise = rng.normal(0, 0.01, len(frame))
    return frame.assign(logit_v0=frame["logit"] + noise, logit_v1=frame["logit"] - noise).drop(columns="logit")


def test_members_are_averaged_view_by_view_and_must_score_the_same_images():
    a, b = _patients(), _patients(shift=2.0)
    mean = member_mean([a, b])
    assert np.allclose(mean["logit_v0"], a["logit_v0"] + 1.0) and np.allclose(mean["logit_v1"], a["logit_v1"] + 1.0)
    with pytest.raises(ValueError, match="different images"):
        member_mean([a, b.iloc[::-1]])


def test_never_seen_joins_what_was_left_out_and_what_was_not_given():
    left_out = {
        "held_out": ["isic2020_patients"],
        "config": {"datasets": ["ham10000", "isic2017", "isic2020_patients"]},
    }
    assert never_seen([left_out], "isic2020_patients") == ["isic2020", "isic2020_patients"]
    assert never_seen([{"config": {}}], "ham10000") == ["ham10000"]  # an older run: the source alone


def test_the_complete_patients_get_their_whole_patient_ranking():
    entry = loso_entry(_patients(), ["isic2020", "isic2020_patients"], n_boot=50)
    assert (entry["n"], entry["n_melanoma"], entry["held_out"]) == (12, 3, ["isic2020", "isic2020_patients"])
    # first melanoma at ranks 1, 2 and 4 of 4: shares 0, 1/3 and 1 of the other lesions reviewed before it
    assert entry["whole_patient"]["share_before"]["value"] == pytest.approx((0 + 1 / 3 + 1) / 3)
    assert entry["whole_patient"]["top5"]["value"] == 1.0
    assert "whole_patient" not in loso_entry(_patients().assign(dataset="ham10000"), ["ham10000"], n_boot=50)


def test_an_entry_replaces_the_earlier_one_in_the_evidence_and_the_card(tmp_path):
    for name in ("config.json", "validation.json"):
        (tmp_path / name).write_text((SHIPPED / name).read_text())
    validation = json.loads((tmp_path / "validation.json").read_text())
    validation["leave_one_source_out"]["isic2020_patients"] = {"auc": 0.77, "n": 12, "n_melanoma": 3, "auc_ci": []}
    (tmp_path / "validation.json").write_text(json.dumps(validation))
    members = []
    for k, shift in enumerate((0.0, 1.0)):
        member = tmp_path / f"tail{k}"
        member.mkdir()
        _patients(shift).to_csv(member / "oof.csv", index=False)
        summary = {"held_out": ["isic2020_patients"], "config": {"datasets": ["ham10000", "isic2017"]}}
        (member / "summary.json").write_text(json.dumps(summary))
        members.append(member)
    entry = update_checkpoint(tmp_path, "isic2020_patients", members, n_boot=50)
    assert entry["replaces"] == {"auc": 0.77, "auc_ci": [], "held_out": ["isic2020_patients"]}
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert (
        "- isic2020_patients: trained without isic2020, isic2020_patients; replaces an earlier run with isic2020"
        in card
    )
    assert "isic2020_patients, whole patients, scored by that run: share reviewed before the first melanoma" in card


def test_a_rerun_of_the_same_design_keeps_naming_the_run_it_replaced(tmp_path):
    test_an_entry_replaces_the_earlier_one_in_the_evidence_and_the_card(tmp_path)
    members = [tmp_path / "tail0", tmp_path / "tail1"]
    entry = update_checkpoint(tmp_path, "isic2020_patients", members, n_boot=50)
    assert entry["replaces"]["auc"] == 0.77  # not the first population-out run, which had the same design
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert "replaces an earlier run with isic2020 in training (AUC 0.770)" in card
