"""Batched inference with test-time augmentation: the one scoring path.

Returns P(melanoma), its spread across TTA views (a cheap uncertainty signal), diagnosis probabilities
and the pooled image embedding used by the ugly-duckling analysis.

`Predictor.score_stream` is the single decode -> batch -> score loop: the predict CLI
(`predict_records`), the dashboard's whole-patient triage (`model.triage.triage_patient`) and the
benchmarks all score through it, with the same decoder (`data.images.decode_image`, which applies the
input rules) and the same test-time augmentation, a property of the model (`Predictor.tta`, from the
checkpoint's `"inference": {"tta": N}`, 2 views when absent).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from data.images import ImageDecodeError, decode_image
from data.readers import ROW_PROBLEM
from data.settings import environment
from data.transforms import inference_transform
from model.architectures import Network
from model.checkpoint import load_checkpoint, model_id
from model.network import NetworkConfig

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
MAX_TTA = len(TTA_VIEWS)
DEFAULT_TTA = 2  # views when the checkpoint does not say: the dashboard's and the CLI's default alike

ProgressFn = Callable[[int, int], None]
ImageLoader = Callable[[], Image.Image]


def check_tta(tta: object, what: str = "tta") -> int:
    """A number of TTA views, 1-8; anything else is an error (never clamped)."""
    if isinstance(tta, bool) or not isinstance(tta, int | np.integer):
        raise ValueError(f"{what} must be a whole number of views from 1 to {MAX_TTA}, got {tta!r}")
    if not 1 <= int(tta) <= MAX_TTA:
        raise ValueError(f"{what} must be from 1 to {MAX_TTA} views, got {int(tta)}")
    return int(tta)


@dataclass
class Predictions:
    p_melanoma: np.ndarray  # (n,)
    p_spread: np.ndarray  # (n,) std of P(melanoma) across TTA views; 0 without TTA
    embedding: np.ndarray  # (n, d)
    diagnosis: np.ndarray  # (n, k) probabilities, k may be 0
    view_logits: np.ndarray  # (n, tta) the melanoma logit of each TTA view (what calibration is fitted on)


@dataclass
class StreamScores:
    """What score_stream returns: predictions for the items that could be scored, in input order."""

    indices: list[int]  # positions of the scored items
    predictions: Predictions
    errors: list[tuple[int, str]] = field(default_factory=list)  # (position, reason), in input order
    tta: int = 1


@dataclass
class ScoredRecords:
    scores: pd.DataFrame  # input rows that could be scored + p_melanoma, p_spread, embedding index
    embeddings: np.ndarray
    errors: pd.DataFrame  # image_id, image_path, reason
    tta: int = 1  # TTA views used


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Predictor:
    def __init__(self, model: Network, config: dict, device: torch.device | str | None = None, batch_size: int = 32):
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
            # Every core, unless OMP_NUM_THREADS pins fewer: where another job keeps a core busy (a shared
            # server, the test machine), every operation waits for the thread that waits for that core (on 2
            # cores with a training job: a tiny network's forward pass 0.58 s with 2 threads, 2.5 ms with 1).
            torch.set_num_threads(environment().cpu_threads or max(1, os.cpu_count() or 1))

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

    @property
    def tta(self) -> int:
        """The model's test-time augmentation: the checkpoint's "inference": {"tta": N}, 2 views when absent."""
        inference = self.config.get("inference") or {}
        return check_tta(inference.get("tta", DEFAULT_TTA), "the checkpoint's inference.tta")

    channels_last = False  # True for the conv+BN-folded CPU twin (model.fast_cpu.inference_predictor)

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        return torch.autocast("cpu", enabled=False)

    @torch.inference_mode()
    def predict_tensors(self, images: torch.Tensor, meta: torch.Tensor, tta: int = 1) -> Predictions:
        """images: (n, 3, H, W) normalised; meta: (n, m)."""
        tta = check_tta(tta)
        images = images.to(self.device, non_blocking=True)
        meta = meta.to(self.device)
        logits, embeds, diags = [], [], []
        with self._autocast():
            for view in TTA_VIEWS[:tta]:
                out = self.model(view(images), meta)
                logits.append(out["logit"].float())
                embeds.append(out["embedding"].float())
                if "diagnosis_logits" in out:
                    diags.append(out["diagnosis_logits"].float().softmax(1))
        p = torch.sigmoid(torch.stack(logits))
        return Predictions(
            p_melanoma=p.mean(0).cpu().numpy(),
            p_spread=(p.std(0, unbiased=False) if tta > 1 else torch.zeros_like(p[0])).cpu().numpy(),
            embedding=torch.stack(embeds).mean(0).cpu().numpy(),
            diagnosis=(torch.stack(diags).mean(0).cpu().numpy() if diags else np.zeros((len(images), 0))),
            view_logits=torch.stack(logits, 1).cpu().numpy(),
        )

    def score_stream(
        self,
        loaders: Sequence[ImageLoader],
        metadata: pd.DataFrame | None = None,
        tta: int | None = None,
        progress: ProgressFn | None = None,
        batch_size: int | None = None,
        workers: int = 2,
    ) -> StreamScores:
        """The one decode -> batch -> score loop.

        loaders[i]() returns item i's upright RGB image or raises (ImageDecodeError: its reason is
        reported; any other exception is reported with its type): one broken item never stops the rest.
        metadata: site/sex/age per item (rows aligned with `loaders`; unknown when absent).
        Decoding runs ahead in `workers` threads (Pillow releases the GIL) while the network scores full
        batches; at most a few batches are held decoded, so memory stays bounded for any number of items.
        """
        tta = self.tta if tta is None else check_tta(tta)
        n = len(loaders)
        batch = int(batch_size or self.batch_size)
        if batch < 1:
            raise ValueError(f"batch size must be at least 1, got {batch}")
        metadata = metadata.reset_index(drop=True) if metadata is not None else pd.DataFrame(index=range(n))
        if len(metadata) != n:
            raise ValueError(f"metadata has {len(metadata)} rows for {n} images")

        def load(i: int) -> tuple[int, torch.Tensor | None, str | None]:
            try:
                return i, self.transform(loaders[i]()), None
            except ImageDecodeError as exc:
                return i, None, exc.reason
            except Exception as exc:  # never abort the run for one file
                return i, None, f"could not be processed ({type(exc).__name__}: {exc})"

        indices: list[int] = []
        errors: list[tuple[int, str]] = []
        parts: list[Predictions] = []
        pending: list[tuple[int, torch.Tensor]] = []

        def flush() -> None:
            idx = [i for i, _ in pending]
            images = torch.stack([t for _, t in pending])
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            meta = torch.from_numpy(self.encoder.encode(metadata.iloc[idx]))
            parts.append(self.predict_tensors(images, meta, tta))
            indices.extend(idx)
            pending.clear()
            if progress:
                progress(len(indices) + len(errors), n)

        ahead = max(2 * batch, 2 * workers)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            queue = deque(pool.submit(load, i) for i in range(min(n, ahead)))
            submitted = len(queue)
            while queue:
                i, tensor, reason = queue.popleft().result()
                if submitted < n:
                    queue.append(pool.submit(load, submitted))
                    submitted += 1
                if tensor is None:
                    errors.append((i, reason or "could not be read"))
                    continue
                pending.append((i, tensor))
                if len(pending) >= batch:
                    flush()
            if pending:
                flush()
        if progress:
            progress(n, n)
        preds = _concat(parts, self.model.embedding_dim, len(self.network.diagnosis_classes))
        return StreamScores(indices=indices, predictions=preds, errors=errors, tta=tta)

    def predict_images(
        self,
        images: Sequence[Image.Image],
        records: pd.DataFrame | None = None,
        tta: int | None = None,
        progress: ProgressFn | None = None,
    ) -> Predictions:
        """Score decoded RGB images; `records` gives site/sex/age per image (unknown when absent)."""
        stream = self.score_stream(
            [lambda img=img: img for img in images], records, tta=tta, progress=progress, workers=1
        )
        if stream.errors:
            i, reason = stream.errors[0]
            raise ValueError(f"image {i} could not be scored: {reason}")
        return stream.predictions

    def predict_records(
        self,
        records: pd.DataFrame,
        tta: int | None = None,
        progress: ProgressFn | None = None,
        workers: int = 2,
        batch_size: int | None = None,
    ) -> ScoredRecords:
        """Decode and score every row of a RECORD_COLUMNS frame; rows that cannot be scored become error rows.

        A row is not scored when the reader marked it (ROW_PROBLEM: a bad name, a missing file, a repeated
        row), when it has no image path, or when its file breaks an input rule or cannot be decoded.
        """
        records = records.reset_index(drop=True)
        marked = records[ROW_PROBLEM] if ROW_PROBLEM in records else pd.Series([None] * len(records), dtype=object)

        def loader(path: object, problem: object) -> ImageLoader:
            def load() -> Image.Image:
                if isinstance(problem, str) and problem:
                    raise ImageDecodeError("", problem)
                if not isinstance(path, str | Path) or not str(path):
                    raise ImageDecodeError("", "image file not found")
                return decode_image(path, name=Path(path).name)

            return load

        loaders = [loader(path, problem) for path, problem in zip(records["image_path"], marked, strict=True)]
        stream = self.score_stream(loaders, records, tta=tta, progress=progress, batch_size=batch_size, workers=workers)
        preds = stream.predictions
        scores = records.iloc[stream.indices].drop(columns=[ROW_PROBLEM], errors="ignore").copy()
        scores["p_melanoma"] = preds.p_melanoma
        scores["p_spread"] = preds.p_spread
        for j, name in enumerate(self.network.diagnosis_classes):
            if preds.diagnosis.shape[1]:
                # p_dx_*: "p_melanoma" is the melanoma head's score and must not be overwritten by the
                # diagnosis head's melanoma class (DIAGNOSES starts with "melanoma").
                scores[f"p_dx_{name}"] = preds.diagnosis[:, j]
        errors = pd.DataFrame(
            [
                {"image_id": records.at[i, "image_id"], "image_path": records.at[i, "image_path"], "reason": reason}
                for i, reason in stream.errors
            ],
            columns=["image_id", "image_path", "reason"],
        )
        return ScoredRecords(
            scores=scores.reset_index(drop=True), embeddings=preds.embedding, errors=errors, tta=stream.tta
        )


def _concat(parts: list[Predictions], dim: int, n_diag: int) -> Predictions:
    if not parts:
        return Predictions(np.zeros(0), np.zeros(0), np.zeros((0, dim)), np.zeros((0, n_diag)), np.zeros((0, 0)))
    return Predictions(
        p_melanoma=np.concatenate([p.p_melanoma for p in parts]),
        p_spread=np.concatenate([p.p_spread for p in parts]),
        embedding=np.concatenate([p.embedding for p in parts]),
        diagnosis=np.concatenate([p.diagnosis for p in parts]),
        view_logits=np.concatenate([p.view_logits for p in parts]),
    )
