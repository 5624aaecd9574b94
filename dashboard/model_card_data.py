"""What the Model page reads from a checkpoint folder: its JSON and text files, the validation curves by
dataset and the per-dataset figures as a readable table. Missing or unreadable files give None."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from data.settings import REPO_ROOT


def checkpoint_file_json(folder: Path | None, name: str) -> dict[str, Any] | None:
    if folder is None:
        return None
    path = Path(folder) / name
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def network_summary(network: dict[str, Any]) -> str:
    """The network in a few words, from config.json's "network": the backbone and input size, and for an
    ensemble of tails on one trunk, how many and where they part."""
    text = f"**backbone** {network.get('backbone', '?')} at {network.get('image_size', '?')} px"
    if network.get("architecture") == "shared_trunk_ensemble":
        text += (
            f", **{network.get('members', '?')} trained tails** sharing the frozen trunk up to "
            f"`{network.get('shared_trunk', '?')}` (score: the mean of their logits)"
        )
    return text


def checkpoint_file_text(folder: Path | None, name: str) -> str | None:
    if folder is None:
        return None
    path = Path(folder) / name
    try:
        return path.read_text() if path.is_file() else None
    except OSError:
        return None


CURVE_KEYS = ("roc", "pr", "calibration")
# Column names a clinician can read, for the per-dataset validation table.
METRIC_NAMES = {
    "n": "images",
    "n_melanoma": "melanomas",
    "auc": "ROC AUC",
    "pauc_80": "pAUC (TPR ≥ 80%)",
    "sens_at_spec90": "sensitivity at 90% specificity",
    "spec_at_sens90": "specificity at 90% sensitivity",
    "spec_at_sens95": "specificity at 95% sensitivity",
    # at the set's own melanoma share, where a score calibrated to screening prevalence reads too low
    "calibration_ece": "calibration error (ECE) at the set's own prevalence",
}


def curve_sets(validation: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Named sets of validation curves ({roc, pr, calibration}).

    Accepts the flat layout (roc/pr/calibration at the top) and the layout with
    ``curves: {pooled: {...}, <dataset>: {...}}``; "pooled" comes first.
    """
    validation = validation or {}
    sets: dict[str, dict[str, Any]] = {}
    if any(isinstance(validation.get(k), dict) for k in CURVE_KEYS):
        sets["validation"] = {k: validation.get(k) for k in CURVE_KEYS}
    curves = validation.get("curves")
    if isinstance(curves, dict):
        for name, value in sorted(curves.items(), key=lambda kv: (kv[0] != "pooled", kv[0])):
            if isinstance(value, dict) and any(isinstance(value.get(k), dict) for k in CURVE_KEYS):
                sets[name] = value
    return sets


def per_dataset_table(validation: dict[str, Any] | None) -> pd.DataFrame:
    """One row per dataset (and "all datasets" when pooled figures exist), readable columns."""
    validation = validation or {}
    per = dict(validation.get("per_dataset") or {})
    if isinstance(validation.get("pooled"), dict):
        per = {"all datasets (pooled)": validation["pooled"], **per}
    rows = []
    for name, stats in per.items():
        if not isinstance(stats, dict):
            continue
        row: dict[str, Any] = {"dataset": name}
        for key, value in stats.items():
            label = METRIC_NAMES.get(key)
            if label is None or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            row[label] = int(value) if key in ("n", "n_melanoma") else round(float(value), 3)
            ci = stats.get(f"{key}_ci")
            if isinstance(ci, list | tuple) and len(ci) == 2:
                row[f"{label} 95% CI"] = f"{float(ci[0]):.3f}–{float(ci[1]):.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def folder_label(folder: Path) -> str:
    """The checkpoint folder as the Model page names it: relative to the project when inside it, else its name
    only (every signed-in role reads the page; the server's directory layout is the administrator's business)."""
    try:
        return Path(folder).resolve().relative_to(REPO_ROOT.resolve()).as_posix()
    except ValueError:
        return Path(folder).name
