"""The triage settings: how a checkpoint asks for its lesions to be ranked within a patient.

They travel in the checkpoint config under "triage" (written by training/evaluate_triage.py or the
second stage); TRIAGE_DEFAULTS apply when a checkpoint has none (weight 0: rank by P(melanoma) alone,
which is also what the evaluation chose on the real data, since the ugly-duckling score did not help
there). model/triage_scoring.py turns them into scores.
"""

from __future__ import annotations

from typing import Any

from model.patient_context import ContextModel
from model.ugly_duckling import UD_METHODS

TRIAGE_DEFAULTS: dict[str, Any] = {
    "method": "logit_blend",  # or "patient_context" (the second stage, with its fitted "context_model")
    "context_model": None,
    "ud_method": "loo_cosine",
    "weight_ud": 0.0,
    "ud_clip": [0.0, 4.0],  # only "more unusual than the patient's typical lesion" raises the score
    "ud_outlier_z": 2.5,
    "ud_scale_floor": 0.25,
    "min_lesions": 3,
    "chosen_by": "built-in default: the ugly-duckling score is shown but does not change the ranking "
    "until training/evaluate_triage.py has chosen a weight on real patients",
}
TRIAGE_METHODS = ("logit_blend", "patient_context")


def triage_settings(source: Any = None) -> dict[str, Any]:
    """TRIAGE_DEFAULTS updated with a checkpoint config's "triage" key (source: Predictor, config or dict)."""
    if source is None:
        given: dict = {}
    elif hasattr(source, "config") and isinstance(source.config, dict):
        given = source.config.get("triage") or {}
    elif isinstance(source, dict):
        given = source.get("triage", source) if "triage" in source else source
    else:
        raise TypeError(f"cannot read triage settings from {type(source).__name__}")
    unknown = set(given) - set(TRIAGE_DEFAULTS) - {"evaluation"}
    settings = {**TRIAGE_DEFAULTS, **{k: v for k, v in given.items() if k in TRIAGE_DEFAULTS}}
    if settings["method"] not in TRIAGE_METHODS:
        raise ValueError(f"unknown triage method {settings['method']!r}; known: {', '.join(TRIAGE_METHODS)}")
    if settings["method"] == "patient_context":
        if not isinstance(settings.get("context_model"), dict):
            raise ValueError("triage method patient_context needs its fitted 'context_model'")
        settings["context"] = ContextModel.from_dict(settings["context_model"])
    if settings["ud_method"] not in UD_METHODS:
        raise ValueError(f"unknown ud_method {settings['ud_method']!r}; known: {', '.join(UD_METHODS)}")
    settings["weight_ud"] = float(settings["weight_ud"])
    settings["ud_clip"] = [float(settings["ud_clip"][0]), float(settings["ud_clip"][1])]
    settings["ud_outlier_z"] = float(settings["ud_outlier_z"])
    settings["ud_scale_floor"] = float(settings["ud_scale_floor"])
    settings["min_lesions"] = max(3, int(settings["min_lesions"]))
    settings["from_checkpoint"] = bool(given)
    if unknown:
        settings["ignored_keys"] = sorted(unknown)
    return settings
