"""The trainer's optimisation: mixed precision, BatchNorm mode, AdamW with a slower backbone, warm-up +
cosine schedule, the loss (melanoma BCE + weighted diagnosis cross-entropy) and one update step."""

from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as F

from data.dataset import IGNORE_INDEX
from model.network import MelanomaNet
from training import distributed as D
from training.train_config import TrainConfig
from training.within_patient import ranking_loss_after


def amp_dtype(cfg: TrainConfig, ctx: D.DistContext) -> torch.dtype | None:
    if ctx.device.type != "cuda" or cfg.amp == "off":
        return None
    if cfg.amp == "fp16" or (cfg.amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def set_bn_mode(model: torch.nn.Module, mode: str) -> None:
    if mode == "frozen":
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def build_optimizer(model: MelanomaNet, cfg: TrainConfig) -> torch.optim.Optimizer:
    backbone, heads = [], []
    for name, p in model.named_parameters():
        (backbone if name.startswith("backbone.") else heads).append(p)
    return torch.optim.AdamW(
        [{"params": backbone, "lr": cfg.lr * cfg.backbone_lr_scale}, {"params": heads, "lr": cfg.lr}],
        weight_decay=cfg.weight_decay,
    )


def build_scheduler(optimizer, cfg: TrainConfig, steps_per_epoch: int):
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = int(cfg.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def positive_weight(cfg: TrainConfig, targets: pd.Series) -> float | None:
    if cfg.pos_weight == "none":
        return None
    if cfg.pos_weight == "auto":
        pos = float((targets == 1).sum())
        neg = float((targets == 0).sum())
        return math.sqrt(neg / pos) if pos else None
    return float(cfg.pos_weight)


def compute_loss(out: dict, batch: dict, pos_weight: torch.Tensor | None, cfg: TrainConfig) -> torch.Tensor:
    """BCE (+ diagnosis CE) on the batch's draws; rows after them are within-patient pairs (melanomas, then
    their benign partners: training/train_data.AugmentedBatches), scored by the ranking loss."""
    target = batch["target"]
    n = len(target)
    logit = out["logit"].float()
    loss = F.binary_cross_entropy_with_logits(logit[:n], target, pos_weight=pos_weight)
    if cfg.diagnosis_loss_weight and "diagnosis_logits" in out:
        # Sum over labelled samples / batch size: averaging over ranks then equals one big batch.
        ce = F.cross_entropy(
            out["diagnosis_logits"][:n].float(), batch["diagnosis"], ignore_index=IGNORE_INDEX, reduction="sum"
        )
        loss = loss + cfg.diagnosis_loss_weight * ce / n
    if cfg.pair_loss_weight > 0 and len(logit) > n:
        loss = loss + cfg.pair_loss_weight * ranking_loss_after(logit, n)
    return loss


def optimizer_step(loss: torch.Tensor, optimizer, scaler) -> None:
    """One backward + update; fp16 needs the GradScaler, bf16 and fp32 do not."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
