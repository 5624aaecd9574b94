"""Assemble the shipped model from a cached-trunk run: calibration, threshold, triage ranking, evidence, card.

    python -m training.assemble_default --run runs/model2 --baselines runs/eval --out model/weights/default

Reads `<run>/cv` (patient-grouped out-of-fold predictions + embeddings), `<run>/final` (the model trained on
all training sources, and its scores on the external derm7pt set), `<run>/loso_*` (leave-one-source-out
runs) and `<run>/rerun_seed*` (the CV rerun with another seed: run-to-run variation), where present. Every
figure written comes from held-out data: out-of-fold, left-out source, or the external set, which is never
used to choose anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from data.hashing import sha256_file
from data.near_duplicates import load_pairs
from model.checkpoint import CONFIG, WEIGHTS, load_checkpoint, read_config, save_checkpoint
from model.metrics import SCREENING_PREVALENCE, at_prevalence, curves, rates_at_threshold, roc_auc, summarize
from model.patient_context import features_by_patient
from training import (
    calibration,
    compare_runs,
    near_duplicates,
    patient_context,
    rephotograph_noise,
    uncertainty_signals,
    whole_patient,
)
from training.calibration import mean_logit, tta_logits
from training.loso_evidence import loso_entry, never_seen
from training.model_card import render_card
from training.recipe import DEFAULT_CPU, RecipeError, model_identity
from training.whole_patient import WHOLE_PATIENT_SOURCE

INFERENCE = {"tta": 2}
OPERATING_SENSITIVITY = 0.80  # see choose_threshold


def load_embeddings(path: Path, ids: pd.Series) -> np.ndarray:
    """The out-of-fold embedding of each id, in order; NaN rows for ids without one (a run may save them only
    for the whole-patient source, the only one they are used for)."""
    data = np.load(path)
    position = pd.Series(np.arange(len(data["image_id"])), index=data["image_id"].astype(str))
    found = position.reindex(ids.astype(str)).to_numpy()
    embedding = data["embedding"].astype(np.float32)
    out = np.full((len(ids), embedding.shape[1]), np.nan, dtype=np.float32)
    have = ~np.isnan(found)
    out[have] = embedding[found[have].astype(int)]
    return out


def choose_threshold(frame: pd.DataFrame, p: np.ndarray, sensitivity: float) -> float:
    """The calibrated probability that flags `sensitivity` of out-of-fold melanomas, every source weighted to
    the screening prevalence (so the enriched sources do not set it)."""
    weights = calibration.prevalence_weights(frame)
    y = frame["target"].to_numpy(int)
    order = np.argsort(-p)
    found = np.cumsum((weights * y)[order]) / (weights * y).sum()
    return float(p[order][np.searchsorted(found, sensitivity)])


def weighted_rates(weights: np.ndarray, y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity with each image weighted (prevalence_weights: every source at the screening
    prevalence); a score at the threshold is flagged (P >= threshold), as everywhere else."""
    sensitivity = float((weights * y * (p >= threshold)).sum() / (weights * y).sum())
    specificity = float((weights * (1 - y) * (p < threshold)).sum() / (weights * (1 - y)).sum())
    return sensitivity, specificity


def per_source(frame: pd.DataFrame, p: np.ndarray, threshold: float, n_boot: int) -> dict:
    out = {}
    for name, idx in frame.groupby("dataset").indices.items():
        sub = frame.iloc[idx]
        y, s = sub["target"].to_numpy(int), p[idx]
        stats = summarize(y, s, sub["group_id"].to_numpy(), threshold=threshold, n_boot=n_boot)
        stats["benign_above_threshold"] = float((s[y == 0] >= threshold).mean())
        stats["benign_median_p"] = float(np.median(s[y == 0]))
        stats["melanoma_median_p"] = float(np.median(s[y == 1])) if y.sum() else float("nan")
        out[name] = stats
    return out


def external_report(path: Path, scale: float, bias: float, threshold: float, n_boot: int) -> dict | None:
    if not path.exists():
        return None
    ext = pd.read_csv(path)
    y = ext["target"].to_numpy(int)
    p = calibration.apply(tta_logits(ext), scale, bias)
    stats = summarize(y, p, None, threshold=threshold, n_boot=n_boot)
    stats["benign_above_threshold"] = float((p[y == 0] >= threshold).mean())
    stats["benign_median_p"] = float(np.median(p[y == 0]))
    stats["melanoma_median_p"] = float(np.median(p[y == 1]))
    stats["curves"] = curves(y, p)
    return stats


