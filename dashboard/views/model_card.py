"""The model card: what the model is, what it was trained on, how well it did, and what it cannot do."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import components as ui
from dashboard import figures, local_results_ui, resources
from dashboard.model_card_data import (
    checkpoint_file_json,
    checkpoint_file_text,
    curve_sets,
    folder_label,
    network_summary,
    per_dataset_table,
)
from dashboard.model_evidence import (
    calibration_caption,
    deployed_ranking,
    is_calibrated,
    melanoma_mix_text,
    mole_check_point,
    new_source_note,
    rephotograph_note,
    run_to_run_note,
    screening_calibration,
    source_audit_table,
    spread_note,
    whole_patient,
    whole_patient_figure,
    whole_patient_table,
)
from dashboard.operating_point import SCREENING_PREVALENCE, operating_point, pooled_curve_point, whole_counts
from dashboard.wording import pct
from data.dataset_sources import SOURCES
from data.errors import TriageError
from data.settings import SCORE_RISE
from model.metrics import proportion_ci

DATASETS = pd.DataFrame(
    [
        {
            "dataset": source.name + (" (external test only)" if source.role else ""),
            "images": source.images,
            "citation": source.citation,
        }
        for source in SOURCES
    ]
)

LIMITATIONS = [
    "Decision support only: it ranks lesions for attention and never makes a diagnosis. A low score does not "
    "rule out melanoma; clinical and dermoscopic assessment decides.",
    "Trained and validated on dermoscopic images from public ISIC archives (mostly fair-skinned patients "
    "from Europe, Australia and the USA). Performance on darker skin types, clinical (non-dermoscopic) "
    "photographs, mucosal, nail or acral lesions, and other devices is unknown and probably lower.",
    "Most flagged lesions in practice are benign: PPV depends on prevalence (1.76% in screening, see above).",
    "The ugly-duckling score compares a lesion with the same patient's other uploaded lesions only; it is "
    "weak with fewer than about 6 lesions and undefined with fewer than 3.",
    "Saliency maps show what drove the score, approximately; they do not delineate the lesion or a tumour.",
    "Images are used at reduced resolution; very small structures may be lost.",
    "Licence: trained on CC BY-NC 4.0 data — for research and non-commercial use; not a certified medical device.",
]

st.title("Model")
st.caption(
    "The model card: what scores the lesions, what it learned from, how well it did in validation and "
    "what it cannot do."
)

folder = resources.checkpoint_folder()
config: dict = {}
problem = resources.model_problem()
if problem:
    st.warning(f"No model installed: {problem}. Lesions cannot be scored until one is.", icon=":material/warning:")
else:
    try:
        from model.checkpoint import read_config

        config = read_config(folder)
    except (TriageError, OSError) as exc:  # CheckpointError: missing, not JSON, not a checkpoint's config
        st.error(f"The checkpoint's config.json cannot be read: {exc}", icon=":material/error:")

network = config.get("network") or {}
training = config.get("training") or {}
metrics = config.get("metrics") or {}
validation = checkpoint_file_json(folder, "validation.json") if config else None
op = operating_point(config)

if config:
    st.subheader("Version", divider="gray")
    st.markdown(
        f"**Model** `{config.get('model_id') or network.get('backbone', 'unnamed')}`"
        + (f" version **{config['version']}**" if config.get("version") else "")
        + " · "
        f"**created** {str(config.get('created', 'unknown'))[:10]} · " + network_summary(network)
    )
    st.caption(
        f"Code version `{config.get('code_version', 'unknown')}` · weights SHA-256 "
        f"`{str(config.get('weights_sha256', 'unknown'))[:16]}…` · checkpoint folder `{folder_label(folder)}` · "
        f"uses patient metadata (site, age, sex): {'yes' if network.get('use_metadata', True) else 'no'}"
    )

st.subheader("Intended use", divider="gray")
st.markdown(
    "Supports a dermatologist reviewing **all of one patient's lesions** at a mole check: each dermoscopic "
    "image gets a melanoma score, P(melanoma), with its uncertainty, lesions are ranked so the most "
    "concerning are seen first, and lesions that look unlike the patient's others (“ugly ducklings”) are "
    "flagged. **It is not a diagnosis** and must not be used to decide that a lesion needs no examination."
)

st.subheader("Operating threshold and what it means in practice", divider="gray")
if not config:
    st.info("No model installed: no operating point to show.")
else:
    st.markdown(
        f"Lesions with P(melanoma) ≥ **{pct(op.threshold)}** are flagged “above threshold”"
        + (f" (chosen by: {op.chosen_by})." if op.chosen_by else ".")
    )
    if op.sensitivity is None or op.specificity is None:
        st.warning(
            "This checkpoint records no validated sensitivity/specificity at its threshold: treat its "
            "scores as unvalidated.",
            icon=":material/warning:",
        )
    else:
        with ui.metric_row():
            st.metric("Sensitivity", pct(op.sensitivity, 1), help="Melanomas flagged, in validation.")
            st.metric("Specificity", pct(op.specificity, 1), help="Benign lesions not flagged, in validation.")
            at_screening = "at screening prevalence"
            st.metric("PPV at 1.76%", pct(op.ppv, 1), help=f"Flagged lesions that are melanoma, {at_screening}.")
            st.metric("NPV at 1.76%", pct(op.npv, 2), help=f"Unflagged lesions that are benign, {at_screening}.")
            st.metric(
                "Reviews / melanoma",
                f"{op.reviews_per_melanoma:.0f}",
                help="Flagged lesions reviewed for each melanoma found (1 / PPV).",
            )
            st.metric(
                "Prevalence",
                pct(SCREENING_PREVALENCE, 2),
                help="Melanoma among imaged lesions in the full ISIC 2020 screening data (584 of 33,126).",
            )
        st.caption(
            "These are the pooled validation figures, every source re-weighted to screening prevalence"
            + melanoma_mix_text(validation)
            + ". The figures on complete patients' moles, below, are closer to a mole check."
        )
        per = whole_counts(op.per_1000())
        st.markdown(
            f"**Out of 1,000 lesions in a screening clinic**, about **{per['melanomas']}** are "
            "melanomas. "
            f"At this threshold, with the pooled figures, the model flags about **{per['flagged']}**: "
            f"**{per['found']}** melanomas and **{per['false_alarms']}** benign lesions. About "
            f"**{per['missed']}** melanoma(s) would not be flagged — which is why every lesion still needs "
            "your own assessment."
        )
        mole_check = mole_check_point(validation, op)
        if mole_check is not None:
            point, n_melanoma = mole_check
            at_check = whole_counts(point.per_1000())
            low, high = proportion_ci(round(point.sensitivity * n_melanoma), n_melanoma)
            st.warning(
                f"**With the figures of complete patients' moles** (every mole of a patient; sensitivity "
                f"{pct(point.sensitivity)} on {n_melanoma} melanomas, 95% interval {pct(low)}–{pct(high)}; "
                f"specificity {pct(point.specificity)}), the same 1,000 lesions give about "
                f"**{at_check['flagged']}** flagged: **{at_check['found']}** melanomas found, "
                f"**{at_check['missed']}** missed and **{at_check['false_alarms']}** benign lesions flagged.",
                icon=":material/groups:",
            )
        recorded = (config.get("operating_point") or {}).get("prevalence")
        if recorded and abs(float(recorded) - SCREENING_PREVALENCE) > 1e-4:
            st.caption(
                f"The checkpoint's own figures were reported at prevalence {pct(float(recorded), 2)}; "
                "those above are recomputed at 1.76%."
            )

st.subheader("Whole patients: is the melanoma looked at first?", divider="gray")
patients = whole_patient(validation)
patient_fig = whole_patient_figure(validation, deployed_ranking(config))
if patient_fig is None:
    st.info(
        "This checkpoint carries no whole-patient evaluation: its ranking of a complete patient's lesions is "
        "unvalidated.",
        icon=":material/info:",
    )
else:
    st.markdown(
        f"On **{patients.get('n_patients')} complete patients** (every lesion each has; "
        f"{patients.get('n_melanoma_patients')} with melanoma), scored out-of-fold: how many of a patient's "
        "other lesions are looked at before the first melanoma, by ranking (bars: 95% intervals over patients; "
        "dark: the ranking this dashboard uses)."
    )
    st.plotly_chart(patient_fig, key="whole_patient")
    st.dataframe(whole_patient_table(validation), hide_index=True, key="whole_patient_table")
    rerun = run_to_run_note(validation)
    if rerun:
        st.caption(rerun)
    unseen = new_source_note(validation)
    if unseen:
        st.warning(unseen, icon=":material/travel_explore:")
audit = source_audit_table(validation)
if not audit.empty:
    st.markdown("**Per image source** (out-of-fold; derm7pt is an external test set from another camera)")
    st.dataframe(audit, hide_index=True, key="source_audit")
    st.caption(
        "Benign lesions of every source should score alike: a source whose benign lesions score high is a "
        "shortcut the model learned, not melanoma. The threshold finds a different share of each source's "
        "melanomas: the complete patients (whole mole checks) are closest to this dashboard's use."
    )

st.subheader("In this clinic: how it did on your patients", divider="gray")
local_results_ui.panel(config, validation)

st.subheader("Validation", divider="gray")
sets = curve_sets(validation)
chosen = next(iter(sets), None)
if len(sets) > 1:
    chosen = st.segmented_control(
        "Curves for",
        list(sets),
        default=chosen,
        required=True,
        key="curve_set",
        help="The operating point (×) belongs to the pooled validation; per-dataset curves show how the "
        "model differs between image sources.",
    )
curves = sets.get(chosen) if chosen else None
point = pooled_curve_point(config) if chosen in ("validation", "pooled") else None
roc = figures.roc_figure(curves, point)
pr = figures.pr_figure(curves, point)
screening_cal = screening_calibration(validation) if chosen in ("validation", "pooled") else None
cal = figures.screening_calibration_figure(screening_cal) or figures.calibration_figure(curves)
if validation and (validation.get("pooled") or {}).get("auc") is not None:
    pooled = validation["pooled"]
    ci = pooled.get("auc_ci") or []
    st.markdown(
        f"{int(pooled.get('n', 0)):,} validation images ({int(pooled.get('n_melanoma', 0)):,} melanomas): "
        f"ROC AUC **{pooled['auc']:.3f}**"
        + (f" (95% CI {ci[0]:.3f}–{ci[1]:.3f})" if len(ci) == 2 else "")
        + (f" — {metrics.get('validation')}." if isinstance(metrics.get("validation"), str) else ".")
    )
point_note = ""
if point is not None and point.sensitivity is not None and point.sensitivity != op.sensitivity:
    point_note = (
        f" The × is the threshold on these curves, every image counted once (sensitivity {pct(point.sensitivity, 1)}); "
        f"the {pct(op.sensitivity, 1)} above weights every source to screening prevalence."
    )
if not any((roc, pr, cal)):
    st.info(
        "Validation curves: not available for this checkpoint (no validation.json next to it).",
        icon=":material/info:",
    )
else:
    cols = st.columns(3)
    for col, fig, name, note in (
        (cols[0], roc, "ROC", "Trade-off between melanomas found and benign lesions flagged." + point_note),
        (cols[1], pr, "Precision–recall", "Orange: what precision becomes at the real 1.76% prevalence."),
        (cols[2], cal, "Calibration", calibration_caption(screening_cal)),
    ):
        with col:
            if fig is None:
                st.info(f"{name}: not available for this checkpoint.")
            else:
                st.plotly_chart(fig, key=f"val_{name}")
                st.caption(note)
table = per_dataset_table(validation)
if not table.empty:
    st.markdown("**Per dataset**")
    st.dataframe(table, hide_index=True, key="per_dataset")
if metrics:
    with st.expander("All recorded metrics"):
        st.json(metrics)

st.subheader("Training data and licence", divider="gray")
st.markdown(
    "Real dermoscopic images from public ISIC challenge releases, licensed **CC BY-NC 4.0**. The model "
    "inherits the licence's terms: **research and non-commercial use only**."
)
st.markdown("\n".join(f"- **{r.dataset}** — {r.images}.  \n  {r.citation}" for r in DATASETS.itertuples()))
if training:
    with st.expander("Training details"):
        st.json(training)
if config.get("triage"):
    with st.expander("Triage (ranking) settings"):
        st.json(config["triage"])

st.subheader("Limitations", divider="gray")
limitations = list(LIMITATIONS)
limitations.insert(
    2,
    "P(melanoma) is calibrated to the 1.76% screening prevalence on held-out data (see 'Calibration' above); "
    "it is still an estimate from public archives, not a patient-specific risk."
    if is_calibrated(config)
    else "P(melanoma) is a score, not a calibrated risk: the training data are enriched with melanoma, so in a "
    "screening population far fewer lesions with a given score are melanomas than the number suggests.",
)
limitations.insert(3, spread_note(validation))
rise = rephotograph_note(validation, SCORE_RISE.kind, SCORE_RISE.value)
if rise:
    limitations.insert(4, rise)
reencode = (config.get("preprocess") or {}).get("reencode")
if reencode:
    limitations.insert(
        1,
        f"Scores are sensitive to image compression and resampling. This model was trained on images re-encoded "
        f"as {reencode['format']} (quality {reencode['quality']}), so every upload is re-encoded the same way "
        f"(longest side ≤ {reencode['max_side']} px) before scoring; images from other cameras and formats are "
        "still unvalidated (see the model card's 'Input preprocessing').",
    )
st.markdown("\n".join(f"- {line}" for line in limitations))

card = checkpoint_file_text(folder, "MODEL_CARD.md") if config else None
if card:
    with st.expander("Full model card (MODEL_CARD.md)"):
        st.markdown(card)
elif config:
    st.caption("No MODEL_CARD.md is shipped with this checkpoint.")
