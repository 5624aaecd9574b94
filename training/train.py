"""Train the melanoma network: one process, or DDP under torchrun.

    python -m training.train --out runs/cv --fold all            # patient-grouped K-fold CV + OOF predictions
    python -m training.train --out runs/final --fold none        # final model on all data
    torchrun --nproc_per_node=N -m training.train ...            # DDP (NCCL on GPUs, gloo on CPU)

Out-of-fold predictions come from the last epoch of a fixed schedule: nothing is selected on the
fold being predicted. Early stopping (--patience) exists for exploratory runs and is off by default.

Here: the epoch loops, one training run (fit) and the CV driver (run). Settings and flags:
training/train_config.py; data and loaders: train_data.py (batch augmentation: batch_augment.py, decoded_images.py);
predictions (out-of-fold, external): train_predict.py; optimiser, schedule, loss: optimisation.py;
resumable state: resume_state.py.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torchvision.transforms import v2
from tqdm import tqdm

from data.dataset import LesionDataset
from data.datasets import datasets_root
from data.transforms import RandomDegrade, colour_constancy_step, inference_transform, preprocess_steps, train_transform
from model.checkpoint import REPO_ROOT, save_checkpoint
from model.metrics import roc_auc
from model.network import NetworkConfig
from model.pretrained import backbone_data_config, build_network
from training import distributed as D
from training.bundle import inference_preprocess
from training.decoded_images import decode_all
from training.optimisation import (
    amp_dtype,
    build_optimizer,
    build_scheduler,
    compute_loss,
    optimizer_step,
    positive_weight,
    set_bn_mode,
)
from training.resume_state import load_training_state, save_training_state
from training.train_config import TrainConfig, parse_args
from training.train_data import (
    SeededAugment,
    data_summary,
    load_records,
    loader,
    training_feed,
    training_sampler,
)
from training.train_predict import OOF_COLUMNS, predict, prediction_rows, score_external, show_progress
from training.within_patient import within_patient_pairs

# ---------------------------------------------------------------- loops


def run_epoch(model, dl, optimizer, scheduler, scaler, pos_weight, cfg, ctx, epoch: int) -> dict:
    model.train()
    set_bn_mode(model, cfg.bn_mode)
    dtype = amp_dtype(cfg, ctx)
    total_loss, seen, processed, sync_checks, start = 0.0, 0, 0, 0, time.perf_counter()
    bar = tqdm(
        dl,
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        disable=not show_progress(ctx),
        leave=False,
        file=sys.stderr,
    )
    for step, batch in enumerate(bar):
        if cfg.max_steps_per_epoch and step >= cfg.max_steps_per_epoch:
            break
        batch = {k: v.to(ctx.device, non_blocking=True) for k, v in batch.items()}
        images = batch["image"]
        if cfg.channels_last and ctx.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(ctx.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(images, batch["meta"])
            loss = compute_loss(out, batch, pos_weight, cfg)
        optimizer_step(loss, optimizer, scaler)
        scheduler.step()
        if cfg.check_sync and not D.params_in_sync(model, ctx):
            raise RuntimeError(f"ranks diverged at epoch {epoch} step {step}")
        sync_checks += cfg.check_sync
        draws = len(batch["target"])  # within-patient pair rows, if any, follow the draws
        total_loss += float(loss.detach()) * draws
        seen += draws
        processed += len(images)
        if ctx.is_main:
            bar.set_postfix(loss=f"{total_loss / seen:.4f}")
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    stats = torch.tensor([total_loss, float(seen), float(processed)], device=ctx.device)
    if ctx.distributed:
        torch.distributed.all_reduce(stats)
    return {
        "train_loss": float(stats[0] / max(stats[1], 1)),
        "images_per_s": float(stats[2]) / elapsed if elapsed else float("nan"),
        "lr": scheduler.get_last_lr()[-1],
        **({"sync_checks": sync_checks} if cfg.check_sync else {}),  # steps whose weights were compared across ranks
    }


# ---------------------------------------------------------------- one training run


def network_config(cfg: TrainConfig) -> NetworkConfig:
    """The network for this run; normalisation (and, unless --image-size is given, the input size) is the
    backbone's own, from timm's pretrained_cfg, never NetworkConfig's 0.5 placeholders."""
    data = backbone_data_config(cfg.backbone)
    return NetworkConfig(
        backbone=cfg.backbone,
        image_size=cfg.image_size or data["input_size"][-1],
        mean=data["mean"],
        std=data["std"],
        use_metadata=cfg.use_metadata,
        dropout=cfg.dropout,
    )


def applied_preprocess(cfg: TrainConfig) -> dict | None:
    """The pixel steps the trainer applies itself to every decoded image, before any augmentation (a data
    bundle's re-encoding is already in its files): colour constancy."""
    return colour_constancy_step(cfg.colour_constancy_power)


