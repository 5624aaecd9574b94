"""Batched inference with optional test-time augmentation.

Returns P(melanoma), its spread across TTA views (a cheap uncertainty signal), diagnosis probabilities
and the pooled image embedding used by the ugly-duckling analysis.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from data.images import ImageDecodeError, decode_image
from data.transforms import inference_transform
from model.checkpoint import load_checkpoint, model_id
from model.network import MelanomaNet, NetworkConfig

# Dihedral views of an image tensor (…, H, W). Dermoscopy has no canonical orientation, so all 8 are valid.
TTA_VIEWS: list[Callable[[torch.Tensor], torch.Tensor]] = [
    lambda x: x,
    lambda x: x.flip(-1),
    lambda x: x.flip(-2),
    lambda x: x.transpose(-2, -1),
    lambda x: x.flip(-1).flip(-2),
    lambda x: x.transpose(-2, -1).flip(-1),
    lambda x: x.transpose(-2, -1).flip(-2),
    lambda x: x.transpose(-2, -1).flip(-1).flip(-2),
]

ProgressFn = Callable[[int, int], None]


@dataclass
class Predictions:
    p_melanoma: np.ndarray  # (n,)
    p_spread: np.ndarray  # (n,) std of P(melanoma) across TTA views; 0 without TTA
    embedding: np.ndarray  # (n, d)
    diagnosis: np.ndarray  # (n, k) probabilities, k may be 0


@dataclass
class ScoredRecords:
    scores: pd.DataFrame  # input rows that could be scored + p_melanoma, p_spread, embedding index
    embeddings: np.ndarray
    errors: pd.DataFrame  # image_id, image_path, reason


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Predictor:
    def __init__(
        self, model: MelanomaNet, config: dict, device: torch.device | str | None = None, batch_size: int = 32
    ):
        self.device = torch.device(device) if device else default_device()
        self.model = model.to(self.device).eval()
        self.config = config
        self.network: NetworkConfig = model.config
        self.encoder = self.network.encoder
        self.transform = inference_transform(
            self.network.image_size, self.network.mean, self.network.std, config.get("preprocess")
        )
        self.batch_size = batch_size
        if self.device.type == "cpu":
            torch.set_num_threads(max(1, os.cpu_count() or 1))

    @classmethod
    def from_checkpoint(cls, folder: str | Path | None = None, **kwargs) -> Predictor:
        model, config = load_checkpoint(folder)
        return cls(model, config, **kwargs)

    @property
    def model_id(self) -> str:
        return model_id(self.config)

    @property
    def threshold(self) -> float:
        return float(self.config.get("operating_point", {}).get("threshold", 0.5))

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        return torch.autocast("cpu", enabled=False)

    @torch.inference_mode()
    def predict_tensors(self, images: torch.Tensor, meta: torch.Tensor, tta: int = 1) -> Predictions:
        """images: (n, 3, H, W) normalised; meta: (n, m)."""
        tta = max(1, min(int(tta), len(TTA_VIEWS)))
        images = images.to(self.device, non_blocking=True)
        meta = meta.to(self.device)
        probs, embeds, diags = [], [], []
        with self._autocast():
            for view in TTA_VIEWS[:tta]:
                out = self.model(view(images), meta)
                probs.append(torch.sigmoid(out["logit"].float()))
                embeds.append(out["embedding"].float())
                if "diagnosis_logits" in out:
                    diags.append(out["diagnosis_logits"].float().softmax(1))
        p = torch.stack(probs)
        return Predictions(
            p_melanoma=p.mean(0).cpu().numpy(),
            p_spread=(p.std(0, unbiased=False) if tta > 1 else torch.zeros_like(p[0])).cpu().numpy(),
            embedding=torch.stack(embeds).mean(0).cpu().numpy(),
            diagnosis=(torch.stack(diags).mean(0).cpu().numpy() if diags else np.zeros((len(images), 0))),
        )

    def predict_images(
        self,
        images: Sequence[Image.Image],
        records: pd.DataFrame | None = None,
        tta: int = 1,
        progress: ProgressFn | None = None,
    ) -> Predictions:
        """Score decoded RGB images; `records` gives site/sex/age per image (unknown when absent)."""
        n = len(images)
        meta_all = torch.from_numpy(
            self.encoder.encode(records if records is not None else pd.DataFrame(index=range(n)))
        )
        parts: list[Predictions] = []
        for start in range(0, n, self.batch_size):
            batch = torch.stack([self.transform(img) for img in images[start : start + self.batch_size]])
            parts.append(self.predict_tensors(batch, meta_all[start : start + len(batch)], tta))
            if progress:
                progress(min(start + len(batch), n), n)
        return _concat(parts, self.model.embedding_dim, len(self.network.diagnosis_classes))

    def predict_records(
        self, records: pd.DataFrame, tta: int = 1, progress: ProgressFn | None = None, workers: int = 2
    ) -> ScoredRecords:
        """Decode and score every row of a RECORD_COLUMNS frame; broken images become error rows."""
        records = records.reset_index(drop=True)
        ok_rows, errors = [], []

        def load(row: tuple[int, pd.Series]):
            i, rec = row
            if not rec["image_path"]:
                return i, None, "image file not found"
            try:
                return (
                    i,
                    self.transform(decode_image(rec["image_path"], name=Path(rec["image_path"]).name)),
                    None,
                )
            except ImageDecodeError as exc:
                return i, None, exc.reason

        parts: list[Predictions] = []
        n = len(records)
        done = 0
        chunks = [list(records.iloc[s : s + self.batch_size].iterrows()) for s in range(0, n, self.batch_size)]
        # Decode the next batch in threads (Pillow releases the GIL) while the model scores this one.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = [pool.submit(load, row) for row in chunks[0]] if chunks else []
            for k, chunk in enumerate(chunks):
                loaded = [future.result() for future in pending]
                pending = [pool.submit(load, row) for row in chunks[k + 1]] if k + 1 < len(chunks) else []
                batch_rows, batch_tensors = [], []
                for i, tensor, reason in loaded:
                    if tensor is None:
                        errors.append(
                            {
                                "image_id": records.at[i, "image_id"],
                                "image_path": records.at[i, "image_path"],
                                "reason": reason,
                            }
                        )
                    else:
                        batch_rows.append(i)
                        batch_tensors.append(tensor)
                if batch_tensors:
                    meta = torch.from_numpy(self.encoder.encode(records.iloc[batch_rows]))
                    parts.append(self.predict_tensors(torch.stack(batch_tensors), meta, tta))
                    ok_rows.extend(batch_rows)
                done += len(chunk)
                if progress:
                    progress(done, n)
        preds = _concat(parts, self.model.embedding_dim, len(self.network.diagnosis_classes))
        scores = records.iloc[ok_rows].copy()
        scores["p_melanoma"] = preds.p_melanoma
        scores["p_spread"] = preds.p_spread
        for j, name in enumerate(self.network.diagnosis_classes):
            if preds.diagnosis.shape[1]:
                # p_dx_*: "p_melanoma" is the melanoma head's score and must not be overwritten by the
                # diagnosis head's melanoma class (DIAGNOSES starts with "melanoma").
                scores[f"p_dx_{name}"] = preds.diagnosis[:, j]
        return ScoredRecords(
            scores=scores.reset_index(drop=True),
            embeddings=preds.embedding,
            errors=pd.DataFrame(errors, columns=["image_id", "image_path", "reason"]),
        )


def _concat(parts: list[Predictions], dim: int, n_diag: int) -> Predictions:
    if not parts:
        return Predictions(np.zeros(0), np.zeros(0), np.zeros((0, dim)), np.zeros((0, n_diag)))
    return Predictions(
        p_melanoma=np.concatenate([p.p_melanoma for p in parts]),
        p_spread=np.concatenate([p.p_spread for p in parts]),
        embedding=np.concatenate([p.embedding for p in parts]),
        diagnosis=np.concatenate([p.diagnosis for p in parts]),
    )
