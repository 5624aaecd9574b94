"""torch Dataset over RECORD_COLUMNS frames."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from data.images import decode_image
from data.metadata import MetadataEncoder
from data.schema import DIAGNOSES

IGNORE_INDEX = -100  # diagnosis unknown: masked out of the diagnosis loss


class LesionDataset(Dataset):
    def __init__(self, records: pd.DataFrame, transform: Callable, encoder: MetadataEncoder):
        self.paths = records["image_path"].tolist()
        self.meta = torch.from_numpy(encoder.encode(records))
        target = records["target"].astype("Int64").fillna(-1).to_numpy(dtype=np.int64)
        self.target = torch.from_numpy(target).float()
        diag_idx = {d: i for i, d in enumerate(DIAGNOSES)}
        self.diagnosis = torch.tensor([diag_idx.get(d, IGNORE_INDEX) for d in records["diagnosis"]])
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        # Training data is validated up front; a decode error here names the file and stops the run.
        image = decode_image(self.paths[index])
        return {
            "image": self.transform(image),
            "meta": self.meta[index],
            "target": self.target[index],
            "diagnosis": self.diagnosis[index],
            "index": torch.tensor(index),
        }
