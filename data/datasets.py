"""The datasets the project knows by name (a registry of readers), where they live, and how several are
combined into one table: one population's copies kept once, groups namespaced by population, known
near-duplicate images in one group. The readers themselves are data/readers.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from data import settings
from data.errors import DatasetError
from data.near_duplicates import merge_duplicate_groups
from data.readers import read_derm7pt, read_ham10000, read_isic2017, read_kaggle


def shared_root() -> Path:
    """The read-only data folder: $TRIAGE_SHARED_DIR, else ../shared beside the repo."""
    return settings.environment().shared_dir


def datasets_root() -> Path:
    return shared_root() / "datasets"


DatasetReader = Callable[[Path], pd.DataFrame]
# A dataset's name is its folder under datasets_root().
DATASETS: dict[str, DatasetReader] = {
    "isic2020": lambda root: read_kaggle(root / "train.csv", root / "train", "isic2020"),
    "isic2020_patients": lambda root: read_kaggle(root / "train.csv", root / "train", "isic2020_patients"),
    "ham10000": read_ham10000,
    "isic2017": read_isic2017,
    "derm7pt": read_derm7pt,
}
# Never trained or tuned on: the external test of generalisation to another source and camera.
EXTERNAL_ONLY = frozenset({"derm7pt"})
# Datasets that are copies of one population: their patients share one group namespace (so a patient never
# sits in two folds) and an image listed in both is kept once, from the first dataset named here. The
# whole-patient copy wins, so a patient's lesions all come from one pipeline.
SAME_POPULATION: dict[str, tuple[str, ...]] = {"isic2020": ("isic2020_patients", "isic2020")}


def load_dataset(name: str, root: Path | None = None) -> pd.DataFrame:
    """A registered dataset, or the user's own Kaggle-layout CSV (`…/train.csv` with images in `…/train/`)."""
    if name.lower().endswith(".csv"):
        csv = Path(name)
        return read_kaggle(csv, csv.with_suffix(""), dataset=csv.parent.name or "user")
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name](Path(root) if root else datasets_root() / name)


def population_of(dataset: str) -> str:
    """The population a dataset samples (isic2020_patients -> isic2020); itself when it has no sibling."""
    return next((pop for pop, members in SAME_POPULATION.items() if dataset in members), dataset)


def deduplicate_copies(frames: Iterable[pd.DataFrame]) -> list[pd.DataFrame]:
    """Drop the second copy of an image listed by two datasets of one population (SAME_POPULATION order)."""
    frames = list(frames)
    by_name = {str(f["dataset"].iloc[0]): i for i, f in enumerate(frames) if len(f)}
    for members in SAME_POPULATION.values():
        present = [m for m in members if m in by_name]
        kept: set[str] = set()
        for name in present:
            i = by_name[name]
            frame = frames[i]
            frames[i] = frame[~frame["image_id"].isin(kept)].reset_index(drop=True)
            kept |= set(frame["image_id"])
    return frames


def combine(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate datasets; groups are namespaced by population so ids never collide across sources and a
    patient seen by two datasets of one population stays one group; the known near-duplicate images (one
    lesion under two names, data/near_duplicates.csv) share a group too."""
    frames = deduplicate_copies(frames)
    combined = pd.concat(frames, ignore_index=True)
    population = combined["dataset"].astype(str).map(population_of)
    combined["group_id"] = population + ":" + combined["group_id"].astype(str)
    dup = combined.loc[combined["image_id"].duplicated(), "image_id"].unique().tolist()
    if dup:
        raise DatasetError(
            f"the same image id appears in more than one dataset ({len(dup)}, first: {', '.join(dup[:5])})"
        )
    return merge_duplicate_groups(combined.reset_index(drop=True))


def load_datasets(names: Iterable[str], root: Path | None = None) -> pd.DataFrame:
    """Load and combine registered datasets from `root` (default: ../shared/datasets)."""
    base = Path(root) if root else datasets_root()
    return combine(load_dataset(n, base / n) if n in DATASETS else load_dataset(n) for n in names)
