"""Train the tail of the network on cached trunk activations (see training/partial.py): CV, final, LOSO.

    python -m training.train_cached --cache runs/trunk_cache --out runs/model2/cv --fold all
    python -m training.train_cached --cache runs/trunk_cache --out runs/model2/final --fold none
    python -m training.train_cached --cache runs/trunk_cache --out runs/model2/loso_ham --fold source:ham10000

What it does against the source shortcut (training/balancing.py says why):
- source balancing: each epoch draws `samples_per_epoch` images so that every source has the same melanoma
  rate (`balance_prevalence`);
- metadata dropout: site, sex and age are each hidden with probability `meta_dropout`;
- augmented views made by resampling and re-compression (training/trunk_cache.py), so no re-encoding is
  needed at inference.

Out-of-fold predictions come from the last epoch of a fixed schedule on patient-grouped folds (a patient,
in either ISIC 2020 dataset, never sits in two folds): nothing is selected on the fold being predicted.
Per held-out image the two deployed TTA views' logits are kept (logit_v0, logit_v1), so calibration can be
fitted on exactly what the deployed predictor computes.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from data.datasets import EXTERNAL_ONLY, combine, population_of
from data.folds import assign_folds
from data.schema import DIAGNOSES
from model.checkpoint import save_checkpoint
from model.network import MelanomaNet, NetworkConfig
from model.pretrained import build_network
from training.balancing import SOURCE_SHARE_POWER, balanced_draw_weights, metadata_dropout
from training.partial import freeze_trunk, modules_between, tail_forward, tail_modules, tail_parameters
from training.recipe import parse_config
from training.trunk_cache import TRAIN_SOURCES, TTA_VIEW_COUNT
from training.within_patient import pair_draw_weights, ranking_loss_after, within_patient_pairs

IGNORE_INDEX = -100


@dataclass
class CachedTrainConfig:
    cache: str = "runs/trunk_cache"
    out: str = "runs/model2"
    datasets: list[str] = field(default_factory=lambda: list(TRAIN_SOURCES))
    external: list[str] = field(default_factory=lambda: ["derm7pt"])
    fold: str = "all"  # all | none | <k> | source:<dataset>
    cut: str = "blocks.6.0"  # train from here (at or after the cache's cut); see training/partial.py
    n_folds: int = 5
    seed: int = 42
    epochs: int = 8
    samples_per_epoch: int = 8000
    batch_size: int = 64
    lr: float = 1e-3
    tail_lr_scale: float = 0.3  # the pretrained tail moves slower than the fresh heads
    weight_decay: float = 1e-2
    warmup_epochs: float = 0.5
    balance_prevalence: float = 0.15
    source_share_power: float = SOURCE_SHARE_POWER  # a source's share of draws ~ its size ** this
    meta_dropout: float = 0.3
    diagnosis_loss_weight: float = 0.3
    # within-patient ranking (training/within_patient.py): this many (melanoma, same-patient benign) pairs are
    # added to every batch, their logistic ranking loss weighted so; 0 = off (the shipped recipes)
    pair_loss_weight: float = 0.0
    pairs_per_batch: int = 16
    dropout: float = 0.3
    limit_per_dataset: int | None = None
    allow_partial: bool = False  # use the rows of an interrupted cache that are done (recorded in the summary)


# ---------------------------------------------------------------- data


@dataclass
class CachedData:
    records: pd.DataFrame  # combined, deduplicated; `row` indexes `features`
    features: torch.Tensor  # (n, views, C, H, W) float16
    cache_meta: dict


@torch.inference_mode()
def advance_cache(folder: Path, name: str, meta: dict, cut: str, rows: int) -> Path:
    """`<name>@<cut>.npy`: the first `rows` cached activations run through the frozen blocks up to `cut`,
    made once (and again when more rows have been cached)."""
    source = folder / f"{name}.npy"
    if cut == meta["cut"]:
        return source
    target = folder / f"{name}@{cut}.npy"
    if target.exists() and np.load(target, mmap_mode="r").shape[0] == rows:
        return target
    net = build_network(NetworkConfig(backbone=meta["backbone"], image_size=meta["image_size"]), imagenet=True)
    between = modules_between(net.backbone.eval(), meta["cut"], cut).eval()
    array = np.load(source, mmap_mode="r")[:rows]
    n, views = array.shape[:2]
    probe = between(torch.zeros(1, *array.shape[2:]))
    tmp = folder / f"{name}@{cut}.tmp.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(n, views, *probe.shape[1:]))
    for s in tqdm(range(0, n, 64), desc=f"advance {name} to {cut}", mininterval=15):
        x = torch.from_numpy(np.array(array[s : s + 64], dtype=np.float32))
        h = between(x.flatten(0, 1))
        out[s : s + 64] = h.reshape(len(x), views, *h.shape[1:]).numpy().astype(np.float16)
    out.flush()
    del out
    tmp.replace(target)
    return target


def load_cache(
    folder: Path, datasets: list[str], limit: int | None = None, cut: str | None = None, allow_partial: bool = False
) -> CachedData:
    meta = json.loads((folder / "cache.json").read_text())
    cut = cut or meta["cut"]
    frames, arrays = [], []
    partial = {}
    for name in datasets:
        frame = pd.read_csv(folder / f"{name}.csv", dtype={"image_id": str, "group_id": str})
        done = int((folder / f"{name}.progress").read_text())
        if done < len(frame):
            if not allow_partial:
                raise RuntimeError(
                    f"{folder}: the cache of {name} is incomplete ({done}/{len(frame)}); rerun trunk_cache"
                )
            partial[name] = {"cached": done, "listed": len(frame)}
            frame = frame.iloc[:done].copy()
        array = np.load(advance_cache(folder, name, meta, cut, done), mmap_mode="r")
        frame["_array"] = len(arrays)
        frame["_row"] = np.arange(len(frame))
        if limit:
            frame = frame.sample(min(limit, len(frame)), random_state=0)
        frames.append(frame)
        arrays.append(array)
    records = combine(frames)
    views = min(a.shape[1] for a in arrays)
    features = torch.empty((len(records), views, *arrays[0].shape[2:]), dtype=torch.float16)
    for k, array in enumerate(arrays):
        mask = (records["_array"] == k).to_numpy()
        rows = records.loc[mask, "_row"].to_numpy()
        features[torch.from_numpy(np.flatnonzero(mask))] = torch.from_numpy(np.ascontiguousarray(array[rows, :views]))
    meta = {**meta, "trained_from": cut, "partial_datasets": partial}
    records = records.drop(columns=["_array", "_row"]).reset_index(drop=True)
    records["target"] = records["target"].astype("Int64")
    records["age"] = pd.to_numeric(records["age"], errors="coerce")
    return CachedData(records, features, meta)


# ---------------------------------------------------------------- model


def new_network(cache_meta: dict, cfg: CachedTrainConfig) -> MelanomaNet:
    config = NetworkConfig(backbone=cache_meta["backbone"], image_size=cache_meta["image_size"], dropout=cfg.dropout)
    net = build_network(config, imagenet=True)
    net.partial_cut = cache_meta["trained_from"]
    freeze_trunk(net, net.partial_cut)
    return net


def set_train_mode(net: MelanomaNet, train: bool) -> None:
    net.eval()
    if train:
        for module in tail_modules(net.backbone, net.partial_cut):
            module.train()
        for module in (net.meta_branch, net.dropout):
            if module is not None:
                module.train()


def fit_tail(
    data: CachedData, train_idx: np.ndarray, cfg: CachedTrainConfig, seed: int, desc: str
) -> tuple[MelanomaNet, list[dict]]:
    torch.manual_seed(seed)
    random.seed(seed)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = new_network(data.cache_meta, cfg)
    records = data.records.iloc[train_idx]
    encoder = net.config.encoder
    meta_all = torch.from_numpy(encoder.encode(records))
    target_all = torch.tensor(records["target"].astype(int).to_numpy(), dtype=torch.float32)
    diag_idx = {d: i for i, d in enumerate(DIAGNOSES)}
    diagnosis_all = torch.tensor([diag_idx.get(d, IGNORE_INDEX) for d in records["diagnosis"]])
    draw = balanced_draw_weights(records, cfg.balance_prevalence, cfg.source_share_power)
    pairs = within_patient_pairs(records) if cfg.pair_loss_weight > 0 else np.zeros((0, 2), dtype=np.int64)
    pair_draw = pair_draw_weights(pairs)
    heads = [
        p for m in (net.meta_branch, net.melanoma_head, net.diagnosis_head) if m is not None for p in m.parameters()
    ]
    head_ids = {id(p) for p in heads}
    tail = [p for p in tail_parameters(net, net.partial_cut) if id(p) not in head_ids]
    optimizer = torch.optim.AdamW(
        [{"params": tail, "lr": cfg.lr * cfg.tail_lr_scale}, {"params": heads, "lr": cfg.lr}],
        weight_decay=cfg.weight_decay,
    )
    steps_per_epoch = math.ceil(cfg.samples_per_epoch / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    decay = max(1, total - warmup)  # a schedule shorter than its warm-up (a smoke run) has no decay to divide by
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / decay)),
    )
    views = data.features.shape[1]
    history = []
    bar = tqdm(total=total, desc=desc, unit="step", mininterval=15)
    for epoch in range(cfg.epochs):
        set_train_mode(net, True)
        picks = rng.choice(len(records), size=steps_per_epoch * cfg.batch_size, replace=True, p=draw)
        losses = []
        for step in range(steps_per_epoch):
            local = picks[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            n = len(local)
            if len(pairs):  # the pairs ride in the same forward pass, after the pointwise batch
                chosen = pairs[rng.choice(len(pairs), size=cfg.pairs_per_batch, p=pair_draw)]
                local = np.concatenate([local, chosen[:, 0], chosen[:, 1]])
            view = torch.from_numpy(rng.integers(0, views, size=len(local)))
            rows = torch.from_numpy(train_idx[local])
            h = data.features[rows, view].float()
            meta = metadata_dropout(meta_all[local], encoder.names, cfg.meta_dropout, generator)
            out = tail_forward(net, h, meta)
            loss = F.binary_cross_entropy_with_logits(out["logit"][:n], target_all[local[:n]])
            diagnosis = diagnosis_all[local[:n]]
            if cfg.diagnosis_loss_weight and (diagnosis != IGNORE_INDEX).any():
                ce = F.cross_entropy(out["diagnosis_logits"][:n], diagnosis, ignore_index=IGNORE_INDEX, reduction="sum")
                loss = loss + cfg.diagnosis_loss_weight * ce / n
            if len(pairs):
                loss = loss + cfg.pair_loss_weight * ranking_loss_after(out["logit"], n)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            bar.update(1)
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses))})
        bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
    bar.close()
    set_train_mode(net, False)
    return net, history


@torch.inference_mode()
def predict_cached(net: MelanomaNet, data: CachedData, idx: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    """Logits of the deployed TTA views (0: identity, 1: horizontal flip) and the mean embedding."""
    set_train_mode(net, False)
    records = data.records.iloc[idx]
    meta = torch.from_numpy(net.config.encoder.encode(records))
    logits, embeddings = [], []
    for s in range(0, len(idx), batch):
        rows = torch.from_numpy(idx[s : s + batch])
        view_logits, view_embeddings = [], []
        for v in range(TTA_VIEW_COUNT):
            out = tail_forward(net, data.features[rows, v].float(), meta[s : s + batch])
            view_logits.append(out["logit"])
            view_embeddings.append(out["embedding"])
        logits.append(torch.stack(view_logits, 1))
        embeddings.append(torch.stack(view_embeddings).mean(0))
    logit = torch.cat(logits).numpy() if logits else np.zeros((0, TTA_VIEW_COUNT))
    embedding = torch.cat(embeddings).numpy() if embeddings else np.zeros((0, net.embedding_dim))
    return {"logit": logit, "embedding": embedding}


def prediction_frame(records: pd.DataFrame, pred: dict[str, np.ndarray]) -> pd.DataFrame:
    cols = ["image_id", "group_id", "dataset", "target", "site", "sex", "age", "diagnosis"]
    frame = records[cols].reset_index(drop=True).copy()
    for v in range(TTA_VIEW_COUNT):
        frame[f"logit_v{v}"] = pred["logit"][:, v]
    frame["p_raw"] = (1 / (1 + np.exp(-pred["logit"]))).mean(1)
    return frame


def save_embeddings(path: Path, frame: pd.DataFrame, embedding: np.ndarray) -> None:
    np.savez_compressed(path, image_id=frame["image_id"].to_numpy(str), embedding=embedding.astype(np.float16))


# ---------------------------------------------------------------- runs


def source_out_training(records: pd.DataFrame, held: str) -> tuple[np.ndarray, list[str]]:
    """The training rows of a leave-one-source-out run, and the datasets left out: the whole population of
    the held-out source (isic2020_patients goes with the isic2020 subset, or the model has seen the source),
    and any image sharing a group with a held-out one (a near-duplicate copy in another source)."""
    population = records["dataset"].astype(str).map(population_of)
    left_out = population == population_of(held)
    held_groups = set(records.loc[records["dataset"] == held, "group_id"])
    train = ~left_out & ~records["group_id"].isin(held_groups)
    return train.to_numpy(), sorted(records.loc[left_out, "dataset"].astype(str).unique())


def run(cfg: CachedTrainConfig) -> dict:
    if set(cfg.datasets) & EXTERNAL_ONLY:
        raise SystemExit(f"{sorted(set(cfg.datasets) & EXTERNAL_ONLY)}: external test data, never trained on")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    data = load_cache(Path(cfg.cache), cfg.datasets, cfg.limit_per_dataset, cfg.cut, cfg.allow_partial)
    records = data.records
    folds = assign_folds(records, cfg.n_folds, cfg.seed).to_numpy()
    summary: dict = {"config": asdict(cfg), "cache": data.cache_meta, "n_images": len(records), "folds": []}
    if cfg.fold.startswith("source:"):
        held = cfg.fold.split(":", 1)[1]
        test_mask = (records["dataset"] == held).to_numpy()
        if not test_mask.any():
            raise SystemExit(f"--fold {cfg.fold}: no images of {held}")
        train_mask, summary["held_out"] = source_out_training(records, held)
        plan = [("loso_" + held, np.flatnonzero(train_mask), np.flatnonzero(test_mask))]
    elif cfg.fold == "none":
        plan = [("final", np.arange(len(records)), np.zeros(0, dtype=int))]
    else:
        ks = range(cfg.n_folds) if cfg.fold == "all" else [int(cfg.fold)]
        plan = [(f"fold{k}", np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in ks]
    predictions, embeddings = [], []
    for name, train_idx, test_idx in plan:
        net, history = fit_tail(data, train_idx, cfg, cfg.seed, desc=name)
        summary["folds"].append({"name": name, "n_train": len(train_idx), "n_test": len(test_idx), "history": history})
        if len(test_idx):
            pred = predict_cached(net, data, test_idx)
            frame = prediction_frame(records.iloc[test_idx], pred)
            frame["fold"] = name
            predictions.append(frame)
            embeddings.append(pred["embedding"])
        if cfg.fold == "none":
            # the cache's pixel steps travel with the weights, so the predictor sees what the tail was trained on
            preprocess = {"preprocess": data.cache_meta["preprocess"]} if data.cache_meta.get("preprocess") else {}
            save_checkpoint(
                out / "checkpoint", net, {"training": summary, "partial_cut": net.partial_cut, **preprocess}
            )
            for ext in cfg.external:
                ext_data = load_cache(Path(cfg.cache), [ext], cut=cfg.cut)
                pred = predict_cached(net, ext_data, np.arange(len(ext_data.records)))
                frame = prediction_frame(ext_data.records, pred)
                frame.to_csv(out / f"external_{ext}.csv", index=False)
    if predictions:
        oof = pd.concat(predictions, ignore_index=True)
        oof.to_csv(out / "oof.csv", index=False)
        save_embeddings(out / "oof_embeddings.npz", oof, np.concatenate(embeddings))
    summary["seconds"] = round(time.time() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def parse_args(argv: list[str] | None = None) -> CachedTrainConfig:
    """Defaults, then a recipe's "train_cached" section (--config, training/recipes/), then the flags given."""
    return parse_config(
        CachedTrainConfig,
        "train_cached",
        argv,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    summary = run(parse_args(argv))
    print(json.dumps({k: summary[k] for k in ("n_images", "seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
