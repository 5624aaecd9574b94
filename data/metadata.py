"""Patient metadata -> a fixed-length float vector, shared by training and inference.

The encoder's layout is stored in each checkpoint's config, so a model always reads its inputs the
way it was trained. Unknown is a category of its own (sites, sex) or a flag (age).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from data.schema import SEXES, SITES


@dataclass(frozen=True)
class MetadataEncoder:
    sites: tuple[str, ...] = SITES
    sexes: tuple[str, ...] = SEXES
    age_scale: float = 100.0

    @property
    def names(self) -> list[str]:
        return [f"site={s}" for s in self.sites] + [f"sex={s}" for s in self.sexes] + ["age", "age_missing"]

    @property
    def dim(self) -> int:
        return len(self.names)

    def encode(self, records: pd.DataFrame) -> np.ndarray:
        n = len(records)
        site = records["site"] if "site" in records else pd.Series(["unknown"] * n)
        sex = records["sex"] if "sex" in records else pd.Series(["unknown"] * n)
        age = pd.to_numeric(records["age"], errors="coerce") if "age" in records else pd.Series([np.nan] * n)
        site_idx = {s: i for i, s in enumerate(self.sites)}
        sex_idx = {s: i for i, s in enumerate(self.sexes)}
        out = np.zeros((n, self.dim), dtype=np.float32)
        unknown_site = site_idx["unknown"]
        unknown_sex = sex_idx["unknown"]
        for row, (s, x) in enumerate(zip(site.fillna("unknown"), sex.fillna("unknown"), strict=True)):
            out[row, site_idx.get(s, unknown_site)] = 1.0
            out[row, len(self.sites) + sex_idx.get(x, unknown_sex)] = 1.0
        age_values = age.to_numpy(dtype=float)
        missing = np.isnan(age_values)
        out[:, -2] = np.where(missing, 0.0, age_values / self.age_scale)
        out[:, -1] = missing.astype(np.float32)
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, config: dict) -> MetadataEncoder:
        return cls(sites=tuple(config["sites"]), sexes=tuple(config["sexes"]), age_scale=float(config["age_scale"]))
