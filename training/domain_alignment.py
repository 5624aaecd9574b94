"""Per-domain feature alignment at the trunk cut, measured on a population the tail never saw (an experiment;
not part of the shipped model).

Every image of a patient comes from one camera and pipeline, so whatever a source's pipeline does to the
trunk's activations it does to all of that patient's images. Here each domain's cached activations are
aligned before the tail sees them: each channel's mean and SD over the domain's clean views are mapped onto
those of all training images (AdaBN at one layer). The training domains are the sources; the held-out
population's domain is either each patient (deployable: the dashboard holds all of a patient's lesions at
once) or the whole held-out source (a clinic-wide calibration from the clinic's own images: an upper bound).

    python -m training.domain_alignment --test-domain patient --out runs/align/b52_patient \
        --config training/recipes/tail_blocks52.json --samples-per-epoch 3000
    python -m training.domain_alignment --external derm7pt --out runs/align/b52_derm7pt \
        --config training/recipes/tail_blocks52.json

With ``--external`` the tail is trained as the shipped final model is (``--fold none``, every training source)
and scored on an external source, never trained on: the clinic-wide calibration measured on another camera.
Two tails are trained: one on unaligned activations (``reference/``: the external source scored as it is, and
aligned at test time only, ``test_time/``) and one on per-source aligned activations (``aligned/``, the
external source aligned as one domain). Only the external source's images, never its labels, set its
alignment; nothing is chosen on it.

The tail is trained as ``train_cached --fold source:isic2020_patients`` trains it (the whole SIIM-ISIC 2020
population left out), on the aligned activations, and the held-out images are scored with their own
domain's alignment. ``result.json``: lesion AUC and the whole-patient figures with patient-bootstrap
intervals; ``oof.csv``: the held-out images' per-view logits.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data.datasets import EXTERNAL_ONLY
from training.loso_evidence import loso_entry
from training.train_cached import (
    CachedData,
    fit_tail,
    load_cache,
    parse_args,
    predict_cached,
    prediction_frame,
    source_out_training,
)
from training.trunk_cache import TTA_VIEW_COUNT
from training.whole_patient import WHOLE_PATIENT_SOURCE

TEST_DOMAINS = ("patient", "source")
CHUNK = 256  # images per step: float32 copies of a chunk stay small


def channel_stats(features: torch.Tensor, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Each channel's mean and SD over `rows`' clean views (the deployed TTA views) and all positions."""
    total = torch.zeros(features.shape[2], dtype=torch.float64)
    squares = torch.zeros_like(total)
    count = 0
    for start in range(0, len(rows), CHUNK):
        x = features[torch.from_numpy(rows[start : start + CHUNK]), :TTA_VIEW_COUNT].double()
        total += x.sum((0, 1, 3, 4))
        squares += (x * x).sum((0, 1, 3, 4))
        count += x.numel() // x.shape[2]
    mean = total / count
    sd = (squares / count - mean * mean).clamp_min(0).sqrt()
    return mean.float(), sd.float() + 1e-3  # the floor keeps a dead channel dead rather than dividing by 0


def align(
    features: torch.Tensor,
    rows: np.ndarray,
    source: tuple[torch.Tensor, torch.Tensor],
    target: tuple[torch.Tensor, torch.Tensor],
) -> None:
    """Map `rows`' activations (every view) from the `source` channel statistics onto the `target`'s, in place."""
    scale = (target[1] / source[1])[None, None, :, None, None]
    shift = target[0][None, None, :, None, None] - source[0][None, None, :, None, None] * scale
    for start in range(0, len(rows), CHUNK):
        r = torch.from_numpy(rows[start : start + CHUNK])
        features[r] = (features[r].float() * scale + shift).to(features.dtype)


def domains(records: pd.DataFrame, held: np.ndarray, test_domain: str) -> np.ndarray:
    """Each row's domain: its dataset; a held-out row's patient when `test_domain` is "patient"."""
    if test_domain not in TEST_DOMAINS:
        raise ValueError(f"test domain {test_domain!r}: one of {', '.join(TEST_DOMAINS)}")
    domain = records["dataset"].astype(str).to_numpy(object).copy()
    if test_domain == "patient":
        domain[held] = ("patient:" + records.loc[held, "group_id"].astype(str)).to_numpy(object)
    return domain