def checkpoint_preprocess(cfg: TrainConfig) -> dict | None:
    """Every pixel step inference must repeat, as the checkpoint records it: the data bundle's re-encoding
    (the trainer reads files that already went through it), then the trainer's own steps."""
    return {**(inference_preprocess(cfg.data_root) or {}), **(applied_preprocess(cfg) or {})} or None


def pixel_transforms(cfg: TrainConfig, net_cfg: NetworkConfig) -> tuple[v2.Compose, v2.Compose]:
    """The file loader's training augmentation and the validation transform, both behind the trainer's own
    pixel steps (as the predictor applies the checkpoint's `preprocess`)."""
    applied = applied_preprocess(cfg)
    augment = v2.Compose(
        [
            *preprocess_steps(applied),
            *([RandomDegrade()] if cfg.degrade else []),
            train_transform(net_cfg.image_size, net_cfg.mean, net_cfg.std),
        ]
    )
    return augment, inference_transform(net_cfg.image_size, net_cfg.mean, net_cfg.std, applied)


def fit(
    cfg: TrainConfig,
    ctx: D.DistContext,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame | None,
    out_dir: Path,
    summary: dict,
    preprocess: dict | None = None,
    decoded: torch.Tensor | None = None,
) -> dict:
    """Train on train_df; validate on val_df each epoch; save best/last checkpoints; return last predictions."""
    torch.manual_seed(cfg.seed)
    net_cfg = network_config(cfg)
    model = build_network(net_cfg, imagenet=cfg.imagenet, weights_file=cfg.imagenet_weights).to(ctx.device)
    if cfg.channels_last and ctx.device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if cfg.bn_mode == "sync" and ctx.distributed and ctx.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    encoder = net_cfg.encoder
    augment, evaluate = pixel_transforms(cfg, net_cfg)
    train_ds = SeededAugment(LesionDataset(train_df, augment, encoder), cfg.seed, cfg.meta_dropout, encoder.names)
    sampler = training_sampler(train_df, cfg, ctx)
    val_ds = LesionDataset(val_df, evaluate, encoder) if val_df is not None and len(val_df) else None
    steps = len(sampler) // cfg.batch_size
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    if steps < 1:
        raise ValueError(
            f"{len(sampler) * ctx.world_size} training draws per epoch are fewer than one global batch "
            f"({cfg.batch_size} × {ctx.world_size} processes)"
        )
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, steps)
    dtype = amp_dtype(cfg, ctx)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    pw = positive_weight(cfg, train_df["target"])
    pos_weight = torch.tensor(pw, device=ctx.device) if pw else None

    start_epoch, best_auc, bad_epochs, history = 0, -1.0, 0, []
    state_dir = out_dir / "state"
    if cfg.resume and (state_dir / "resume_state.pt").exists():
        start_epoch, meta = load_training_state(state_dir, model, optimizer, scheduler, scaler)
        best_auc, bad_epochs, history = meta["best_auc"], meta["bad_epochs"], meta["history"]
        if ctx.is_main:
            print(f"resumed {out_dir} after epoch {start_epoch}", file=sys.stderr)
    ddp = DDP(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None) if ctx.distributed else model

    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "log.jsonl"
    writer = None
    if cfg.tensorboard and ctx.is_main:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise SystemExit("--tensorboard needs the tensorboard package: .venv/bin/pip install tensorboard") from None

        writer = SummaryWriter(str(out_dir / "tensorboard"))
    preds = None
    pairs = within_patient_pairs(train_df) if cfg.pair_loss_weight > 0 else None
    if pairs is not None and ctx.is_main:
        print(f"within-patient ranking loss: {len(pairs)} (melanoma, benign) pairs to draw from", file=sys.stderr)
    train_dl = training_feed(train_ds, sampler, cfg, ctx, decoded, net_cfg.image_size, net_cfg.mean, net_cfg.std, pairs)
    val_dl = loader(val_ds, cfg, ctx, False) if val_ds is not None else None
    for epoch in range(start_epoch, cfg.epochs):
        train_dl.sampler.set_epoch(epoch)
        record = {
            "epoch": epoch + 1,
            **run_epoch(ddp, train_dl, optimizer, scheduler, scaler, pos_weight, cfg, ctx, epoch),
        }
        last_epoch = epoch + 1 == cfg.epochs
        if val_dl is not None and (last_epoch or (epoch + 1) % cfg.val_every == 0):
            preds = predict(ddp, val_dl, cfg, ctx)
            y = val_df["target"].to_numpy(dtype=int)[preds["index"]]
            record["val_auc"] = roc_auc(y, preds["p"])
            for name in sorted(val_df["dataset"].unique()):
                mask = val_df["dataset"].to_numpy()[preds["index"]] == name
                record[f"val_auc_{name}"] = roc_auc(y[mask], preds["p"][mask])
        history.append(record)
        improved = "val_auc" in record and record["val_auc"] > best_auc
        if improved:
            best_auc, bad_epochs = record.get("val_auc", -1), 0
        elif "val_auc" in record:
            bad_epochs += 1
        if ctx.is_main:
            print(
                json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in record.items()}),
                file=sys.stderr,
            )
            with open(log_path, "a") as fh:
                fh.write(json.dumps(record) + "\n")
            if writer:
                for k, v in record.items():
                    writer.add_scalar(k, v, epoch + 1)
            extra = {
                **({"preprocess": preprocess} if preprocess else {}),
                "model_id": f"{cfg.backbone}-{net_cfg.image_size}",
                "training": {**summary, "epoch": epoch + 1, "history": history},
            }
            if improved:
                save_checkpoint(out_dir / "best", model, extra)
            save_checkpoint(out_dir / "last", model, extra)
            save_training_state(
                state_dir,
                model,
                optimizer,
                scheduler,
                scaler,
                epoch + 1,
                {"best_auc": best_auc, "bad_epochs": bad_epochs, "history": history},
            )
        D.barrier(ctx)
        if cfg.patience and bad_epochs >= cfg.patience:
            break
        if cfg.stop_after_epochs and epoch + 1 - start_epoch >= cfg.stop_after_epochs:
            return {"interrupted": True, "history": history}
    if preds is None and val_ds is not None:  # resumed after the last epoch: predictions are still owed
        preds = predict(ddp, val_dl, cfg, ctx)
    if writer:
        writer.close()
    if ctx.is_main:
        pd.DataFrame(history).to_csv(out_dir / "log.csv", index=False)
    return {"interrupted": False, "history": history, "predictions": preds}


