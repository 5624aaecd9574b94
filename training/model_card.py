"""The model card (MODEL_CARD.md) of a checkpoint assembled by training/assemble_default.py, from its
config.json and validation.json alone: every number on it is one the checkpoint carries."""

from __future__ import annotations

from collections.abc import Callable

from data.dataset_sources import SIIM_ISIC2020, SOURCES
from model.score_text import ci_text
from training.card_lines import (
    auc_text,
    flagged_text,
    goal_mark,
    lesion_matching_lines,
    loso_detail_lines,
    loso_note,
    near_duplicate_lines,
    network_lines,
    rerun_lines,
    source_weight_lines,
    stability_lines,
    whole_patient_section,
)

CITATIONS = tuple(
    source.card_line("SIIM-ISIC 2020 (the `isic2020` subset and the 80 complete `isic2020_patients`)")
    if source is SIIM_ISIC2020
    else source.card_line()
    for source in SOURCES
)
# The done-when targets, as data: the card's "Goals" table checks the evidence against them.
DONE_WHEN = {
    "share_before_max": 0.10,  # whole patients: mean share of a patient's lesions reviewed before the first melanoma
    "top5_min": 0.8,  # whole patients: a melanoma in the top 5
    "derm7pt_auc_min": 0.85,
    "oof_auc_min": 0.90,  # per training source
    "benign_above_threshold_max": 0.15,  # per training source
}


def _deployed_ranking(validation: dict) -> dict:
    wp = validation.get("whole_patient") or {}
    name = "second stage (cross-fitted)" if wp.get("deploy_second_stage") else "network P(melanoma)"
    return wp.get("rankings", {}).get(name, {})


def _external(validation: dict) -> dict:
    return (validation.get("external") or {}).get("derm7pt") or {}


def _caches(config: dict) -> list[dict]:
    summary = config.get("training") or {}
    return [m.get("cache", {}) for m in summary.get("members", [])] or [summary.get("cache", {})]


def summary_section(config: dict, validation: dict) -> list[str]:
    cal = (validation.get("calibration_at_screening_prevalence") or {}).get("cross_fitted", {})
    return [
        f"# Model card — {config.get('model_id')} v{config.get('version')}",
        "",
        "**Decision support, not a diagnosis.** The score ranks a patient's lesions for a dermatologist's review; "
        "it never replaces dermoscopic examination, clinical judgement or histopathology.",
        "",
        "## Summary",
        *network_lines(config),
        f"- Inference: {config.get('inference', {}).get('tta', 1)} TTA views (identity + horizontal flip), the "
        "same in the CLI and the dashboard; no re-encoding of inputs (trained with resampling and re-compression "
        "augmentation instead).",
        f"- Probabilities are **calibrated to the 1.76% screening prevalence** (Platt scaling on out-of-fold logits,"
        f" scale {config['network'].get('logit_scale', 1):.3f}, bias {config['network'].get('logit_bias', 0):.3f}); "
        f"cross-fitted calibration error (ECE, quantile bins, at 1.76%) {cal.get('ece', float('nan')):.4f}.",
        f"- Created {config.get('created')}; code version `{config.get('code_version')}`; weights SHA-256 "
        f"`{str(config.get('weights_sha256'))[:16]}…`.",
        "",
    ]


def changes_section(config: dict, validation: dict) -> list[str]:
    return [
        "## What changed from v1 and why",
        "v1 ranked a complete patient's moles no better than chance: ISIC 2020 images were 51% melanoma in its "
        "training data, so it learned the source (benign ISIC 2020 moles scored ~0.7). This model: (1) trains with "
        "the 80 complete ISIC 2020 patients (~1,900 real benign moles of real patients); (2) draws every source at "
        "the same 15% melanoma rate, so the source carries no information about the label; (3) hides site, sex and "
        "age at random in training (missing metadata gives sensible scores); (4) learns from resampled and "
        "re-compressed views, so no re-encoding is forced at inference; (5) calibrates its output; (6) a second "
        "stage scores each lesion relative to the patient's other lesions, deployed only if measured better.",
        "",
    ]


def whole_patient_part(config: dict, validation: dict) -> list[str]:
    return [*whole_patient_section(validation.get("whole_patient") or {}), *rerun_lines(validation.get("rerun") or {})]


