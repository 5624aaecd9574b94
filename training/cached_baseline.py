"""The baseline in the same harness: frozen ImageNet features + metadata -> logistic regression.

    python -m training.cached_baseline --cache runs/trunk_cache --out runs/model2/baseline.json

Pooled ImageNet lite0 features of the deployed view (identity) come from the trunk cache run through the
ImageNet tail (nothing trained), so the baseline sees exactly the images the network does. Out-of-fold AUC
per training source on the same patient-grouped folds, and the AUC on the external derm7pt set of a
regression fitted on all training sources (same source-balanced weights as the network).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from data.folds import assign_folds
from model.metrics import roc_auc
from model.network import NetworkConfig
from model.pretrained import build_network
from training.balancing import balanced_draw_weights
from training.partial import tail_modules
from training.train_cached import CachedData, load_cache
from training.trunk_cache import TRAIN_SOURCES

CUT = "blocks.6.0"


@torch.inference_mode()
def imagenet_features(data: CachedData, cut: str) -> np.ndarray:
    net = build_network(NetworkConfig(), imagenet=True).eval()
    out = []
    for s in range(0, len(data.features), 256):
        h = data.features[s : s + 256, 0].float()
        for module in tail_modules(net.backbone, cut):
            h = module(h)
        out.append(net.backbone.forward_head(h))
    meta = net.config.encoder.encode(data.records)
    return np.concatenate([torch.cat(out).numpy(), meta], axis=1)


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[StandardScaler, LogisticRegression]:
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=0.05, max_iter=2000).fit(scaler.transform(x), y, sample_weight=w)
    return scaler, model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="runs/trunk_cache")
    parser.add_argument("--out", default="runs/model2/baseline.json")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    data = load_cache(Path(args.cache), list(TRAIN_SOURCES), cut=CUT)
    x = imagenet_features(data, CUT)
    y = data.records["target"].astype(int).to_numpy()
    w = balanced_draw_weights(data.records, 0.15) * len(y)
    folds = assign_folds(data.records, 5, args.seed).to_numpy()
    score = np.zeros(len(y))
    for k in range(5):
        test = folds == k
        scaler, model = fit(x[~test], y[~test], w[~test])
        score[test] = model.decision_function(scaler.transform(x[test]))
    per_source = {name: roc_auc(y[idx], score[idx]) for name, idx in data.records.groupby("dataset").indices.items()}
    ext = load_cache(Path(args.cache), ["derm7pt"], cut=CUT)
    scaler, model = fit(x, y, w)
    ext_score = model.decision_function(scaler.transform(imagenet_features(ext, CUT)))
    report = {
        "baseline": "frozen ImageNet lite0 features (identity view) + metadata -> logistic regression (C=0.05), "
        "source-balanced weights",
        "oof_auc": per_source,
        "derm7pt_auc": roc_auc(ext.records["target"].astype(int).to_numpy(), ext_score),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
