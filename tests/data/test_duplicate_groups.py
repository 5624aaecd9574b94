"""One lesion under two names shares a group, so the folds keep its copies together."""

from __future__ import annotations

import pandas as pd
import pytest

from data.datasets import load_datasets
from data.folds import assign_folds
from data.near_duplicates import load_pairs, merge_duplicate_groups


def _records(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["image_id", "group_id"]).assign(target=0)


def test_pairs_merge_their_groups_and_chains_end_in_one_group():
    records = _records([("a", "g1"), ("b", "g2"), ("c", "g3"), ("d", "g4"), ("e", "g5")])
    merged = merge_duplicate_groups(records, [("a", "b"), ("b", "c"), ("x", "e")])  # x is not here: ignored
    assert merged["group_id"].tolist() == ["g1", "g1", "g1", "g4", "g5"]
    assert records["group_id"].tolist() == ["g1", "g2", "g3", "g4", "g5"]  # a copy: the input is unchanged


def test_the_merged_group_keeps_the_id_of_its_larger_part():
    # An ISIC 2017 copy joins the ISIC 2020 patient it came from, not the other way round.
    records = _records([("p1", "isic2020:IP_1"), ("p2", "isic2020:IP_1"), ("copy", "isic2017:ISIC_9")])
    merged = merge_duplicate_groups(records, [("copy", "p2")])
    assert merged["group_id"].tolist() == ["isic2020:IP_1"] * 3


def test_no_listed_pair_present_changes_nothing():
    records = _records([("a", "g1"), ("b", "g2")])
    assert merge_duplicate_groups(records, [("x", "y")]).equals(records)


@pytest.fixture(scope="module")
def training_records() -> pd.DataFrame:
    return load_datasets(["ham10000", "isic2017", "isic2020", "isic2020_patients"])


def test_every_listed_image_is_a_training_image(training_records):
    listed = {image for pair in load_pairs() for image in pair}
    assert listed <= set(training_records["image_id"])


def test_the_folds_keep_every_listed_pair_together(training_records):
    folds = dict(zip(training_records["image_id"], assign_folds(training_records, 5, 42), strict=True))
    groups = dict(zip(training_records["image_id"], training_records["group_id"], strict=True))
    for a, b in load_pairs():
        assert groups[a] == groups[b], (a, b)
        assert folds[a] == folds[b], (a, b)
