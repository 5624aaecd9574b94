"""The model card's account of how each tail was trained."""

from __future__ import annotations

from training.card_lines import network_lines, training_line

TAIL = {"epochs": 6, "samples_per_epoch": 4000, "seed": 42, "meta_dropout": 0.2, "batch_size": 64, "lr": 1e-3}


def test_a_tail_trained_with_the_within_patient_loss_says_so_and_a_plain_one_does_not():
    plain = training_line({}, {**TAIL, "pair_loss_weight": 0.0}, "blocks.5.2")
    pairs = training_line({}, {**TAIL, "epochs": 12, "pair_loss_weight": 0.5, "pairs_per_batch": 16}, "blocks.5.2")
    assert "ranking loss" not in plain and "ranking loss" not in training_line({}, TAIL, "blocks.5.2")
    assert "12 epochs" in pairs
    assert "within-patient ranking loss (16 (melanoma, same-patient benign) pairs per batch, weight 0.5)" in pairs


def test_an_ensemble_card_lists_each_tail_with_its_own_schedule():
    members = [
        {"config": TAIL, "cache": {"cut": "blocks.5.2"}},
        {
            "config": {**TAIL, "epochs": 12, "pair_loss_weight": 0.5, "pairs_per_batch": 16},
            "cache": {"cut": "blocks.5.2"},
        },
    ]
    config = {
        "network": {
            "architecture": "shared_trunk_ensemble",
            "backbone": "tf_efficientnet_lite0",
            "image_size": 224,
            "shared_trunk": "blocks.5.2",
            "members": 2,
        },
        "training": {"members": members},
    }
    lines = network_lines(config)
    tails = [line for line in lines if line.startswith("- Tail")]
    assert len(tails) == 2
    assert "6 epochs" in tails[0] and "ranking loss" not in tails[0]
    assert "12 epochs" in tails[1] and "ranking loss" in tails[1]
    assert not any("colour-normalised" in line for line in lines)  # nothing recorded: no input step claimed

    with_constancy = network_lines({**config, "preprocess": {"colour_constancy": {"power": 6.0}}})
    assert with_constancy[: len(lines)] == lines
    assert "Shades of Gray colour constancy, Minkowski p = 6" in with_constancy[-1]
