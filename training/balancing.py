"""Against the source shortcut: source-balanced draws and metadata dropout, shared by both trainers.

ISIC 2020 images were 51% melanoma in the first model's training data, HAM10000 11% and whole ISIC 2020
patients 1.3%, so "looks like an ISIC 2020 photo" predicted melanoma. Two remedies, used by the cached-tail
trainer (training/train_cached.py) and the full fine-tune (training/train.py) alike:

- source balancing: each epoch draws a fixed number of images with probabilities that give every source the
  same melanoma rate and a share of draws proportional to the square root of its size (by default), so the
  source carries no information about the label;
- metadata dropout: site, sex and age are each hidden (set to unknown) with some probability, so a missing
  field gives a sensible score instead of a shifted one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Sampler

# a source's share of draws ~ its size ** this: the square root, between "equally often" (0) and "as often as
# its images" (1); training/train_cached.py's source_share_power defaults to it
SOURCE_SHARE_POWER = 0.5


def balanced_draw_weights(
    records: pd.DataFrame, prevalence: float, share_power: float = SOURCE_SHARE_POWER
) -> np.ndarray:
    """Per-image draw probabilities: within every source the melanoma share is `prevalence`, and each
    source's share of draws is proportional to its size ** share_power (0.5, the default: the square root;
    0: every source drawn equally often; 1: as often as its images)."""
    records = records.reset_index(drop=True)
    weights = np.zeros(len(records))
    groups = records.groupby("dataset").groups
    sizes = pd.Series({source: float(len(rows)) for source, rows in groups.items()})
    source_share = sizes**share_power / (sizes**share_power).sum()
    for source, rows in groups.items():
        target = records.loc[rows, "target"].astype(int).to_numpy()
        pos, neg = int(target.sum()), int(len(target) - target.sum())
        w = np.where(target == 1, prevalence / max(pos, 1), (1 - prevalence) / max(neg, 1))
        if pos == 0 or neg == 0:
            w = np.full(len(target), 1.0 / len(target))
        weights[np.asarray(rows)] = w * source_share[source]
    return weights / weights.sum()


def metadata_dropout(meta: torch.Tensor, names: list[str], p: float, generator: torch.Generator) -> torch.Tensor:
    """Hide site, sex and age independently with probability p (the encoder's 'unknown' encoding).

    `meta` is a batch (n, dim); the encoder's column names say which columns belong to which field."""
    if p <= 0:
        return meta
    meta = meta.clone()
    n = len(meta)
    groups = {
        "site": ([i for i, s in enumerate(names) if s.startswith("site=")], names.index("site=unknown")),
        "sex": ([i for i, s in enumerate(names) if s.startswith("sex=")], names.index("sex=unknown")),
    }
    for cols, unknown in groups.values():
        hide = torch.rand(n, generator=generator) < p
        meta[hide.nonzero(as_tuple=True)[0].unsqueeze(1), torch.tensor(cols)] = 0.0
        meta[hide, unknown] = 1.0
    hide = torch.rand(n, generator=generator) < p
    meta[hide, names.index("age")] = 0.0
    meta[hide, names.index("age_missing")] = 1.0
    return meta


class BalancedDistributedSampler(Sampler[int]):
    """`samples_per_epoch` draws (with replacement) by `weights`, split across DDP ranks.

    The global draw of an epoch depends only on (seed, epoch), and rank r takes every world_size-th draw
    from r, so N ranks together see the same images as one process: the same contract as the trainer's
    DistributedSampler. Has set_epoch, like DistributedSampler, for the trainer's epoch loop.
    """

    def __init__(self, weights: np.ndarray, samples_per_epoch: int, world_size: int = 1, rank: int = 0, seed: int = 0):
        if samples_per_epoch < world_size:
            raise ValueError(f"samples_per_epoch ({samples_per_epoch}) must be at least the number of ranks")
        self.weights = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        self.samples_per_epoch = samples_per_epoch - samples_per_epoch % world_size
        self.world_size, self.rank, self.seed, self.epoch = world_size, rank, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        draws = torch.multinomial(self.weights, self.samples_per_epoch, replacement=True, generator=generator)
        return iter(draws[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.samples_per_epoch // self.world_size
