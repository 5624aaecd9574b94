"""Training throughput on this machine's CPU at the default recipe's settings (printed, not asserted).

    python -m bench.train_cpu_speed [--steps 6] [--batch-size 32]

Runs the real trainer (real ISIC 2020 JPEGs, augmentation, metadata branch, AdamW) for two short epochs
and reports the second (the first pays for worker start-up), then projects the wall time of the default
recipe (training/train_default.sh: 8 epochs × (final model + 5 folds)) at that rate.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch

from bench.triage_speed import machine
from training.train import main as train_main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        train_main(
            [
                "--out",
                out,
                "--datasets",
                "isic2020",
                "--fold",
                "none",
                "--epochs",
                "2",
                "--limit-per-dataset",
                str(args.steps * args.batch_size + args.batch_size),
                "--max-steps-per-epoch",
                str(args.steps),
                "--batch-size",
                str(args.batch_size),
                "--image-size",
                str(args.image_size),
                "--workers",
                "2",
                "--device",
                "cpu",
            ]
        )
        epochs = [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]
    rate = epochs[-1]["images_per_s"]
    recipe_images = 8 * (12916 + 5 * 10333)  # 8 epochs: final model on all images + 5 folds on 4/5 each
    print(
        json.dumps(
            {
                "train_images_per_s": round(rate, 2),
                "image_size": args.image_size,
                "batch_size": args.batch_size,
                "cpu": machine()["cpu"],
                "cores": os.cpu_count(),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "projected_default_recipe_hours": round(recipe_images / rate / 3600, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
