"""The trainer's data: records with patient-grouped folds, and loaders whose augmentation and order depend
neither on the number of processes nor on the number of workers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from data.dataset import LesionDataset
from data.folds import assign_folds
from data.readers import load_datasets
from training import distributed as D
from training.train_config import TrainConfig


def load_records(cfg: TrainConfig) -> pd.DataFrame:
    records = load_datasets(cfg.datasets, Path(cfg.data_root) if cfg.data_root else None)
    if cfg.limit_per_dataset:
        # A stratified, deterministic subset per dataset (whole groups kept together via fold assignment).
        parts = []
        for _, part in records.groupby("dataset", sort=False):
            parts.append(
                part.sample(frac=1.0, random_state=cfg.seed)
                .groupby("target", group_keys=False)
                .head(cfg.limit_per_dataset // 2)
            )
        records = pd.concat(parts).sort_index()
    records = records.reset_index(drop=True)
    records["fold"] = assign_folds(records, cfg.n_folds, cfg.seed)
    return records


def data_summary(records: pd.DataFrame) -> dict:
    by = records.groupby("dataset")
    return {
        name: {
            "images": len(g),
            "melanoma": int((g["target"] == 1).sum()),
            "groups": int(g["group_id"].nunique()),
        }
        for name, g in by
    }


class SeededAugment(Dataset):
    """Augmentation randomness keyed by (seed, epoch, sample), so results depend neither on the number of
    processes nor on the number of workers: DDP on N ranks sees the same augmented images as one process.

    The epoch travels inside the index (EpochTagged below), so persistent workers need no notification.
    """

    def __init__(self, base: LesionDataset, seed: int):
        self.base = base
        self.seed = seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, tagged: int):
        epoch, index = divmod(tagged, len(self.base))
        torch.manual_seed((self.seed * 1_000_003 + epoch * 100_003 + index) % (2**63))
        item = self.base[index]
        item["index"] = torch.tensor(index)
        return item


class EpochTagged(Sampler):
    """Wraps a sampler: yields epoch * n + index, and forwards set_epoch."""

    def __init__(self, sampler: DistributedSampler, n: int):
        self.sampler, self.n, self.epoch = sampler, n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        return (self.epoch * self.n + i for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def loader(dataset: Dataset, cfg: TrainConfig, ctx: D.DistContext, train: bool) -> DataLoader:
    # A DistributedSampler even for one process: the global order of samples is then the same for any
    # number of ranks, so N ranks × batch b reproduce one process × batch N·b.
    sampler = DistributedSampler(dataset, ctx.world_size, ctx.rank, shuffle=train, seed=cfg.seed, drop_last=train)
    if train:
        sampler = EpochTagged(sampler, len(dataset))
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.workers,
        pin_memory=ctx.device.type == "cuda",
        drop_last=train,
        persistent_workers=cfg.workers > 0,
        # Its own generator: creating an iterator must not consume the global RNG (dropout), or a resumed
        # run would drift from an uninterrupted one.
        generator=torch.Generator().manual_seed(cfg.seed),
        prefetch_factor=4 if cfg.workers else None,
    )
