"""The triage evaluation's result (Evaluation) and how it is written: the markdown report and the strict
JSON for the checkpoint config's "triage" key."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.triage_metrics import METRIC_LABELS, METRICS


@dataclass
class Evaluation:
    data: dict[str, Any]
    folds: list[dict[str, Any]]
    all_patients: dict[str, Any]
    ud_subset: dict[str, Any]
    ud_methods: dict[str, Any]
    outliers: dict[str, Any]
    grid_all_data: list[dict]
    settings: dict[str, Any]
    conclusion: str
    notes: list[str] = field(default_factory=list)


def _finite(value: Any) -> Any:
    """NaN/inf -> None recursively, so the JSON is strict."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def settings_json(ev: Evaluation) -> str:
    return json.dumps(_finite(ev.settings), indent=2, allow_nan=False) + "\n"


def _pct(value: float) -> str:
    return f"{value:.0%}" if np.isfinite(value) else "n/a"


def _fmt(entry: dict, digits: int = 3) -> str:
    v, (lo, hi) = entry["value"], entry["ci"]
    if not np.isfinite(v):
        return "n/a"
    text = f"{v:.{digits}f}" if abs(v) < 100 else f"{v:.0f}"
    if np.isfinite(lo):
        text += f" ({lo:.{digits}f}–{hi:.{digits}f})" if abs(v) < 100 else f" ({lo:.0f}–{hi:.0f})"
    return text


def _table(results: dict[str, dict], digits: int = 3) -> list[str]:
    lines = [
        "| strategy | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " |",
        "|---" * (len(METRICS) + 1) + "|",
    ]
    for s, res in results.items():
        cells = [_fmt(res[m], 1 if m == "reviews_per_melanoma" else digits) for m in METRICS]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    for s, res in results.items():
        key = next((k for k in res if k.startswith("difference_vs_")), None)
        if key:
            cells = [_fmt(res[key][m], 1 if m == "reviews_per_melanoma" else digits) for m in METRICS]
            lines.append(f"| {s} − {key.removeprefix('difference_vs_')} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(ev: Evaluation, title: str = "Triage evaluation: model vs ugly duckling vs combined") -> str:
    d = ev.data
    out = [
        f"# {title}",
        "",
        f"Generated {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} by `training/evaluate_triage.py`"
        + (f" from `{d['source']}`" if d["source"] else "")
        + ".",
        "",
        "## Data",
        "",
        f"- {d['rows']} lesions ({d['melanomas']} melanoma) of {d['patients']} patients, {d['folds']} "
        "patient-grouped folds (out-of-fold predictions and embeddings).",
        f"- {d['patients_2plus']} patients with ≥ 2 lesions "
        f"({d['patients_2plus_with_melanoma']} of them with "
        f"≥ 1 melanoma), {d['patients_3plus']} with ≥ 3 (where the ugly-duckling score is defined); "
        f"{d['patients_both']} patients have both a melanoma and a benign lesion ({d['patients_3plus_both']} "
        f"of them with ≥ 3 lesions); at most {d['max_lesions']} lesions per patient.",
        f"- 95% intervals: percentile bootstrap over patients ({d['n_boot']} resamples); the cross-fitted "
        "weights are held fixed inside the bootstrap, so the intervals omit the weight-selection variance.",
        "",
        "## Conclusion",
        "",
        ev.conclusion,
        "",
    ]
    out += [f"- {n}" for n in ev.notes] + ([""] if ev.notes else [])
    out += [
        "## All patients",
        "",
        "Top-k: patients with ≥ 2 lesions and ≥ 1 melanoma; concordance: patients with a melanoma and a "
        "benign lesion; lesion metrics: every lesion. The ugly-duckling-only ranking is not defined for "
        "patients with fewer than 3 lesions (see the next table); there the combined score is P(melanoma).",
        "",
        *_table(ev.all_patients),
        "",
        "## Patients with ≥ 3 lesions (ugly-duckling score defined)",
        "",
        *_table(ev.ud_subset),
        "",
        "## Cross-fitting (weight chosen on the other folds)",
        "",
        "| fold | patients | ud_method | weight_ud | concordance on the other folds |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| {f['fold']} | {f['patients']} | {f['ud_method']} | {f['weight_ud']:g} | {f['train_concordance']:.3f} |"
        for f in ev.folds
    ]
    out += [
        "",
        "Grid on all data (deployment choice):",
        "",
        "| ud_method | weight_ud | within-patient concordance |",
        "|---|---|---|",
    ]
    out += [f"| {g['ud_method']} | {g['weight_ud']:g} | {g['concordance']:.3f} |" for g in ev.grid_all_data]
    o = ev.outliers
    out += [
        "",
        "## Outlier flag",
        "",
        f"With {o['ud_method']} and z ≥ {o['threshold_z']:g}: "
        f"{o['flagged']} of {o['lesions_with_ud']} lesions "
        f"flagged; melanoma rate {_pct(o['melanoma_rate_flagged'])} among flagged vs "
        f"{_pct(o['melanoma_rate_not_flagged'])} among the others (enriched data: compare the two rates, "
        "not their level).",
        "",
        '## Deployed settings (checkpoint config "triage")',
        "",
        "```json",
        settings_json(ev).rstrip(),
        "```",
        "",
    ]
    return "\n".join(out)
