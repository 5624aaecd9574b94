"""The trainer's data: records with patient-grouped folds, and loaders whose augmentation and order depend
neither on the number of processes nor on the number of workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from data.dataset import LesionDataset
from data.datasets import EXTERNAL_ONLY, load_datasets
from data.folds import assign_folds
from training import distributed as D
from training.balancing import BalancedDistributedSampler, balanced_draw_weights, metadata_dropout
from training.batch_augment import BatchAugment
from training.train_config import TrainConfig
from training.within_patient import pair_draw_weights


def load_records(cfg: TrainConfig) -> pd.DataFrame:
    external = sorted(set(cfg.datasets) & EXTERNAL_ONLY)
    if external:
        raise ValueError(f"{', '.join(external)} is external test data only: list it under external, not datasets")
    records = limited(load_datasets(cfg.datasets, Path(cfg.data_root) if cfg.data_root else None), cfg)
    records["fold"] = assign_folds(records, cfg.n_folds, cfg.seed)
    return records


def limited(records: pd.DataFrame, cfg: TrainConfig) -> pd.DataFrame:
    """With `limit_per_dataset` (tests, smoke runs): a stratified, deterministic subset of each dataset
    (whole groups are kept together later, by the fold assignment)."""
    if cfg.limit_per_dataset:
        parts = []
        for _, part in records.groupby("dataset", sort=False):
            parts.append(
                part.sample(frac=1.0, random_state=cfg.seed)
                .groupby("target", group_keys=False)
                .head(cfg.limit_per_dataset // 2)
            )
        records = pd.concat(parts).sort_index()
    return records.reset_index(drop=True)


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
    Metadata dropout (training/balancing.py) is drawn from the same key.
    """

    def __init__(self, base: LesionDataset, seed: int, meta_dropout: float = 0.0, meta_names: list[str] | None = None):
        if meta_dropout > 0 and not meta_names:
            raise ValueError("metadata dropout needs the encoder's column names")
        self.base = base
        self.seed = seed
        self.meta_dropout = meta_dropout
        self.meta_names = meta_names or []

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, tagged: int):
        epoch, index = divmod(tagged, len(self.base))
        key = (self.seed * 1_000_003 + epoch * 100_003 + index) % (2**63)
        torch.manual_seed(key)
        item = self.base[index]
        item["index"] = torch.tensor(index)
        if self.meta_dropout > 0:
            generator = torch.Generator().manual_seed(key)
            item["meta"] = metadata_dropout(item["meta"][None], self.meta_names, self.meta_dropout, generator)[0]
        return item


