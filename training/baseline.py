"""The baseline the trained model must beat: frozen ImageNet features + logistic regression,
in the same harness (same images, same patient-grouped folds as the CNN's out-of-fold predictions).

    python -m training.baseline --oof runs/default/cv/oof.csv [--data-root DIR] --out runs/default/baseline_oof.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from data.datasets import load_datasets
from data.metadata import MetadataEncoder
from model.network import NetworkConfig
from model.predictor import Predictor
from model.pretrained import build_network


def imagenet_features(records: pd.DataFrame, cache: Path, batch_size: int = 64) -> np.ndarray:
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        if list(data["image_id"]) == records["image_id"].tolist():
            return data["embedding"].astype(np.float32)
    net = build_network(NetworkConfig(use_metadata=False, diagnosis_classes=()))
    predictor = Predictor(net, {"model_id": "imagenet-lite0"}, device="cpu", batch_size=batch_size)
    bar = tqdm(total=len(records), unit="img", desc="ImageNet features")
    scored = predictor.predict_records(records, progress=lambda done, total: bar.update(done - bar.n))
    bar.close()
    if len(scored.errors):
        raise RuntimeError(f"{len(scored.errors)} images failed to decode: {scored.errors.head()}")
    np.savez_compressed(
        cache, image_id=records["image_id"].to_numpy(str), embedding=scored.embeddings.astype(np.float16)
    )
    return scored.embeddings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.baseline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--oof", type=Path, required=True, help="the CNN's oof.csv (gives the folds)")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    oof = pd.read_csv(args.oof, dtype={"image_id": str})
    records = load_datasets(sorted(oof["dataset"].unique()), args.data_root)
    records = records.merge(oof[["image_id", "fold"]], on="image_id", how="inner").reset_index(drop=True)
    features = imagenet_features(records, args.out.with_suffix(".features.npz"))
    meta = MetadataEncoder().encode(records)
    x = np.hstack([features, meta])
    y = records["target"].astype(int).to_numpy()
    p = np.zeros(len(records))
    for fold in sorted(records["fold"].unique()):
        test = records["fold"].to_numpy() == fold
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000, class_weight="balanced"))
        model.fit(x[~test], y[~test])
        p[test] = model.predict_proba(x[test])[:, 1]
    out = records[["image_id", "dataset", "group_id", "fold", "target"]].copy()
    out["p_melanoma"] = p
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    print(f"baseline OOF written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
