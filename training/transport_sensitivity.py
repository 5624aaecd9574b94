"""Does a checkpoint's score survive the way images travel? Original file vs the same pixels re-encoded.

    python -m training.transport_sensitivity --checkpoint model/weights/default --n 100 --out reports/transport.json

For N images per dataset: P(melanoma) of the original file against (a) WebP quality 75 at <= 384 px (what the
first model forced on every input, and how its training images were transported) and (b) JPEG quality 60 at
<= 256 px (a cheap camera/upload path). A model that learned the lesion, not the codec, moves little; v1 moved
0.11-0.21 on average (training/codec_sensitivity.py), which is why it had to re-encode every input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from data.datasets import load_dataset
from data.transforms import with_reencode
from model.checkpoint import load_checkpoint
from model.predictor import Predictor
from training.codec_sensitivity import shift

ROUTES = {
    "webp_q75_384px": {"format": "WEBP", "quality": 75, "max_side": 384},
    "jpeg_q60_256px": {"format": "JPEG", "quality": 60, "max_side": 256},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--n", type=int, default=100, help="images per dataset")
    parser.add_argument("--datasets", nargs="+", default=["isic2020_patients", "ham10000", "isic2017", "derm7pt"])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    model, config = load_checkpoint(args.checkpoint)
    config = with_reencode(config, None)
    plain = Predictor(model, config, device="cpu")
    routes = {name: Predictor(model, with_reencode(config, r), device="cpu") for name, r in ROUTES.items()}
    report: dict = {"checkpoint": config.get("model_id"), "n_per_dataset": args.n, "tta": plain.tta, "datasets": {}}
    for name in args.datasets:
        records = load_dataset(name)
        records = records.sample(min(args.n, len(records)), random_state=0).reset_index(drop=True)
        original = plain.predict_records(records).scores["p_melanoma"].to_numpy()
        report["datasets"][name] = {
            route: shift(predictor.predict_records(records).scores["p_melanoma"].to_numpy(), original)
            for route, predictor in routes.items()
        }
        print(name, json.dumps(report["datasets"][name]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