def baseline_external(baselines: Path) -> dict:
    """The first model's AUC on derm7pt (same external images), for comparison."""
    out = {}
    path = baselines / "v1_derm7pt.npz"
    if not path.exists():
        print(f"{path}: not found, so the card leaves out v1's derm7pt AUC", file=sys.stderr)
    else:
        from data.datasets import load_dataset

        data = np.load(path)
        ext = load_dataset("derm7pt").set_index("image_id").loc[data["image_id"].astype(str)]
        p = (1 / (1 + np.exp(-data["logit"]))).mean(1)
        out["v1"] = roc_auc(ext["target"].to_numpy(int), p)
    return out


def recorded_cache(config: dict) -> Path | None:
    """The trunk cache a partially fine-tuned checkpoint was trained on; for an ensemble, the cache of the
    member trained from the shared cut (the ensemble runs from there)."""
    training = config.get("training") or {}
    runs = training.get("members") or [training]
    for summary in runs:
        settings = summary.get("config") or {}
        if settings.get("cache") and settings.get("cut") == config.get("partial_cut"):
            return Path(settings["cache"])
    return None


def metadata_sensitivity(run: Path, cache: Path | None, scale: float, bias: float) -> dict | None:
    """Does a missing site/sex/age shift the score? The final model on the external set, with its metadata
    and with every field unknown (trained with metadata dropout so that it should not). `cache`: the trunk
    cache to score from (None: the one the checkpoint records)."""
    from training.train_cached import load_cache, predict_cached

    checkpoint = run / "final" / "checkpoint"
    recorded = read_config(checkpoint)
    cache = cache or recorded_cache(recorded)
    if not recorded.get("partial_cut") or cache is None or not (cache / "derm7pt.csv").exists():
        return None  # measured on the trunk cache: a full fine-tune would need another pass over the images
    model, config = load_checkpoint(checkpoint)
    summary = json.loads((run / "final" / "summary.json").read_text())
    model.partial_cut = config["partial_cut"]
    data = load_cache(cache, ["derm7pt"], cut=config["partial_cut"])
    idx = np.arange(len(data.records))
    with_meta = calibration.apply(predict_cached(model, data, idx)["logit"], scale, bias)
    data.records[["site", "sex"]] = "unknown"
    data.records["age"] = np.nan
    without = calibration.apply(predict_cached(model, data, idx)["logit"], scale, bias)
    y = data.records["target"].to_numpy(int)
    return {
        "data": "derm7pt (external), final model",
        "auc_with_metadata": roc_auc(y, with_meta),
        "auc_without_metadata": roc_auc(y, without),
        "mean_abs_shift": float(np.abs(with_meta - without).mean()),
        "mean_shift": float((without - with_meta).mean()),
        "trained_with_meta_dropout": summary["config"].get("meta_dropout"),
    }


def loso_report(run: Path, n_boot: int) -> dict:
    out = {}
    for folder in sorted(run.glob("loso_*")):
        path = folder / "oof.csv"
        if not path.exists():
            continue
        held = folder.name.removeprefix("loso_")
        summary = folder / "summary.json"
        # the sources this run never trained on (runs before 2026-12-07 left out the source alone)
        held_out = never_seen([json.loads(summary.read_text())], held) if summary.exists() else [held]
        out[held] = loso_entry(pd.read_csv(path), held_out, n_boot)
    return out


def rerun_report(run: Path, oof: pd.DataFrame, n_boot: int) -> dict:
    """The same recipe rerun with another seed (`<run>/rerun_seed*`: other folds, other initialisation),
    compared with the CV run (`oof`) on the same images: how far one run's figures move from run to run."""
    reference = oof.assign(score=mean_logit(oof))
    return {
        folder.name: compare_runs.compare(reference, compare_runs.load_run(str(folder)), n_boot)
        for folder in sorted(run.glob("rerun_seed*"))
        if (folder / "oof.csv").exists()
    }