# ---------------------------------------------------------------- entry point


def portable_path(path: str | Path) -> str:
    """A path as recorded in checkpoints: relative to the repository when it lies beside it (the repo,
    ../shared), from the bundle folder for GPU-machine copies, else only its last two parts, so no
    checkpoint names a folder of the machine it was trained on."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    root = REPO_ROOT.resolve()
    if path.resolve().is_relative_to(root.parent):
        return os.path.relpath(path.resolve(), root)
    if ".gpu_data" in path.parts:
        return str(Path(*path.parts[path.parts.index(".gpu_data") :]))
    return str(Path("…", *path.parts[-2:]))


def run(cfg: TrainConfig) -> dict:
    ctx = D.setup(cfg.device)
    out = Path(cfg.out)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    records = load_records(cfg)
    summary = {
        "config": asdict(cfg),
        "data": data_summary(records),
        "world_size": ctx.world_size,
        "device": torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else "cpu",
        "data_root": portable_path(cfg.data_root or datasets_root()),
    }
    preprocess = checkpoint_preprocess(cfg)
    decoded = None
    if cfg.batch_augment:
        start = time.perf_counter()
        paths = records["image_path"].tolist()
        decoded = decode_all(paths, cfg.decoded_side, cfg.workers, show_progress(ctx), applied_preprocess(cfg))
        summary["decode_seconds"] = round(time.perf_counter() - start, 1)
    if cfg.fold == "none":
        result = fit(cfg, ctx, records, None, out, summary, preprocess, decoded)
        if cfg.external and not result["interrupted"]:
            score_external(cfg, ctx, out)
        D.teardown()
        return result
    folds = range(cfg.n_folds) if cfg.fold == "all" else [int(cfg.fold)]
    oof, embeddings, result = [], [], {}
    for k in folds:
        if ctx.is_main:
            print(
                f"fold {k}: train {int((records.fold != k).sum())}, validate {int((records.fold == k).sum())}",
                file=sys.stderr,
            )
        train_df = records[records.fold != k].reset_index(drop=True)
        val_df = records[records.fold == k].reset_index(drop=True)
        train_rows = torch.from_numpy(np.flatnonzero((records.fold != k).to_numpy()))
        fold_images = decoded[train_rows] if decoded is not None else None
        result = fit(cfg, ctx, train_df, val_df, out / f"fold_{k}", summary, preprocess, fold_images)
        if result["interrupted"]:
            break
        preds = result["predictions"]
        rows = prediction_rows(val_df, preds)
        oof.append(rows)
        keep = rows["dataset"].isin(cfg.save_embeddings_for).to_numpy()
        embeddings.append((rows["image_id"].to_numpy()[keep], preds["embedding"][keep]))
    if ctx.is_main and oof and not result.get("interrupted"):
        table = pd.concat(oof)
        table[OOF_COLUMNS].to_csv(out / "oof.csv", index=False)
        ids = np.concatenate([e[0] for e in embeddings])
        emb = np.concatenate([e[1] for e in embeddings]).astype(np.float16)
        np.savez_compressed(out / "oof_embeddings.npz", image_id=ids.astype(str), embedding=emb)
        print(
            f"OOF AUC {roc_auc(table.target.astype(int), table.p_melanoma):.4f} on {len(table)} images",
            file=sys.stderr,
        )
    D.teardown()
    return result


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
