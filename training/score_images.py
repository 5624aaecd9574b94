"""Score a registered dataset with a checkpoint (or plain ImageNet features), cached for evaluations.

    python -m training.score_images --dataset isic2020_patients --checkpoint model/weights/default --out runs/eval
    python -m training.score_images --dataset isic2020_patients --imagenet --out runs/eval

Writes `<out>/<name>_<dataset>.npz`: image_id, logit per TTA view, embedding (mean over views). Used to
reproduce the floor the new model must beat (the first model's ranking, and the unsupervised outlier score
on frozen ImageNet features) on complete patients.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from data.images import decode_image
from data.readers import load_dataset
from data.transforms import inference_transform
from model.checkpoint import load_checkpoint
from model.network import NetworkConfig
from model.predictor import TTA_VIEWS
from model.pretrained import build_network


@torch.inference_mode()
def score_dataset(model, config: dict, records, views: int = 2, batch: int = 8) -> dict[str, np.ndarray]:
    net_cfg = model.config
    transform = inference_transform(net_cfg.image_size, net_cfg.mean, net_cfg.std, config.get("preprocess"))
    meta_all = torch.from_numpy(net_cfg.encoder.encode(records))
    logits, embeddings = [], []
    paths = records["image_path"].tolist()
    for s in tqdm(range(0, len(paths), batch), desc="score", unit="batch", mininterval=10):
        x = torch.stack([transform(decode_image(p)) for p in paths[s : s + batch]])
        meta = meta_all[s : s + batch]
        outs = [model(view(x), meta) for view in TTA_VIEWS[:views]]
        logits.append(torch.stack([o["logit"] for o in outs], 1))
        embeddings.append(torch.stack([o["embedding"] for o in outs]).mean(0))
    return {
        "image_id": records["image_id"].to_numpy(str),
        "logit": torch.cat(logits).numpy(),
        "embedding": torch.cat(embeddings).numpy().astype(np.float32),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint")
    source.add_argument("--imagenet", action="store_true", help="frozen ImageNet features (untrained heads)")
    parser.add_argument("--name", default=None)
    parser.add_argument("--views", type=int, default=2, choices=[1, 2])
    parser.add_argument("--out", default="runs/eval")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.imagenet:
        model, config, name = build_network(NetworkConfig()).eval(), {}, args.name or "imagenet"
    else:
        model, config = load_checkpoint(args.checkpoint)
        name = args.name or str(config.get("model_id", Path(args.checkpoint).name))
    records = load_dataset(args.dataset)
    result = score_dataset(model, config, records, args.views)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}_{args.dataset}.npz"
    np.savez_compressed(path, **result)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
