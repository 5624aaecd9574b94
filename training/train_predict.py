"""The trainer's predictions: validation / out-of-fold (each deployed TTA view's logit, the views' mean
embedding) and the final model's scores on external test sets."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from data.dataset import LesionDataset
from data.datasets import load_datasets
from data.transforms import inference_transform, with_reencode
from model.checkpoint import load_checkpoint
from model.metrics import roc_auc
from model.predictor import TTA_VIEWS
from training import distributed as D
from training.optimisation import amp_dtype
from training.train_config import TrainConfig
from training.train_data import limited, loader


def show_progress(ctx: D.DistContext) -> bool:
    """Progress bars on rank 0 in a terminal; logs (one JSON line per epoch) say the rest."""
    return ctx.is_main and sys.stderr.isatty()


# Validation and out-of-fold predictions keep the logit of each of the deployed predictor's TTA views
# (identity, horizontal flip), so calibration is fitted on exactly what the predictor computes.
OOF_VIEWS = 2


@torch.inference_mode()
def predict(model, dl, cfg, ctx) -> dict[str, np.ndarray]:
    """Predictions for a loader's dataset, gathered from all ranks and de-duplicated by index: the logit of
    each deployed TTA view, P(melanoma) of their mean logit and the views' mean embedding."""
    model.eval()
    dtype = amp_dtype(cfg, ctx)
    idx, logits, embeds = [], [], []
    for batch in tqdm(dl, desc="validating", disable=not show_progress(ctx), leave=False, file=sys.stderr):
        images = batch["image"].to(ctx.device, non_blocking=True)
        meta = batch["meta"].to(ctx.device)
        view_logits, view_embeds = [], []
        for view in TTA_VIEWS[:OOF_VIEWS]:
            x = view(images)
            if cfg.channels_last and ctx.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(ctx.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                out = model(x, meta)
            view_logits.append(out["logit"].float())
            view_embeds.append(out["embedding"].float())
        idx.append(batch["index"].to(ctx.device))
        logits.append(torch.stack(view_logits, 1))
        embeds.append(torch.stack(view_embeds).mean(0))
    index = D.gather_concat(torch.cat(idx), ctx).cpu().numpy()
    logit = D.gather_concat(torch.cat(logits), ctx).cpu().numpy()
    e = D.gather_concat(torch.cat(embeds), ctx).cpu().numpy()
    _, first = np.unique(index, return_index=True)  # DistributedSampler pads with repeats
    order = first[np.argsort(index[first])]
    logit = logit[order]
    p = 1.0 / (1.0 + np.exp(-logit.mean(1)))
    return {"index": index[order], "logit_views": logit, "p": p, "embedding": e[order]}


def prediction_rows(frame: pd.DataFrame, preds: dict[str, np.ndarray]) -> pd.DataFrame:
    """The predicted rows of `frame` with p_melanoma and one logit_v<k> column per TTA view."""
    rows = frame.iloc[preds["index"]].copy()
    rows["p_melanoma"] = preds["p"]
    for k in range(preds["logit_views"].shape[1]):
        rows[f"logit_v{k}"] = preds["logit_views"][:, k]
    return rows


OOF_COLUMNS = [
    "image_id", "dataset", "group_id", "fold", "target", "diagnosis", "site", "sex", "age", "p_melanoma",
    *(f"logit_v{k}" for k in range(OOF_VIEWS)),
]  # fmt: skip


def score_external(cfg: TrainConfig, ctx: D.DistContext, out: Path) -> None:
    """The final model's predictions on external test sets (never trained or tuned on): external_<name>.csv."""
    model, config = load_checkpoint(out / "last")
    model = model.float().to(ctx.device)
    net_cfg = model.config
    # The checkpoint's pixel steps except a bundle's re-encoding, which the files being read already had.
    applied = with_reencode(config, None).get("preprocess")
    transform = inference_transform(net_cfg.image_size, net_cfg.mean, net_cfg.std, applied)
    for name in cfg.external:
        frame = limited(load_datasets([name], Path(cfg.data_root) if cfg.data_root else None), cfg)
        preds = predict(model, loader(LesionDataset(frame, transform, net_cfg.encoder), cfg, ctx, False), cfg, ctx)
        if ctx.is_main:
            rows = prediction_rows(frame, preds)
            rows[[c for c in OOF_COLUMNS if c != "fold"]].to_csv(out / f"external_{name}.csv", index=False)
            print(f"external {name}: AUC {roc_auc(rows.target.astype(int), rows.p_melanoma):.4f}", file=sys.stderr)