def lesion_section(config: dict, validation: dict) -> list[str]:
    per = validation.get("per_dataset", {})
    ext = _external(validation)
    first_ext = (validation.get("external") or {}).get("first_model_auc", {}).get("v1")
    loso = validation.get("leave_one_source_out") or {}
    lines = [
        "## Lesion-level validation (out-of-fold, grouped 5-fold CV)",
        "Folds are grouped by patient (ISIC 2020), by lesion (HAM10000's lesion_id) and, where the source records "
        "neither, by image (ISIC 2017).",
        "",
        "| data | n (melanoma) | ROC AUC (95% CI) | melanomas above threshold | benign above threshold "
        "| median P benign / melanoma |",
        "|---|---|---|---|---|---|",
    ]
    for name, stats in per.items():
        lines.append(
            f"| {name} | {stats['n']} ({stats['n_melanoma']}) | {auc_text(stats)} | {flagged_text(stats)} | "
            f"{stats['benign_above_threshold']:.1%} | "
            f"{stats['benign_median_p']:.3f} / {stats['melanoma_median_p']:.3f} |"
        )
    if ext:
        lines.append(
            f"| **derm7pt (external, never trained on)** | {ext['n']} ({ext['n_melanoma']}) | {auc_text(ext)} | "
            f"{flagged_text(ext)} | {ext['benign_above_threshold']:.1%} | "
            f"{ext['benign_median_p']:.3f} / {ext['melanoma_median_p']:.3f} |"
        )
    lines += [
        "",
        "The per-source columns are the **source audit**: with the shortcut gone, benign lesions of every source "
        "should score alike. The threshold's sensitivity differs by source: read the melanomas column for the "
        "population closest to yours.",
        *near_duplicate_lines(validation.get("near_duplicates")),
    ]
    baseline = validation.get("baseline")
    if baseline:
        oof_auc = ", ".join(f"{k} {v:.3f}" for k, v in baseline["oof_auc"].items())
        lines.append(
            f"- Baseline in the same harness ({baseline['baseline']}): out-of-fold AUC {oof_auc}; derm7pt "
            f"{baseline['derm7pt_auc']:.3f}."
        )
    if first_ext is not None:
        lines.append(f"- v1 on the same derm7pt images: AUC {first_ext:.3f}.")
    if loso:
        lines += ["", "**Leave one source out** (trained without the source, scored on it):", ""]
        lines += ["| left-out source | n (melanoma) | ROC AUC (95% CI) |", "|---|---|---|"]
        lines += [
            f"| {k}{loso_note(k, v, per)} | {v['n']} ({v['n_melanoma']}) | {auc_text(v)} |" for k, v in loso.items()
        ]
        lines += [line for held, v in loso.items() for line in loso_detail_lines(held, v, per)]
    else:
        lines += ["", "**Leave one source out:** not run for this version (no `loso_*` runs beside the CV run).", ""]
    meta = validation.get("metadata_sensitivity")
    if meta:
        lines += [
            "",
            f"**Missing metadata** ({meta['data']}): with every site, sex and age unknown, AUC "
            f"{meta['auc_without_metadata']:.3f} against {meta['auc_with_metadata']:.3f} with them; P(melanoma) moves "
            f"by {meta['mean_abs_shift']:.4f} on average (mean shift {meta['mean_shift']:+.4f}).",
        ]
    return lines


def goals_section(config: dict, validation: dict) -> list[str]:
    """Each done-when target (DONE_WHEN) against the evidence: met or not, with the figure."""
    per = validation.get("per_dataset", {})
    ext = _external(validation)
    share = _deployed_ranking(validation)
    goal = DONE_WHEN
    goals = [
        (
            f"whole patients: share reviewed ≤ {goal['share_before_max']:.2f}",
            (share.get("share_before") or {}).get("value", 1) <= goal["share_before_max"],
            ci_text(share.get("share_before"), ".3f"),
        ),
        (
            f"whole patients: top-5 ≥ {goal['top5_min']:g}",
            (share.get("top5") or {}).get("value", 0) >= goal["top5_min"],
            ci_text(share.get("top5"), ".2f"),
        ),
        (
            f"derm7pt AUC ≥ {goal['derm7pt_auc_min']:.2f}",
            (ext.get("auc") or 0) >= goal["derm7pt_auc_min"],
            auc_text(ext),
        ),
    ]
    goals += [
        (f"{n}: OOF AUC ≥ {goal['oof_auc_min']:.2f}", s["auc"] >= goal["oof_auc_min"], auc_text(s))
        for n, s in per.items()
    ]
    goals += [
        (
            f"{n}: benign above threshold ≤ {goal['benign_above_threshold_max']:.0%}",
            s["benign_above_threshold"] <= goal["benign_above_threshold_max"],
            f"{s['benign_above_threshold']:.1%} (melanomas above it: {flagged_text(s)})",
        )
        for n, s in per.items()
    ]
    rows = [f"| {g} | {v} | {goal_mark(ok)} |" for g, ok, v in goals]
    return ["", "## Goals", "| goal | result | |", "|---|---|---|", *rows]


