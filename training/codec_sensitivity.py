"""How much do a checkpoint's scores move when the same image arrives encoded differently?

    python -m training.codec_sensitivity --bundle .gpu_data/datasets [--checkpoint DIR] [--n 200] --out codec.json

Compares, on the same lesions, (a) the validated pipeline: the bundled images the model was trained and
cross-validated on, scored as they are; (b) the original ../shared JPEGs scored with the checkpoint's
recorded re-encoding; (c) the original JPEGs scored without it. (a) vs (b) says whether inference
reproduces the validated pixels; (a) vs (c) how sensitive the model is to compression and resampling.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from data.datasets import load_dataset
from data.transforms import with_reencode
from model.checkpoint import load_checkpoint
from model.predictor import Predictor


def shift(x: np.ndarray, y: np.ndarray) -> dict:
    d = np.abs(x - y)
    return {
        "mean_abs": float(d.mean()),
        "p95_abs": float(np.quantile(d, 0.95)),
        "max_abs": float(d.max()),
        "pearson": float(np.corrcoef(x, y)[0, 1]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.codec_sensitivity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="the bundled datasets the model was trained on")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--n", type=int, default=200, help="lesions per dataset")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    model, config = load_checkpoint(args.checkpoint)
    recorded = Predictor(model, config, device="cpu")
    plain = Predictor(model, with_reencode(config, None), device="cpu")
    report = {"preprocess": config.get("preprocess"), "n_per_dataset": args.n, "datasets": {}}
    for name in ("isic2020", "ham10000", "isic2017"):
        original = load_dataset(name).sample(args.n, random_state=0).reset_index(drop=True)
        bundled = load_dataset(name, args.bundle / name).set_index("image_id").loc[original["image_id"]].reset_index()
        validated = plain.predict_records(bundled).scores["p_melanoma"].to_numpy()
        report["datasets"][name] = {
            "original_with_recorded_preprocess": shift(
                recorded.predict_records(original).scores["p_melanoma"].to_numpy(), validated
            ),
            "original_as_is": shift(plain.predict_records(original).scores["p_melanoma"].to_numpy(), validated),
        }
        print(name, json.dumps(report["datasets"][name]))
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
