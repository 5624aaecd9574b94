"""Images of one lesion listed under two names: they must share a fold, or one copy is scored by a model
trained on the other.

``near_duplicates.csv`` lists the pairs found so far (a thumbnail comparison over every training source,
each pair then confirmed by eye; ``python -m training.find_near_duplicates`` lists new candidates). A lower
bound: a re-crop or a strong colour change escapes a thumbnail comparison.

``merge_duplicate_groups`` gives both images of every listed pair one group (union over chains of pairs), so
the patient-grouped folds keep them together and a leave-one-source-out run can keep a held-out image's
copy in another source out of training.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

PAIRS_CSV = Path(__file__).with_name("near_duplicates.csv")


def load_pairs(path: Path = PAIRS_CSV) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [(row["image_a"].strip(), row["image_b"].strip()) for row in csv.DictReader(handle)]


def merge_duplicate_groups(records: pd.DataFrame, pairs: Iterable[tuple[str, str]] | None = None) -> pd.DataFrame:
    """``records`` with the groups of every listed pair whose two images are both present merged into one
    (chains of pairs, across sources too, end in one group). The merged group keeps the id of its larger
    part, so an ISIC 2017 copy joins the ISIC 2020 patient it came from, not the other way round; ties go to
    the id that sorts first. A copy; rows and their order unchanged."""
    pairs = load_pairs() if pairs is None else list(pairs)
    group_of = dict(zip(records["image_id"].astype(str), records["group_id"].astype(str), strict=True))
    size = records["group_id"].astype(str).value_counts().to_dict()
    parent: dict[str, str] = {}

    def root(group: str) -> str:
        while parent.get(group, group) != group:
            group = parent[group]
        return group

    for a, b in pairs:
        if a in group_of and b in group_of:
            ra, rb = root(group_of[a]), root(group_of[b])
            if ra != rb:
                keep, merged_in = sorted((ra, rb), key=lambda group: (-size[group], group))
                parent[merged_in] = keep
                size[keep] += size[merged_in]
    if not parent:
        return records.copy()
    merged = records.copy()
    merged["group_id"] = merged["group_id"].astype(str).map(root)
    return merged