def whole_patient_report(oof: pd.DataFrame, embeddings: np.ndarray, baselines: Path, n_boot: int) -> dict:
    mask = (oof["dataset"] == WHOLE_PATIENT_SOURCE).to_numpy()
    frame = oof[mask].reset_index(drop=True)
    emb = embeddings[mask]
    result = patient_context.compare(frame, mean_logit(frame), emb, n_boot=n_boot)
    # The floor: the first model (in-sample on these melanomas) and an unsupervised outlier score on frozen
    # ImageNet features (nothing learned from labels).
    for name, file, kind in (
        ("first model v1 P(melanoma) (in-sample: trained on these melanomas)", "v1_isic2020_patients.npz", "p"),
        ("unsupervised: frozen ImageNet feature outlier", "imagenet_isic2020_patients.npz", "outlier"),
    ):
        path = baselines / file
        if not path.exists():
            print(f"{path}: not found, so the card leaves out the '{name}' ranking", file=sys.stderr)
            continue
        data = np.load(path)
        position = pd.Series(np.arange(len(data["image_id"])), index=data["image_id"].astype(str))
        rows = position.loc[frame["image_id"].astype(str)].to_numpy()
        if kind == "p":
            score = data["logit"][rows].mean(1)
        else:
            score = features_by_patient(np.zeros(len(rows)), data["embedding"][rows], frame["group_id"])[
                "feat_dist"
            ].to_numpy(float)
        table = whole_patient.patient_table(frame, score)
        result["rankings"][name] = whole_patient.bootstrap(table, n_boot)
        result["tables"][name] = table
    return result