def align_domains(data: CachedData, train_idx: np.ndarray, domain: np.ndarray) -> None:
    """Align every domain's activations onto the training images' channel statistics."""
    target = channel_stats(data.features, train_idx)
    for name in np.unique(domain):
        rows = np.flatnonzero(domain == name)
        align(data.features, rows, channel_stats(data.features, rows), target)


def run(argv: list[str], test_domain: str, held: str, n_boot: int) -> dict:
    cfg = parse_args([*argv, "--fold", f"source:{held}"])
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    data = load_cache(Path(cfg.cache), cfg.datasets, cfg.limit_per_dataset, cfg.cut, cfg.allow_partial)
    test_mask = (data.records["dataset"] == held).to_numpy()
    if not test_mask.any():
        raise SystemExit(f"no images of {held} in {cfg.cache}")
    train_mask, left_out = source_out_training(data.records, held)
    train_idx, test_idx = np.flatnonzero(train_mask), np.flatnonzero(test_mask)
    align_domains(data, train_idx, domains(data.records, test_mask, test_domain))
    net, history = fit_tail(data, train_idx, cfg, cfg.seed, desc=f"{out.name}")
    frame = prediction_frame(data.records.iloc[test_idx], predict_cached(net, data, test_idx))
    frame.to_csv(out / "oof.csv", index=False)
    result = {
        "test_domain": test_domain,
        "left_out": left_out,
        "config": asdict(cfg),
        "history": history,
        **loso_entry(frame, left_out, n_boot),
        "seconds": round(time.time() - started, 1),
    }
    (out / "result.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    return result


def score_external(net, external: CachedData, out: Path, n_boot: int) -> dict:
    frame = prediction_frame(external.records, predict_cached(net, external, np.arange(len(external.records))))
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "oof.csv", index=False)  # compare_runs reads a run folder's oof.csv
    entry = loso_entry(frame, sorted(frame["dataset"].astype(str).unique()), n_boot)
    (out / "result.json").write_text(json.dumps(entry, indent=1, default=str) + "\n")
    return entry


def run_external(argv: list[str], external_name: str, n_boot: int) -> dict:
    """Reference and per-source aligned tails trained on every training source, scored on `external_name`."""
    if external_name not in EXTERNAL_ONLY:
        raise SystemExit(f"--external {external_name}: not an external-only source ({', '.join(EXTERNAL_ONLY)})")
    cfg = parse_args([*argv, "--fold", "none"])
    out = Path(cfg.out)
    started = time.time()
    data = load_cache(Path(cfg.cache), cfg.datasets, cfg.limit_per_dataset, cfg.cut, cfg.allow_partial)
    external = load_cache(Path(cfg.cache), [external_name], cut=cfg.cut)
    every, external_rows = np.arange(len(data.records)), np.arange(len(external.records))
    results: dict = {"external": external_name, "config": asdict(cfg)}
    net, results["history_reference"] = fit_tail(data, every, cfg, cfg.seed, desc=f"{out.name} reference")
    results["reference"] = score_external(net, external, out / "reference", n_boot)
    # the external source onto the training images' statistics, once: the aligned tail's target is the same
    target = channel_stats(data.features, every)
    align(external.features, external_rows, channel_stats(external.features, external_rows), target)
    results["test_time"] = score_external(net, external, out / "test_time", n_boot)
    align_domains(data, every, domains(data.records, np.zeros(len(every), bool), "source"))
    net, results["history_aligned"] = fit_tail(data, every, cfg, cfg.seed, desc=f"{out.name} aligned")
    results["aligned"] = score_external(net, external, out / "aligned", n_boot)
    results["seconds"] = round(time.time() - started, 1)
    (out / "result.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test-domain", choices=TEST_DOMAINS, help="the held-out source's domains (with --held-out)")
    parser.add_argument("--external", help="score this external source instead (trained as the final model)")
    parser.add_argument("--held-out", default=WHOLE_PATIENT_SOURCE, help="the source scored (never trained on)")
    parser.add_argument("--n-boot", type=int, default=1000)
    args, rest = parser.parse_known_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.external:
        result = run_external(rest, args.external, args.n_boot)
        print(json.dumps({k: result[k] for k in ("reference", "test_time", "aligned", "seconds")}, default=str))
        return 0
    if args.test_domain is None:
        parser.error("--test-domain is required without --external")
    result = run(rest, args.test_domain, args.held_out, args.n_boot)
    print(json.dumps({k: result[k] for k in ("test_domain", "auc", "whole_patient", "seconds")}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
