"""Does the ugly-duckling score help? Model-only vs ugly-duckling-only vs combined triage, on real patients.

    python -m training.evaluate_triage --oof runs/cv/oof.csv --embeddings runs/cv/oof_embeddings.npz \\
        --out reports/triage_evaluation.md [--settings-out reports/triage_settings.json]

Inputs are the trainer's out-of-fold (patient-grouped CV) predictions: oof.csv (image_id, group_id, fold,
target, p_melanoma, …) and an npz with `image_id` and `embedding` for the rows to evaluate (ISIC 2020,
the only data with real patients). Every score is computed with model.triage_scoring — the deployed code.
The metrics live in training/triage_metrics.py, the report in training/triage_report.py.

Reported, with 95% bootstrap intervals that resample patients:
* per-patient top-1 / top-3 sensitivity: among patients with >= 2 lesions and >= 1 melanoma, the share
  whose melanoma is ranked first / in the first three of that patient's lesions;
* within-patient concordance: among patients with a melanoma and a benign lesion, the share of
  (melanoma, benign) pairs of the same patient ranked the right way round (mean over patients);
* lesion-level AUC and pAUC above 80% TPR (ISIC 2024 definition, range 0-0.2);
* lesions reviewed per melanoma found at the real 1.76% prevalence, at the threshold reaching 90%
  sensitivity (from sensitivity and specificity, since the data is enriched).

The combination weight is cross-fitted: for each fold the (ud_method, weight_ud) pair is chosen on the
other folds by within-patient concordance (what the triage ranking is for) and applied to the fold, so the
reported "combined" result never saw its own labels. The pair chosen on all data is written as JSON for
the checkpoint config's "triage" key — unless the cross-fitted result is no better than the model alone,
in which case weight_ud = 0 is written and the report says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data.errors import TriageError
from model.metrics import SCREENING_PREVALENCE
from model.triage_scoring import blend
from model.triage_settings import TRIAGE_DEFAULTS
from model.ugly_duckling import UD_METHODS
from training.triage_metrics import Patients, bootstrap, mean_finite, patient_outcomes, ud_scores
from training.triage_report import Evaluation, render_markdown, settings_json

DEFAULT_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)


class EvaluationError(TriageError, ValueError):
    """Inputs the triage evaluation cannot use (the message says which and why)."""


# ---------------------------------------------------------------- inputs


def load_inputs(oof_path: str | Path, embeddings_path: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """OOF rows that have an embedding, aligned with the embedding matrix (float32)."""
    oof_path, embeddings_path = Path(oof_path), Path(embeddings_path)
    if not oof_path.is_file():
        raise EvaluationError(f"{oof_path}: OOF file not found")
    if not embeddings_path.is_file():
        raise EvaluationError(f"{embeddings_path}: embeddings file not found")
    oof = pd.read_csv(oof_path, dtype={"image_id": str, "group_id": str})
    missing = [c for c in ("image_id", "group_id", "fold", "target", "p_melanoma") if c not in oof.columns]
    if missing:
        raise EvaluationError(f"{oof_path.name} is missing column(s): {', '.join(missing)}")
    with np.load(embeddings_path, allow_pickle=False) as npz:
        if "image_id" not in npz or "embedding" not in npz:
            raise EvaluationError(f"{embeddings_path.name}: needs arrays 'image_id' and 'embedding'")
        ids = npz["image_id"].astype(str)
        emb = npz["embedding"].astype(np.float32)
    return align(oof, ids, emb)


def align(oof: pd.DataFrame, ids: np.ndarray, emb: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    if len(ids) != len(emb):
        raise EvaluationError(f"{len(ids)} image ids but {len(emb)} embeddings")
    position = pd.Series(np.arange(len(ids)), index=pd.Index(ids.astype(str)))
    if position.index.duplicated().any():
        raise EvaluationError("duplicate image ids in the embeddings file")
    rows = oof[oof["image_id"].astype(str).isin(position.index)].copy()
    rows = rows[rows["target"].notna()]
    if rows.empty:
        raise EvaluationError("no OOF row has an embedding (do the image ids match?)")
    rows["target"] = rows["target"].astype(int)
    rows = rows.reset_index(drop=True)
    spans = rows.groupby("group_id")["fold"].nunique()
    if (spans > 1).any():
        raise EvaluationError(
            f"{int((spans > 1).sum())} patient(s) appear in more than one fold: "
            "the OOF is not patient-grouped, "
            "so cross-fitting the weight would leak"
        )
    return rows, emb[position.loc[rows["image_id"].astype(str)].to_numpy()]


# ---------------------------------------------------------------- cross-fitting


@dataclass
class Grid:
    ud_methods: Sequence[str] = ("loo_cosine", "lof")
    weights: Sequence[float] = DEFAULT_WEIGHTS

    def points(self) -> list[tuple[str, float]]:
        pts = [(self.ud_methods[0], 0.0)]  # weight 0: the model alone, whatever the method
        pts += [(m, float(w)) for m in self.ud_methods for w in sorted(self.weights) if w > 0]
        return pts


def _criterion(score: np.ndarray, y: np.ndarray, patients: Patients, pick: np.ndarray, tiebreak: np.ndarray) -> float:
    conc = patient_outcomes(score, tiebreak, y, patients)["concordance"][pick]
    return mean_finite(conc)


def choose(
    p: np.ndarray,
    ud: dict[str, np.ndarray],
    y: np.ndarray,
    patients: Patients,
    pick: np.ndarray,
    grid: Grid,
    clip: Sequence[float],
) -> tuple[tuple[str, float], float, list[dict]]:
    """Best (ud_method, weight) on the patients `pick`; ties go to the smaller weight (the simpler model)."""
    table = []
    best, best_value = grid.points()[0], -np.inf
    for method, w in grid.points():
        value = _criterion(blend(p, ud[method], w, clip), y, patients, pick, p)
        table.append({"ud_method": method, "weight_ud": w, "concordance": value})
        if np.isfinite(value) and value > best_value + 1e-12:
            best, best_value = (method, w), value
    return best, best_value, table


def evaluate(
    oof: pd.DataFrame,
    emb: np.ndarray,
    grid: Grid | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    min_lesions: int = 3,
    scale_floor: float | None = None,
    outlier_z: float | None = None,
    clip: Sequence[float] | None = None,
    source: str = "",
) -> Evaluation:
    grid = grid or Grid()
    for m in grid.ud_methods:
        if m not in UD_METHODS:
            raise EvaluationError(f"unknown ud method {m!r}; known: {', '.join(UD_METHODS)}")
    scale_floor = TRIAGE_DEFAULTS["ud_scale_floor"] if scale_floor is None else scale_floor
    outlier_z = TRIAGE_DEFAULTS["ud_outlier_z"] if outlier_z is None else outlier_z
    clip = list(TRIAGE_DEFAULTS["ud_clip"] if clip is None else clip)
    frame = oof.reset_index(drop=True)
    y = frame["target"].to_numpy(int)
    p = frame["p_melanoma"].to_numpy(float)
    patients = Patients.of(frame)
    ud = {m: ud_scores(frame, emb, patients, m, min_lesions, scale_floor) for m in grid.ud_methods}

    # Cross-fitting: each fold's weight is chosen on the other folds' patients.
    fold_of_patient = frame.groupby("group_id", sort=True)["fold"].first().loc[patients.names].to_numpy()
    combined = np.full(len(frame), np.nan)
    folds = []
    for k in sorted(np.unique(fold_of_patient)):
        train = np.flatnonzero(fold_of_patient != k)
        test = np.flatnonzero(fold_of_patient == k)
        (method, w), value, _ = choose(p, ud, y, patients, train, grid, clip)
        rows = np.concatenate([patients.members[i] for i in test])
        combined[rows] = blend(p[rows], ud[method][rows], w, clip)
        folds.append(
            {
                "fold": int(k),
                "ud_method": method,
                "weight_ud": w,
                "train_concordance": value,
                "patients": len(test),
            }
        )

    everyone = np.arange(len(patients.members))
    (dep_method, dep_w), dep_value, grid_table = choose(p, ud, y, patients, everyone, grid, clip)
    main_pick = everyone
    first = grid.ud_methods[0]
    strategies = {"model only": (p, None), "combined (cross-fitted)": (combined, p)}
    all_res = bootstrap(strategies, y, patients, main_pick, n_boot, seed, reference="model only")
    ud_pick = np.flatnonzero(patients.n >= min_lesions)
    ud_strategies = {"model only": (p, None)}
    ud_strategies.update({f"ugly duckling only ({m})": (ud[m], None) for m in grid.ud_methods})
    ud_strategies["combined (cross-fitted)"] = (combined, p)
    ud_res = bootstrap(ud_strategies, y, patients, ud_pick, n_boot, seed + 1, reference="model only")

    # Which UD method separates melanoma from the patient's other lesions better (no weight involved)?
    ud_methods_table = {m: ud_res[f"ugly duckling only ({m})"]["concordance"] for m in grid.ud_methods}

    crossfit_gain = (
        all_res["combined (cross-fitted)"]["concordance"]["value"] - all_res["model only"]["concordance"]["value"]
    )
    diff = all_res["combined (cross-fitted)"]["difference_vs_model only"]
    conc_ci = diff["concordance"]["ci"]
    # Deploy a non-zero weight only when the cross-fitted combination beat the model alone and the paired
    # bootstrap shows no sign of harm (lower bound of the gain >= 0).
    helps = bool(
        np.isfinite(crossfit_gain)
        and crossfit_gain > 0
        and dep_w > 0
        and (not np.isfinite(conc_ci[0]) or conc_ci[0] >= 0)
    )
    if helps and np.isfinite(conc_ci[0]) and conc_ci[0] > 0:
        conclusion = (
            f"The ugly-duckling score helps on this data: cross-fitted within-patient concordance "
            f"{crossfit_gain:+.3f} over the model alone (95% CI {conc_ci[0]:+.3f} to {conc_ci[1]:+.3f})."
        )
    elif helps:
        conclusion = (
            f"The ugly-duckling score may help, but the evidence is weak: cross-fitted within-patient "
            f"concordance {crossfit_gain:+.3f} over the model alone, 95% CI {conc_ci[0]:+.3f} to "
            f"{conc_ci[1]:+.3f} includes no gain."
        )
    else:
        conclusion = (
            "The ugly-duckling score does not help on this data: the cross-fitted combination is no "
            f"better than the model alone (within-patient concordance {crossfit_gain:+.3f}). "
            "Deployed weight_ud = 0: lesions are ranked by P(melanoma); the ugly-duckling score is "
            "still shown as information."
        )
        if np.isfinite(crossfit_gain) and crossfit_gain > 0:
            conclusion = conclusion.replace("is no better than", "is not reliably better than")
    weight = dep_w if helps else 0.0
    # Outlier flag (z >= ud_outlier_z) as deployed: how often, and how often it marks a melanoma.
    deployed_method = dep_method if weight > 0 else first
    z = ud[deployed_method]
    defined = np.isfinite(z)
    flagged = defined & (z >= outlier_z)
    outliers = {
        "ud_method": deployed_method,
        "threshold_z": outlier_z,
        "lesions_with_ud": int(defined.sum()),
        "flagged": int(flagged.sum()),
        "melanoma_rate_flagged": float(y[flagged].mean()) if flagged.any() else float("nan"),
        "melanoma_rate_not_flagged": float(y[defined & ~flagged].mean())
        if (defined & ~flagged).any()
        else float("nan"),
    }

    n_both = int(((patients.n_mel > 0) & (patients.n_mel < patients.n)).sum())
    settings = {
        **{k: TRIAGE_DEFAULTS[k] for k in ("method", "min_lesions")},
        "ud_method": dep_method if weight > 0 else first,
        "weight_ud": weight,
        "ud_clip": clip,
        "ud_outlier_z": outlier_z,
        "ud_scale_floor": scale_floor,
        "chosen_by": (
            f"training/evaluate_triage.py {dt.date.today().isoformat()}: max within-patient concordance over "
            f"(ud_method, weight_ud) on all {len(patients.members)} patients "
            f"({n_both} with melanoma + benign) of "
            f"{source or 'the OOF predictions'}; "
            + (
                "kept because the cross-fitted result beat the model alone"
                if helps
                else "weight 0 because the cross-fitted result did not beat the model alone"
            )
        ),
        "evaluation": {
            "crossfit_concordance_gain": crossfit_gain,
            "crossfit_concordance_gain_ci": conc_ci,
            "model_top1": all_res["model only"]["top1"]["value"],
            "combined_top1": all_res["combined (cross-fitted)"]["top1"]["value"],
            "all_data_choice": {"ud_method": dep_method, "weight_ud": dep_w, "concordance": dep_value},
        },
    }
    data = {
        "rows": len(frame),
        "melanomas": int(y.sum()),
        "patients": len(patients.members),
        "patients_2plus": int((patients.n >= 2).sum()),
        "patients_3plus": int((patients.n >= 3).sum()),
        "patients_2plus_with_melanoma": int(((patients.n >= 2) & (patients.n_mel > 0)).sum()),
        "patients_both": n_both,
        "patients_3plus_both": int(((patients.n >= 3) & (patients.n_mel > 0) & (patients.n_mel < patients.n)).sum()),
        "max_lesions": int(patients.n.max()),
        "folds": len(folds),
        "n_boot": n_boot,
        "source": source,
    }
    notes = []
    if data["patients_3plus_both"] < 30:
        notes.append(
            f"Only {data['patients_3plus_both']} patients have >= 3 lesions including a melanoma and a "
            "benign lesion: every ugly-duckling figure here has wide intervals."
        )
    big = int(((patients.n > 3) & (patients.n_mel > 0)).sum())
    notes.append(
        f"Top-3 sensitivity is 1 by construction for patients with ≤ 3 lesions; only {big} patients "
        "with a melanoma have more than 3 here."
    )
    if y.mean() > 0.2:
        notes.append(
            f"This data is enriched ({y.mean():.0%} melanoma, against {SCREENING_PREVALENCE:.2%} in "
            "screening), and each patient shows only a few of their lesions: the ugly-duckling premise "
            "(one odd lesion among many similar benign ones) is weaker here than in a full-body "
            "examination, so these results understate or misstate what UD could do in practice."
        )
    return Evaluation(data, folds, all_res, ud_res, ud_methods_table, outliers, grid_table, settings, conclusion, notes)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate_triage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--oof", type=Path, required=True, help="oof.csv from patient-grouped cross-validation")
    parser.add_argument("--embeddings", type=Path, required=True, help="npz with image_id + embedding arrays")
    parser.add_argument("--out", type=Path, required=True, help="markdown report to write")
    parser.add_argument(
        "--settings-out",
        type=Path,
        default=None,
        help="JSON for the checkpoint config's 'triage' key (default: <out>.settings.json)",
    )
    parser.add_argument("--weights", type=str, default=",".join(f"{w:g}" for w in DEFAULT_WEIGHTS))
    parser.add_argument("--ud-methods", type=str, default="loo_cosine,lof")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--title", type=str, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        oof, emb = load_inputs(args.oof, args.embeddings)
        grid = Grid(
            ud_methods=[m.strip() for m in args.ud_methods.split(",") if m.strip()],
            weights=[float(w) for w in args.weights.split(",") if w.strip()],
        )
        ev = evaluate(oof, emb, grid, n_boot=args.n_boot, seed=args.seed, source=str(args.oof))
    except (EvaluationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_markdown(ev, args.title) if args.title else render_markdown(ev))
    settings_out = args.settings_out or args.out.with_suffix(".settings.json")
    settings_out.write_text(settings_json(ev))
    print(ev.conclusion, file=sys.stderr)
    print(f"report -> {args.out}; triage settings -> {settings_out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