class EpochTagged(Sampler):
    """Wraps a sampler: yields epoch * n + index, and forwards set_epoch."""

    def __init__(self, sampler: DistributedSampler | BalancedDistributedSampler, n: int):
        self.sampler, self.n, self.epoch = sampler, n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        return (self.epoch * self.n + i for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def training_sampler(
    records: pd.DataFrame, cfg: TrainConfig, ctx: D.DistContext
) -> DistributedSampler | BalancedDistributedSampler:
    """Every image once per epoch (v1), or source-balanced draws when `balance_prevalence` is set."""
    if cfg.balance_prevalence is None:
        return DistributedSampler(
            range(len(records)), ctx.world_size, ctx.rank, shuffle=True, seed=cfg.seed, drop_last=True
        )
    weights = balanced_draw_weights(records, cfg.balance_prevalence)
    samples = cfg.samples_per_epoch or len(records)
    return BalancedDistributedSampler(weights, samples, ctx.world_size, ctx.rank, cfg.seed)


def loader(
    dataset: Dataset,
    cfg: TrainConfig,
    ctx: D.DistContext,
    train: bool,
    sampler: DistributedSampler | BalancedDistributedSampler | None = None,
) -> DataLoader:
    """A training loader (epoch-tagged `sampler`) or an evaluation loader (every image once, in order)."""
    # A DistributedSampler even for one process: the global order of samples is then the same for any
    # number of ranks, so N ranks × batch b reproduce one process × batch N·b.
    if train:
        if sampler is None:
            raise ValueError("a training loader needs its sampler (training_sampler)")
        sampler = EpochTagged(sampler, len(dataset))
    else:
        sampler = DistributedSampler(dataset, ctx.world_size, ctx.rank, shuffle=False, seed=cfg.seed)
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


class AugmentedBatches:
    """The training loader's stand-in for batch augmentation: batches of `images` (uint8, decoded once,
    already on the training device) drawn by the same samplers as the file loader, augmented as whole
    batches (training/batch_augment.py), with metadata dropout per image.

    Like the file loader, its `sampler` is epoch-tagged (set_epoch before each epoch). Random numbers come from
    a generator keyed by (seed, epoch, rank): reproducible for a given number of processes (unlike the file
    loader, not identical across different numbers of processes).

    With `pairs` ((n, 2) rows of `images`: a melanoma and a benign lesion of the same patient) and
    cfg.pair_loss_weight > 0, each batch also carries cfg.pairs_per_batch pairs after its draws: their images
    and metadata are appended (melanomas, then their benign partners), `target` and `diagnosis` stay those of
    the draws, so the loss tells the two apart by length (training/optimisation.compute_loss).
    """

    def __init__(
        self,
        images: torch.Tensor,
        dataset: LesionDataset,
        sampler: DistributedSampler | BalancedDistributedSampler,
        augment: BatchAugment,
        meta_names: list[str],
        cfg: TrainConfig,
        rank: int,
        pairs: np.ndarray | None = None,
    ):
        if len(images) != len(dataset):
            raise ValueError(f"{len(images)} decoded images for {len(dataset)} records")
        self.images, self.dataset, self.augment = images, dataset, augment
        self.sampler = EpochTagged(sampler, len(dataset))
        self.batch_size, self.seed, self.rank = cfg.batch_size, cfg.seed, rank
        self.meta_dropout, self.names = cfg.meta_dropout, meta_names
        use_pairs = cfg.pair_loss_weight > 0 and pairs is not None and len(pairs) > 0
        self.pairs = torch.as_tensor(pairs, dtype=torch.long) if use_pairs else None
        self.pair_draw = torch.as_tensor(pair_draw_weights(pairs)) if use_pairs else None
        self.pairs_per_batch = cfg.pairs_per_batch

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self):
        epoch = self.sampler.epoch
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch * 1_009 + self.rank) % 2**63)
        order = torch.as_tensor(list(self.sampler.sampler))  # the draws themselves, without the epoch tag
        for step in range(len(self)):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            rows = index
            if self.pairs is not None:
                chosen = self.pairs[torch.multinomial(self.pair_draw, self.pairs_per_batch, True, generator=generator)]
                rows = torch.cat([index, chosen[:, 0], chosen[:, 1]])
            meta = self.dataset.meta[rows]
            if self.meta_dropout > 0:
                meta = metadata_dropout(meta, self.names, self.meta_dropout, generator)
            yield {
                "image": self.augment(self.images[rows.to(self.images.device)], generator),
                "meta": meta,
                "target": self.dataset.target[index],
                "diagnosis": self.dataset.diagnosis[index],
                "index": index,
            }


def training_feed(
    train_ds: SeededAugment,
    sampler: DistributedSampler | BalancedDistributedSampler,
    cfg: TrainConfig,
    ctx: D.DistContext,
    decoded: torch.Tensor | None,
    image_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    pairs: np.ndarray | None = None,
) -> DataLoader | AugmentedBatches:
    """The training batches: the file loader (per-image augmentation in workers), or, with images decoded once
    (`decoded`, rows as `train_ds`), whole batches augmented on the training device, with the within-patient
    `pairs` appended when cfg.pair_loss_weight > 0."""
    if decoded is None:
        if cfg.pair_loss_weight > 0:
            raise ValueError("the within-patient ranking loss (pair_loss_weight) needs batch augmentation")
        return loader(train_ds, cfg, ctx, True, sampler)
    augment = BatchAugment(image_size, mean, std, degrade=cfg.degrade)
    names = train_ds.meta_names
    return AugmentedBatches(decoded.to(ctx.device), train_ds.base, sampler, augment, names, cfg, ctx.rank, pairs)