def operating_point_section(config: dict, validation: dict) -> list[str]:
    op = config.get("operating_point", {})
    return [
        "",
        "## Operating point",
        f"- Threshold **{op.get('threshold', float('nan')):.3f}** on calibrated P(melanoma): {op.get('rule')}.",
        f"- At 1.76% prevalence: sensitivity {op.get('sensitivity', float('nan')):.3f}, specificity "
        f"{op.get('specificity', float('nan')):.3f}, PPV {op.get('ppv', float('nan')):.3f}, NPV "
        f"{op.get('npv', float('nan')):.4f}, **{op.get('reviews_per_melanoma', float('nan')):.0f} lesions flagged per "
        "melanoma found**.",
        *source_weight_lines(validation.get("per_dataset", {})),
        "- The ranking, not the flag, is the main output: look at a patient's lesions in rank order.",
        "",
    ]


def training_data_section(config: dict, validation: dict) -> list[str]:
    partial = {k: v for cache in _caches(config) for k, v in (cache.get("partial_datasets") or {}).items()}
    return [
        "## Training data",
        "HAM10000, ISIC 2017, the ISIC 2020 subset (the 56 images also in `isic2020_patients` are used once, from "
        "the whole-patient copy) and the 80 complete ISIC 2020 patients; image counts per source in the table "
        "above (every training image is scored out-of-fold). Licence: CC BY-NC 4.0: research and non-commercial "
        "use only.",
        *(
            [
                "",
                "Not every listed image was used: the trunk cache was stopped to leave time for training on the 2-core "
                "CPU: "
                + "; ".join(f"{k}: {v['cached']:,} of {v['listed']:,}" for k, v in partial.items())
                + " (HAM10000 is listed by diagnosis, nevi last, so the images left out are nevi).",
            ]
            if partial
            else []
        ),
        "",
        "Citations:",
        "",
        *[f"- {c}" for c in CITATIONS],
        "",
    ]


def limitations_section(config: dict, validation: dict) -> list[str]:
    wp = validation.get("whole_patient") or {}
    trained_from = any(cache.get("trained_from") or cache.get("cut") for cache in _caches(config))
    return [
        "## Limitations",
        "- Public dermoscopy archives: mostly light skin, referral-centre case mix, small images (200–512 px). "
        "Other cameras, clinical photos, darker skin and acral/mucosal sites are not validated.",
        f"- The whole-patient figures rest on {wp.get('n_patients')} patients of one source "
        f"({wp.get('n_melanoma_patients')} with melanoma): wide intervals.",
        *stability_lines(validation.get("score_stability")),
        *(
            [
                "- Trained on a 2-core CPU: only the last layers were fine-tuned (see Summary); a full fine-tune on a "
                "GPU (`training/train.py`) with the same balancing is the next step for capacity."
            ]
            if trained_from
            else []
        ),
        "- Not a medical device; not evaluated prospectively.",
        "",
        *lesion_matching_lines(validation.get("lesion_matching")),
    ]


def files_section(config: dict, validation: dict) -> list[str]:
    return [
        "## Files",
        "- `model.safetensors` (fp16), `config.json` (network incl. calibration, operating point, triage settings, "
        "metrics), `validation.json` (everything above, with curves), `triage.json`.",
        "- `cv/oof.csv` (out-of-fold logits of both TTA views), `cv/oof_embeddings_isic2020_patients.npz`, "
        "`cv/whole_patient_*.csv` (per-patient ranks for every ranking compared), `cv/summary.json` (the CV run's "
        "settings and loss per epoch), `cv/baseline.json`.",
        "- Rebuild: `bash training/train_cpu.sh` (cache, CV, final, seed rerun, leave-one-source-out; for an "
        "ensemble, each member's recipe and then `training/combine_runs.py`; assemble). The folds are drawn "
        "from the code's grouping of the images: a rebuild with later code (which may group more near-duplicate "
        "images together) draws other folds, so its out-of-fold figures are a new estimate, not these numbers "
        "again. `cv/oof.csv` records this version's fold of every image.",
        "",
    ]


# The card, section by section: each reads the checkpoint's config.json and validation.json only.
SECTIONS: tuple[Callable[[dict, dict], list[str]], ...] = (
    summary_section,
    changes_section,
    whole_patient_part,
    lesion_section,
    goals_section,
    operating_point_section,
    training_data_section,
    limitations_section,
    files_section,
)


def render_card(config: dict, validation: dict) -> str:
    return "\n".join(line for section in SECTIONS for line in section(config, validation))
