"""The model's evidence as a clinician reads it: whole-patient ranking figures and the per-source audit.

Reads the checkpoint's validation.json (written by training/assemble_default.py); no Streamlit here, so the
Model page stays thin and this is tested on its own. Missing sections give empty tables, never errors:
older checkpoints do not carry them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboard.operating_point import OperatingPoint
from model.score_text import ci_text, figure_value

COMPLETE_PATIENTS = "isic2020_patients"  # the evidence's complete patients (training.whole_patient's source)
WHOLE_PATIENT_METRICS = {
    "share_before": "share of other lesions reviewed before the first melanoma",
    "top1": "melanoma ranked first",
    "top5": "melanoma in the top 5",
    "within_auc": "within-patient AUC",
    "top15_retrieval": "melanomas in the top 15",
}


def complete_patient_stats(validation: dict[str, Any] | None) -> dict[str, Any]:
    """The lesion-level figures of the complete patients (every mole of a patient), {} when absent."""
    stats = ((validation or {}).get("per_dataset") or {}).get(COMPLETE_PATIENTS)
    return stats if isinstance(stats, dict) else {}


def whole_patient(validation: dict[str, Any] | None) -> dict[str, Any]:
    section = (validation or {}).get("whole_patient")
    return section if isinstance(section, dict) else {}


def whole_patient_table(validation: dict[str, Any] | None) -> pd.DataFrame:
    """One row per ranking compared on complete patients, value (95% CI) per metric."""
    rankings = whole_patient(validation).get("rankings") or {}
    rows = []
    for name, metrics in rankings.items():
        if not isinstance(metrics, dict):
            continue
        row = {"ranking": name}
        row.update({label: ci_text(metrics.get(key)) for key, label in WHOLE_PATIENT_METRICS.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def run_to_run_note(validation: dict[str, Any] | None) -> str | None:
    """How far the whole-patient figures moved when the same recipe was trained again with another seed (the
    assembler's ``rerun`` section), so a reader can tell a real difference from a rerun's; None when not run."""
    reruns = (validation or {}).get("rerun")
    if not isinstance(reruns, dict) or not reruns:
        return None
    ranking = next(iter(reruns.values())).get("ranking") or {}
    parts = [
        f"{label} {ranking[key]['a']:.{digits}f} ({ranking[key]['diff']:+.{digits}f})"
        for key, label, digits in (("share_before", "share reviewed", 2), ("top5", "top-5", 2))
        if isinstance(ranking.get(key), dict)
    ]
    if not parts:
        return None
    return (
        "Run to run: the same training recipe with another seed gave " + ", ".join(parts) + ". Differences of "
        "that size between two rankings are noise."
    )


def mole_check_sentence(validation: dict[str, Any] | None, config: dict[str, Any] | None = None) -> str | None:
    """Beside the scores: what the threshold and the ranking did on complete patients' moles, the validation
    closest to a mole check (the pooled operating point is mostly HAM10000's); None without those figures."""
    stats = complete_patient_stats(validation)
    if stats.get("sensitivity") is None:
        return None
    text = "On complete patients' moles (every mole of a patient, the closest to a mole check) it flagged "
    text += melanomas_flagged(stats).replace(" (", " of melanomas (", 1)
    wp = whole_patient(validation)
    deployed = (wp.get("rankings") or {}).get(deployed_ranking(config), {})
    unseen = unseen_source_ranking(validation)
    unseen_wp = unseen[2] if unseen else {}
    top5 = (deployed.get("top5") or {}).get("value")
    if top5 is not None:
        text += f", and the ranking put a melanoma in the top 5 for {figure_value(top5):.0%} of patients who had one"
        unseen_top5 = (unseen_wp.get("top5") or {}).get("value")
        if unseen_top5 is not None:
            text += f" ({figure_value(unseen_top5):.0%} when trained without their source)"
    share = (deployed.get("share_before") or {}).get("value")
    random_share = wp.get("random_order_share")
    if share is not None and random_share is not None:
        # Beside the random order's figure: a share alone does not say how much the ranking helps.
        text += (
            f"; following it, a clinician looked at {figure_value(share):.0%} of a patient's moles before the first "
            f"melanoma, against {figure_value(random_share):.0%} in a random order"
        )
        unseen_share = (unseen_wp.get("share_before") or {}).get("value")
        if unseen_share is not None:
            unseen_random = unseen_wp.get("random_order_share")
            against = f" against {figure_value(unseen_random):.0%}" if unseen_random is not None else ""
            text += f" ({figure_value(unseen_share):.0%}{against} when trained without their source)"
    return text + "."


def unseen_source_ranking(validation: dict[str, Any] | None) -> tuple[str, dict, dict] | None:
    """The leave-one-source-out run that carries whole-patient figures (the complete patients scored by a
    model that never saw their source): (held-out source, its entry, its whole-patient figures), or None."""
    for held, entry in ((validation or {}).get("leave_one_source_out") or {}).items():
        wp = entry.get("whole_patient") if isinstance(entry, dict) else None
        if isinstance(wp, dict) and isinstance(wp.get("share_before"), dict):
            return held, entry, wp
    return None


def new_source_note(validation: dict[str, Any] | None) -> str | None:
    """The whole-patient figures of a run that never saw the complete patients' source (leave-one-source-out
    with the whole population left out): what a clinic whose camera and patients the model never saw may
    expect, next to the out-of-fold figures above; None when the checkpoint has no such run."""
    found = unseen_source_ranking(validation)
    if found is None:
        return None
    held, entry, wp = found
    share, top5 = wp["share_before"], wp.get("top5") or {}
    ci = share.get("ci") or []
    interval = f" ({ci[0]:.2f}–{ci[1]:.2f})" if len(ci) == 2 else ""
    return (
        f"Trained without any image of this source ({', '.join(entry.get('held_out') or [held])} left out), "
        f"the same recipe reviewed a share of {figure_value(share.get('value')):.2f}{interval} of a patient's other "
        f"lesions before the first melanoma (random order {figure_value(wp.get('random_order_share')):.2f}), top-5 "
        f"{figure_value(top5.get('value')):.2f}. Expect the ranking to be weaker than above on patients, cameras or "
        "clinics unlike the training data; check it on your own patients before relying on it."
    )


def whole_patient_figure(validation: dict[str, Any] | None, deployed: str | None = None) -> go.Figure | None:
    """Share of a patient's lesions looked at before the first melanoma, per ranking, with 95% CIs; the
    dashed line is a random order. Lower is better."""
    section = whole_patient(validation)
    rankings = section.get("rankings") or {}
    names, values, lo, hi = [], [], [], []
    for name, metrics in rankings.items():
        entry = (metrics or {}).get("share_before")
        value = figure_value(entry)
        if math.isnan(value):
            continue
        ci = (entry or {}).get("ci") or [value, value]
        names.append(name)
        values.append(value)
        lo.append(value - float(ci[0]))
        hi.append(float(ci[1]) - value)
    if not names:
        return None
    colours = ["#1f5f8b" if n == deployed else "#9aa9b8" for n in names]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            marker_color=colours,
            error_x={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
            hovertemplate="%{y}: %{x:.2f}<extra></extra>",
        )
    )
    random_share = figure_value(section.get("random_order_share"))
    if not math.isnan(random_share):
        fig.add_vline(x=random_share, line_dash="dash", line_color="#c0392b", annotation_text="random order")
    fig.update_layout(
        height=120 + 45 * len(names),
        margin={"l": 10, "r": 10, "t": 40, "b": 40},
        xaxis={"title": "share of the patient's other lesions reviewed first (lower is better)", "range": [0, 1]},
        yaxis={"autorange": "reversed"},
        title={"text": "Complete patients: how soon is the melanoma reached?", "font": {"size": 14}},
    )
    return fig


def source_audit_table(validation: dict[str, Any] | None) -> pd.DataFrame:
    """Per image source: AUC, benign lesions above the threshold, median scores; the external set last."""
    validation = validation or {}
    per = dict(validation.get("per_dataset") or {})
    external = (validation.get("external") or {}).get("derm7pt")
    if isinstance(external, dict):
        per["derm7pt (external, never trained on)"] = external
    rows = []
    for name, stats in per.items():
        if not isinstance(stats, dict) or "benign_above_threshold" not in stats:
            continue
        ci = stats.get("auc_ci") or []
        auc = f"{figure_value(stats.get('auc')):.3f}" + (f" ({ci[0]:.3f}–{ci[1]:.3f})" if len(ci) == 2 else "")
        rows.append(
            {
                "source": name,
                "images (melanomas)": f"{int(stats.get('n', 0)):,} ({int(stats.get('n_melanoma', 0)):,})",
                "ROC AUC (95% CI)": auc,
                "melanomas above threshold": melanomas_flagged(stats),
                "benign above threshold": f"{figure_value(stats['benign_above_threshold']):.0%}",
                "median P benign": f"{figure_value(stats.get('benign_median_p')):.1%}",
                "median P melanoma": f"{figure_value(stats.get('melanoma_median_p')):.1%}",
            }
        )
    return pd.DataFrame(rows)


def melanomas_flagged(stats: dict[str, Any]) -> str:
    """The threshold's sensitivity in one source, with the count it rests on ("52% (13 of 25)")."""
    sens, n_mel = stats.get("sensitivity"), int(stats.get("n_melanoma") or 0)
    if sens is None or not n_mel:
        return "–"
    return f"{figure_value(sens):.0%} ({round(figure_value(sens) * n_mel)} of {n_mel})"


def melanoma_mix_text(validation: dict[str, Any] | None) -> str:
    """ "; 59% of its melanomas are ham10000's": the source that dominates the pooled figures ("" when unknown)."""
    per = (validation or {}).get("per_dataset") or {}
    counts = {name: int(stats.get("n_melanoma") or 0) for name, stats in per.items() if isinstance(stats, dict)}
    total = sum(counts.values())
    if not total:
        return ""
    name = max(counts, key=counts.__getitem__)
    return f"; {counts[name] / total:.0%} of its melanomas are {name}'s"


def screening_calibration(validation: dict[str, Any] | None) -> dict[str, Any] | None:
    """The held-out scores' calibration curve re-weighted to screening prevalence (cross-fitted: each fold's
    scores calibrated by a fit on the other folds), with its ECE; None when the checkpoint has none."""
    section = (validation or {}).get("calibration_at_screening_prevalence")
    curve = section.get("cross_fitted") if isinstance(section, dict) else None
    if isinstance(curve, dict) and curve.get("mean_predicted") and curve.get("fraction_positive"):
        return curve
    return None


def calibration_caption(screening: dict[str, Any] | None) -> str:
    """What the Model page's calibration figure shows: at screening prevalence when the checkpoint has that
    curve, else the validation mix, where a score calibrated to screening sits below the diagonal."""
    if screening is None:
        return (
            "At the validation set's own melanoma share, not screening's: a score calibrated to the 1.76% "
            "screening prevalence sits below the diagonal here."
        )
    ece = figure_value(screening.get("ece"))
    return (
        "Held-out scores, each calibrated by a fit on the other folds, re-weighted to the 1.76% screening "
        "prevalence: dots on the diagonal mean that among lesions scored about 3%, about 3% are melanoma"
        + ("." if math.isnan(ece) else f" (calibration error {ece:.4f}).")
    )


def mole_check_point(validation: dict[str, Any] | None, op: OperatingPoint) -> tuple[OperatingPoint, int] | None:
    """The operating threshold as it did on complete patients' moles (its sensitivity and specificity there),
    and how many melanomas that rests on; None without those figures. The pooled point is mostly HAM10000's."""
    stats = complete_patient_stats(validation)
    sensitivity, specificity = figure_value(stats.get("sensitivity")), figure_value(stats.get("specificity"))
    if math.isnan(sensitivity) or math.isnan(specificity):
        return None
    point = dataclasses.replace(op, sensitivity=sensitivity, specificity=specificity)
    return point, int(stats.get("n_melanoma") or 0)


def is_calibrated(config: dict[str, Any] | None) -> bool:
    network = (config or {}).get("network") or {}
    return float(network.get("logit_scale", 1.0)) != 1.0 or float(network.get("logit_bias", 0.0)) != 0.0


def deployed_ranking(config: dict[str, Any] | None) -> str:
    method = ((config or {}).get("triage") or {}).get("method")
    return "second stage (cross-fitted)" if method == "patient_context" else "network P(melanoma)"


def spread_note(validation: dict[str, Any] | None) -> str:
    """What the ± beside a score means for this model, with its out-of-fold check when the checkpoint has one."""
    text = (
        "The ± shown with a score is its spread across the scored orientations (the image and its mirror image "
        "by default): stability to orientation, not reliability."
    )
    found = ((validation or {}).get("score_stability") or {}).get("uncertainty") or {}
    equal_score, closeness = (
        figure_value(found.get("tta_spread_error_auc_equal_score")),
        figure_value(found.get("closeness_to_threshold_error_auc")),
    )
    if math.isnan(equal_score):
        return (
            text + " Whether a wide ± marks a wrong score was not measured for this model. A stable score can still "
            "be wrong."
        )
    verdict = "did not mark" if equal_score < 0.55 else "weakly marked" if equal_score < 0.65 else "marked"
    return (
        text + f" Out of fold, at equal scores a wider spread {verdict} the scores on the wrong side of the "
        f"threshold (error AUC {equal_score:.2f}; chance 0.50)."
        + (
            ""
            if math.isnan(closeness)
            else f" A score's closeness to the threshold did better ({closeness:.2f}): the least certain scores "
            "are those near the threshold."
        )
        + " A stable score can still be wrong."
    )


def _same_day_benign(validation: dict[str, Any] | None) -> dict[str, Any]:
    return (((validation or {}).get("score_stability") or {}).get("rephotograph") or {}).get("benign") or {}


def rephotograph_share(validation: dict[str, Any] | None, margin_kind: str, margin_value: float) -> float | None:
    """The share of same-day photograph pairs of one unchanged benign lesion whose second photo already rises by
    the follow-up margin over the first (odds margins only; out of fold); None when not measured."""
    share = figure_value((_same_day_benign(validation).get("flagged_share") or {}).get(str(float(margin_value))))
    return None if margin_kind != "odds_ratio" or math.isnan(share) else share


def rephotograph_note(validation: dict[str, Any] | None, margin_kind: str, margin_value: float) -> str | None:
    """How often a second photograph of an unchanged lesion would pass the follow-up rise margin (odds margins
    only), from the checkpoint's out-of-fold same-day pairs; None when the checkpoint has no such check."""
    benign = _same_day_benign(validation)
    share = rephotograph_share(validation, margin_kind, margin_value)
    if share is None:
        return None
    return (
        f"Follow-up flags a lesion whose odds of melanoma grew more than ×{margin_value:g} since its previous "
        f"visit. Of two photographs of one unchanged benign lesion taken the same day (HAM10000, out of fold, "
        f"{int(benign.get('ordered_pairs', 0)):,} ordered pairs), the second already shows such a rise over the "
        f"first in {share:.1%} of pairs; between visits, lighting and device add more. A rise is a reason to look "
        "again, not a proven change."
    )
