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

from data.datasets import load_dataset
from data.images import decode_image
from model.checkpoint import load_checkpoint
from model.network import NetworkConfig
from model.predictor import Predictor
from model.pretrained import build_network


def score_dataset(model, config: dict, records, views: int = 2, batch: int = 8) -> dict[str, np.ndarray]:
    """Per image: the melanoma logit of each TTA view and the embedding (mean over views), scored by the
    predictor's own loop (Predictor.score_stream: its transform, its TTA views). Any unreadable image stops
    the run: these scores are evaluation evidence, and a silently smaller set would change it."""
    threads = torch.get_num_threads()
    predictor = Predictor(model, config, device="cpu", batch_size=batch)
    torch.set_num_threads(threads)  # the caller's --threads, not the predictor's all-cores default
    paths = records["image_path"].tolist()
    with tqdm(total=len(paths), desc="score", unit="image", mininterval=10) as bar:
        stream = predictor.score_stream(
            [lambda path=path: decode_image(path) for path in paths],
            records,
            tta=views,
            progress=lambda done, _total: bar.update(done - bar.n),
            workers=1,
        )
    if stream.errors:
        i, reason = stream.errors[0]
        raise SystemExit(f"{paths[i]}: {reason} ({len(stream.errors)} image(s) could not be scored)")
    return {
        "image_id": records["image_id"].to_numpy(str),
        "logit": stream.predictions.view_logits,
        "embedding": stream.predictions.embedding.astype(np.float32),
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
    parser.add_argument(
        "--csv", type=Path, default=None, help="also write the records + logit_v<k> columns (the trainers' format)"
    )
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
    if args.csv:
        prediction_table(records, result).to_csv(args.csv, index=False)
        print(args.csv)
    return 0


def prediction_table(records, result: dict[str, np.ndarray]):
    """The records with one logit_v<k> column per TTA view, in the trainers' out-of-fold format (what
    training.assemble_default reads as an external set's scores)."""
    table = records.drop(columns=["path"], errors="ignore").reset_index(drop=True).copy()
    if list(result["image_id"].astype(str)) != list(table["image_id"].astype(str)):
        raise ValueError("scores and records are not in the same order")
    for k in range(result["logit"].shape[1]):
        table[f"logit_v{k}"] = result["logit"][:, k]
    return table


if __name__ == "__main__":
    raise SystemExit(main())