def score_stability(oof: pd.DataFrame, scale: float, bias: float, threshold: float) -> dict:
    """How much a displayed score moves without the lesion changing, out of fold: whether its ± (TTA spread)
    marks wrong scores, and how far two same-day photographs of one lesion differ (the follow-up rise margin's
    floor). The Model page quotes both for the model it serves."""
    pairs = rephotograph_noise.ordered_pairs(rephotograph_noise.calibrated(oof, scale, bias))
    return {
        "uncertainty": uncertainty_signals.spread_summary(oof, scale, bias, threshold),
        "rephotograph": {"data": "HAM10000 same-day images of one lesion", **rephotograph_noise.summarise(pairs)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/model2")
    parser.add_argument("--config", type=Path, default=DEFAULT_CPU, help="the recipe: model id and version")
    parser.add_argument("--baselines", default="runs/eval")
    parser.add_argument(
        "--cache", type=Path, default=None, help="the trunk cache for the metadata check (default: the recorded one)"
    )
    parser.add_argument("--out", default="model/weights/default")
    parser.add_argument("--sensitivity", type=float, default=OPERATING_SENSITIVITY)
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args(argv)
    try:
        identity = model_identity(args.config)
    except RecipeError as exc:
        parser.error(str(exc))
    run, baselines, out = Path(args.run), Path(args.baselines), Path(args.out)

    oof = pd.read_csv(run / "cv" / "oof.csv", dtype={"image_id": str, "group_id": str})
    embeddings = load_embeddings(run / "cv" / "oof_embeddings.npz", oof["image_id"])
    y = oof["target"].to_numpy(int)
    weights = calibration.prevalence_weights(oof)
    scale, bias = calibration.fit_platt(mean_logit(oof), y, weights)
    p = calibration.apply(tta_logits(oof), scale, bias)
    p_crossfit = calibration.cross_fitted(oof, tta_logits(oof), oof["fold"].to_numpy())
    threshold = choose_threshold(oof, p, args.sensitivity)
    sens, spec = rates_at_threshold(y, p, threshold)
    w_sens, w_spec = weighted_rates(weights, y, p, threshold)
    screening = at_prevalence(w_sens, w_spec, SCREENING_PREVALENCE)

    patients = whole_patient_report(oof, embeddings, baselines, args.n_boot)
    deploy = patients["deploy_second_stage"]
    context_model = None
    if deploy:
        mask = (oof["dataset"] == WHOLE_PATIENT_SOURCE).to_numpy()
        frame = oof[mask].reset_index(drop=True)
        feats = features_by_patient(mean_logit(frame), embeddings[mask], frame["group_id"])
        context_model = patient_context.fit(feats, frame["target"].to_numpy(int))

    sources = per_source(oof, p, threshold, args.n_boot)
    pooled = summarize(y, p, oof["group_id"].to_numpy(), threshold=threshold, n_boot=args.n_boot)
    external = external_report(run / "final" / "external_derm7pt.csv", scale, bias, threshold, args.n_boot)
    reliability = calibration.weighted_reliability(p_crossfit, y, weights)
    validation = {
        "validation": "grouped 5-fold CV, out-of-fold: by patient (ISIC 2020), lesion (HAM10000), image (ISIC 2017); "
        "the known near-duplicate images share a group",
        "pooled": pooled,
        "per_dataset": sources,
        "curves": {  # a source with one class has none
            name: found
            for name, rows in {"pooled": slice(None), **oof.groupby("dataset").indices}.items()
            if (found := curves(y[rows], p[rows])) is not None
        },
        "calibration_at_screening_prevalence": {"cross_fitted": reliability, "scale": scale, "bias": bias},
        "external": {"derm7pt": external, "first_model_auc": baseline_external(baselines)},
        "leave_one_source_out": loso_report(run, args.n_boot),
        "near_duplicates": near_duplicates.report(oof, load_pairs()),
        "metadata_sensitivity": metadata_sensitivity(run, args.cache, scale, bias),
        "baseline": json.loads((run / "baseline.json").read_text()) if (run / "baseline.json").exists() else None,
        "whole_patient": {k: v for k, v in patients.items() if k not in ("tables", "second_stage_scores")},
        "rerun": rerun_report(run, oof, args.n_boot),
        "score_stability": score_stability(oof, scale, bias, threshold),
    }
    operating_point = {
        "threshold": threshold,
        "sensitivity": w_sens,
        "specificity": w_spec,
        "rule": f"calibrated P(melanoma) that flags {args.sensitivity:.0%} of out-of-fold melanomas, every source "
        "reweighted to the 1.76% screening prevalence",
        "prevalence": SCREENING_PREVALENCE,
        "ppv": screening["ppv"],
        "npv": screening["npv"],
        "reviews_per_melanoma": screening["reviews_per_melanoma"],
        "unweighted_sensitivity": sens,
        "unweighted_specificity": spec,
    }
    triage = {
        "method": "patient_context" if deploy else "logit_blend",
        "ud_method": "loo_cosine",
        "weight_ud": 0.0,
        "ud_clip": [0.0, 4.0],
        "ud_outlier_z": 2.5,
        "ud_scale_floor": 0.25,
        "min_lesions": 3,
        "chosen_by": (
            f"training/assemble_default.py {dt.date.today()}: the second stage (patient context) "
            + ("beat" if deploy else "did not beat")
            + f" P(melanoma) alone on {patients['n_patients']} complete out-of-fold patients "
            f"({patients['n_melanoma_patients']} with melanoma): share reviewed before the first melanoma "
            f"{patients['second_minus_network']['share_before']['value']:+.3f}, top-5 "
            f"{patients['second_minus_network']['top5']['value']:+.3f} (cross-fitted, second minus first)"
        ),
    }
    if context_model is not None:
        triage["context_model"] = context_model.to_dict()

    model, config = load_checkpoint(run / "final" / "checkpoint")
    model.config.logit_scale, model.config.logit_bias = scale, bias
    staging = out.with_name(out.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    extra = {
        **identity,
        "training": config.get("training"),
        "partial_cut": config.get("partial_cut"),
        # the pixel steps the tails were trained behind (e.g. colour constancy) ship with the weights
        **({"preprocess": config["preprocess"]} if config.get("preprocess") else {}),
        "inference": INFERENCE,
        "operating_point": operating_point,
        "triage": triage,
        "metrics": {
            "validation": validation["validation"],
            "pooled": {k: v for k, v in pooled.items() if k != "screening"},
            "external_derm7pt_auc": (external or {}).get("auc"),
            "whole_patient": patients["rankings"],
        },
    }
    save_checkpoint(staging, model, extra)
    (staging / "validation.json").write_text(json.dumps(validation, indent=1, default=_json) + "\n")
    (staging / "triage.json").write_text(json.dumps(triage, indent=2) + "\n")
    evidence = staging / "cv"
    evidence.mkdir()
    keep = ["image_id", "group_id", "dataset", "target", "fold", "logit_v0", "logit_v1"]
    oof[keep].round(5).to_csv(evidence / "oof.csv", index=False)
    np.savez_compressed(
        evidence / f"oof_embeddings_{WHOLE_PATIENT_SOURCE}.npz",
        image_id=oof.loc[oof["dataset"] == WHOLE_PATIENT_SOURCE, "image_id"].to_numpy(str),
        embedding=embeddings[(oof["dataset"] == WHOLE_PATIENT_SOURCE).to_numpy()].astype(np.float16),
    )
    # the CV run's settings and per-fold loss history, and the baseline's figures, as they were measured
    for source, name in ((run / "cv" / "summary.json", "summary.json"), (run / "baseline.json", "baseline.json")):
        if source.exists():
            shutil.copyfile(source, evidence / name)
    for name, table in patients["tables"].items():
        slug = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")[:48]
        table.to_csv(evidence / f"whole_patient_{slug}.csv", index=False)
    saved = json.loads((staging / CONFIG).read_text())
    (staging / "MODEL_CARD.md").write_text(render_card(saved, validation))
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    assert sha256_file(out / WEIGHTS) == saved["weights_sha256"]
    print(json.dumps({"threshold": threshold, "second_stage": deploy, "derm7pt_auc": (external or {}).get("auc")}))
    return 0


def _json(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)


if __name__ == "__main__":
    raise SystemExit(main())
