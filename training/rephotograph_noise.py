"""How far a score moves when one unchanged lesion is photographed twice: the floor under any follow-up rise.

    python -m training.rephotograph_noise --oof model/weights/default/cv/oof.csv \
        --config model/weights/default/config.json

HAM10000 often has several dermoscopic images of one lesion (the group of a HAM10000 row is its lesion id),
taken at one visit. Out of fold, both images of a lesion sit in the same fold, so neither was trained on when
the other was scored. For every ordered pair of images of one lesion (first -> second, as a follow-up would
compare them), in calibrated P(melanoma) as displayed:

- the odds ratio between the two scores (its quantiles: what a margin must exceed to be a change, not noise);
- how often an unchanged lesion would be flagged by an odds-ratio margin (data.settings.SCORE_RISE);
- how many of those flags the TTA-spread rule (model/score_change.py, as the follow-up pages apply it: a rise
  within 2 x the combined spread "may be noise") would have called possible noise.

Same-visit pairs are a lower bound: between visits lighting, device and framing change too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from data.settings import SCORE_RISE
from model import score_change
from training.calibration import apply, tta_logits

QUANTILES = (0.5, 0.8, 0.9, 0.95, 0.99)
# the deployed odds margin is always among them, so the Model page can quote its floor
MARGINS = tuple(
    sorted({2.0, 3.0, 4.0, 6.0, 8.0} | ({float(SCORE_RISE.value)} if SCORE_RISE.kind == "odds_ratio" else set()))
)


def calibrated(frame: pd.DataFrame, scale: float, bias: float) -> pd.DataFrame:
    """P(melanoma) and its TTA spread (population std over views) per image, as the predictor reports them."""
    views = tta_logits(frame)
    per_view = np.stack([apply(views[:, v], scale, bias) for v in range(views.shape[1])], axis=1)
    return frame.assign(p=apply(views, scale, bias), spread=per_view.std(1))


def ordered_pairs(frame: pd.DataFrame, dataset: str = "ham10000") -> pd.DataFrame:
    """Every ordered pair (before, after) of two images of one lesion of `dataset`."""
    images = frame.loc[frame["dataset"] == dataset, ["image_id", "group_id", "target", "p", "spread"]]
    pairs = images.merge(images, on="group_id", suffixes=("_before", "_after"))
    pairs = pairs[pairs["image_id_before"] != pairs["image_id_after"]]
    return pd.DataFrame(
        {
            "target": pairs["target_before"].astype(int).to_numpy(),
            "before": pairs["p_before"].to_numpy(),
            "after": pairs["p_after"].to_numpy(),
            "before_spread": pairs["spread_before"].to_numpy(),
            "after_spread": pairs["spread_after"].to_numpy(),
        }
    )


def summarise(pairs: pd.DataFrame) -> dict:
    """Per label (benign, melanoma): pair count, odds-ratio quantiles, share flagged per margin, and the share
    of the ×2 flags the spread rule calls possible noise."""
    out = {}
    for target, name in ((0, "benign"), (1, "melanoma")):
        rows = pairs[pairs["target"] == target]
        if rows.empty:
            continue
        before, after = rows["before"].to_numpy(), rows["after"].to_numpy()
        ratio = score_change.odds_ratio(before, after)
        within = score_change.within_spread(
            before, after, rows["before_spread"].to_numpy(), rows["after_spread"].to_numpy()
        )
        flagged = ratio > 2.0
        abs_log = np.abs(np.log(ratio))
        out[name] = {
            "ordered_pairs": len(rows),
            "odds_ratio_quantiles": {str(q): round(float(np.exp(np.quantile(abs_log, q))), 2) for q in QUANTILES},
            "flagged_share": {str(m): round(float(np.mean(ratio > m)), 3) for m in MARGINS},
            "x2_flags_called_noise_by_spread": round(float(within[flagged].mean()), 3) if flagged.any() else None,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oof", required=True, help="out-of-fold predictions (oof.csv)")
    parser.add_argument("--config", required=True, help="the checkpoint's config.json (its calibration)")
    parser.add_argument("--out", help="write the summary here as JSON too")
    args = parser.parse_args(argv)
    network = json.loads(Path(args.config).read_text())["network"]
    frame = calibrated(pd.read_csv(args.oof, dtype={"image_id": str}), network["logit_scale"], network["logit_bias"])
    summary = summarise(ordered_pairs(frame))
    text = json.dumps(summary, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
