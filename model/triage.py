"""Whole-patient triage: score every lesion, find the "ugly duckling", rank what to look at first.

Importable without Streamlit; the dashboard, the predict CLI and training/evaluate_triage.py all use the
same functions here, so the numbers a clinician sees are the numbers that were evaluated.

Ugly-duckling (UD) score
    A lesion's outlyingness among the patient's OTHER lesions in the model's embedding space: the cosine
    distance between its (L2-normalised) embedding and the mean of the patient's other lesions
    (leave-one-out), turned into a robust z-score within the patient:
        z_i = (d_i - median(d)) / max(1.4826 * MAD(d), scale_floor * median(d))
    The floor keeps a patient whose lesions are all equally far apart (MAD ~ 0, common with 3-4 lesions)
    from producing huge z-scores out of noise (0.25 ~ the median MAD/median ratio seen on real ISIC 2020
    patients; with it ~6% of lesions reach z >= 2.5 instead of ~10% with 0.1). With fewer than
    `min_lesions` (3) lesions there is no "rest of the patient" to compare with: the score is NaN and a
    note says so; nothing is invented. Per-patient LOF (as some ISIC 2024 solutions used) is available as
    ud_method="lof". On the real ISIC 2020 patients (out-of-fold, default model) neither separates
    melanomas from the same patient's benign lesions (within-patient concordance 0.43 and 0.48, see
    training/evaluate_triage.py): in that enriched subset a patient's melanoma is rarely the odd one out.

Triage score ("logit_blend")
    triage = sigmoid(logit(P(melanoma)) + weight_ud * clip(z, ud_clip))
    i.e. each unit of UD z multiplies the odds by exp(weight_ud). With weight_ud = 0 (or a NaN UD score,
    fewer than 3 lesions) the triage score IS P(melanoma), so it stays comparable across patients.
    The parameters live in the checkpoint config under "triage" (TRIAGE_DEFAULTS when absent: weight 0,
    which is also what the evaluation chose on the real data, since UD did not help there).

Speed (CPU)
    triage_patient scores through Predictor.score_stream, the same decode -> batch -> score loop as the
    predict CLI (decoding in threads while the network scores small batches, CPU_BATCH), with a twin of
    the network whose conv+BN pairs are folded and whose memory is channels_last; see bench/RESULTS.md.
    Every image is decoded in full, exactly as the CLI decodes it (no reduced-scale JPEG decoding, which
    moved scores of large photos by up to 0.03), so scores equal the predict CLI's to ~1e-6.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps
from torch import nn

from data.images import ImageDecodeError, decode_image, geometry_problem, to_rgb
from data.schema import lesion_metadata
from model.patient_context import ContextModel, patient_features
from model.ugly_duckling import (  # noqa: F401  (re-exported: the triage API)
    UD_METHODS,
    embedding_map,
    lof_score,
    loo_cosine_distance,
    rank_descending,
    robust_z,
    ugly_duckling,
)

ProgressFn = Callable[[int, int], None]
logger = logging.getLogger(__name__)

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
# Images per forward pass on CPU: small batches keep the activations in cache. Measured on the 2-core
# dev machine (lite0, 224 px, folded + channels_last): 10 ms/image at batch 1, 5 at 4, 9 at 16, 12 at 32.
CPU_BATCH = 4
UNSTABLE_SPREAD = 0.10  # P(melanoma) std across TTA views above which a score is called unstable


@dataclass
class LesionInput:
    image_id: str
    image: bytes | Image.Image | Path | str
    site: str = "unknown"
    filename: str | None = None


@dataclass
class PatientInfo:
    age: float | None = None
    sex: str = "unknown"


@dataclass
class TriageResult:
    table: pd.DataFrame  # one row per decoded lesion, in input order; `rank` gives the triage order
    embeddings: np.ndarray  # (n, d), rows aligned with `table`
    errors: pd.DataFrame  # image_id, filename, reason
    notes: list[str] = field(default_factory=list)
    model_id: str = ""
    threshold: float = 0.5
    settings: dict[str, Any] = field(default_factory=dict)  # the "triage" parameters used
    tta: int = 1  # test-time augmentation views the scores were computed with

    @property
    def ranked(self) -> pd.DataFrame:
        return self.table.sort_values("rank", kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- settings


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


# ---------------------------------------------------------------- ranking


def blend(
    p_melanoma: np.ndarray, ud: np.ndarray, weight_ud: float, ud_clip: Sequence[float] = (0.0, 4.0)
) -> np.ndarray:
    """logit_blend: sigmoid(logit(p) + w * clip(z)); a NaN z counts as 0 (the score stays P(melanoma))."""
    p = np.clip(np.asarray(p_melanoma, dtype=np.float64), 1e-7, 1 - 1e-7)
    z = np.nan_to_num(np.clip(np.asarray(ud, dtype=np.float64), ud_clip[0], ud_clip[1]), nan=0.0)
    if weight_ud == 0:
        return np.asarray(p_melanoma, dtype=np.float64).copy()
    return 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + weight_ud * z)))


def context_score(p_melanoma: np.ndarray, embeddings: np.ndarray, model: ContextModel) -> np.ndarray:
    """patient_context: the second stage's score of each lesion relative to the patient's other lesions
    (0-1, a ranking score within the patient, not a probability)."""
    p = np.clip(np.asarray(p_melanoma, dtype=np.float64), 1e-7, 1 - 1e-7)
    if len(p) == 0:
        return np.zeros(0)
    decision = model.score(patient_features(np.log(p / (1 - p)), embeddings))
    return 1.0 / (1.0 + np.exp(-decision))


def score_patient(p_melanoma: np.ndarray, embeddings: np.ndarray, settings: dict[str, Any]) -> dict[str, np.ndarray]:
    """UD z, triage score and within-patient rank for one patient's lesions (the shared core)."""
    ud = ugly_duckling(embeddings, settings["ud_method"], settings["min_lesions"], settings["ud_scale_floor"])
    if settings["method"] == "patient_context":
        triage = context_score(p_melanoma, embeddings, settings["context"])
    else:
        triage = blend(p_melanoma, ud, settings["weight_ud"], settings["ud_clip"])
    return {"ugly_duckling": ud, "triage_score": triage, "rank": rank_descending(triage, p_melanoma)}


# ---------------------------------------------------------------- decoding


def _name(lesion: LesionInput) -> str:
    if lesion.filename:
        return lesion.filename
    if isinstance(lesion.image, str | Path):
        return Path(lesion.image).name
    return str(lesion.image_id)


def decode_lesion(lesion: LesionInput) -> Image.Image:
    """An upright RGB image, or ImageDecodeError: data.images.decode_image, the predict CLI's decoder, with
    its input rules (pixel limit, lesion geometry, one picture per file). An already decoded PIL image is
    held to the same lesion geometry."""
    name = _name(lesion)
    source = lesion.image
    if isinstance(source, Image.Image):
        try:
            source.load()
            image = to_rgb(ImageOps.exif_transpose(source))
        except (OSError, ValueError) as exc:
            raise ImageDecodeError(name, f"corrupt image data: {exc}") from None
        problem = geometry_problem(*image.size)
        if problem:
            raise ImageDecodeError(name, problem)
        return image
    return decode_image(source, name=name)


# ---------------------------------------------------------------- fast CPU inference


def fuse_conv_bn(model: nn.Module, example: tuple[torch.Tensor, ...]) -> tuple[nn.Module, int]:
    """A copy of `model` (eval) with every BatchNorm2d that directly consumes a Conv2d's output folded into
    that conv (timm's BatchNormAct2d keeps its activation). Pairs are found by a dry run: the BN's input
    must be the very tensor the conv produced. Returns (model, number of pairs fused)."""
    from timm.layers import BatchNormAct2d
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    names = {m: n for n, m in model.named_modules()}
    events: list[tuple[nn.Module, Any, Any]] = []  # tensors kept alive so identity checks are sound

    def record(module, inputs, output):
        events.append((module, inputs[0] if inputs else None, output))

    hooks = [
        m.register_forward_hook(record)
        for m in model.modules()
        if isinstance(m, nn.Conv2d) or type(m) in (nn.BatchNorm2d, BatchNormAct2d)
    ]
    try:
        with torch.no_grad():
            model(*example)
    finally:
        for h in hooks:
            h.remove()
    uses: dict[nn.Module, int] = {}
    for m, _, _ in events:
        uses[m] = uses.get(m, 0) + 1
    pairs = [
        (a, b)
        for (a, _, out_a), (b, in_b, _) in itertools.pairwise(events)
        if isinstance(a, nn.Conv2d)  # incl. timm Conv2dSame: fuse_conv_bn_eval keeps the subclass
        and type(b) in (nn.BatchNorm2d, BatchNormAct2d)
        and in_b is out_a
        and uses[a] == 1
        and uses[b] == 1
        and b.track_running_stats
    ]
    for conv, bn in pairs:
        parent, _, attr = names[conv].rpartition(".")
        setattr(model.get_submodule(parent), attr, fuse_conv_bn_eval(conv, bn))
        parent, _, attr = names[bn].rpartition(".")
        setattr(
            model.get_submodule(parent),
            attr,
            nn.Sequential(bn.drop, bn.act) if type(bn) is BatchNormAct2d else nn.Identity(),
        )
    return model, len(pairs)


_fast: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_fast_lock = threading.Lock()


def inference_predictor(predictor):
    """The predictor to score with: on CPU a cached twin whose network has conv+BN folded and uses
    channels_last memory (about 2-4x faster on CPU, same numbers to ~1e-5); the predictor itself elsewhere,
    or if the twin's outputs do not match the original's."""
    if predictor.device.type != "cpu":
        return predictor
    with _fast_lock:
        twin = _fast.get(predictor.model)
        if twin is None:
            twin = _fast[predictor.model] = _make_twin(predictor)
        return twin


def _make_twin(predictor):
    from model.predictor import Predictor

    size = predictor.network.image_size
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    meta = torch.from_numpy(predictor.encoder.encode(pd.DataFrame(index=range(2))))
    try:
        fused, pairs = fuse_conv_bn(predictor.model, (x, meta))
        fused = fused.to(memory_format=torch.channels_last)
        with torch.inference_mode():
            a, b = predictor.model(x, meta), fused(x, meta)
        scale = float(a["embedding"].abs().max()) + 1e-6
        if (a["logit"] - b["logit"]).abs().max() > 1e-3 or (a["embedding"] - b["embedding"]).abs().max() > 1e-4 * scale:
            logger.warning("folded network does not reproduce the original: scoring with the original")
            return predictor
    except Exception:  # an exotic backbone: fall back to the original network
        logger.exception("conv+BN folding failed: scoring with the original network")
        return predictor
    twin = Predictor(fused, predictor.config, device=predictor.device, batch_size=predictor.batch_size)
    twin.fused_pairs = pairs
    twin.channels_last = True
    return twin


# ---------------------------------------------------------------- triage


def _reasons(p: float, spread: float, ud: float, n: int, threshold: float, outlier_z: float, rank: int) -> str:
    parts = []
    digits = 1  # percentages: calibrated probabilities at screening prevalence are mostly a few per cent
    while digits < 3 and round(100 * p, digits) == round(100 * threshold, digits):
        digits += 1  # never "1.5% is below 1.5%"
    ps, ts = f"{100 * p:.{digits}f}%", f"{100 * threshold:.{digits}f}%"
    if p >= threshold:
        parts.append(f"P(melanoma) {ps} is above the operating threshold {ts}")
    if not math.isnan(ud) and ud >= outlier_z:
        parts.append(f"unlike this patient's other {n - 1} lesions (robust z = {ud:.1f})")
    if not parts:
        parts.append(f"no flag: P(melanoma) {ps} is below the operating threshold {ts}")
        if not math.isnan(ud):
            parts.append(f"similar to this patient's other {n - 1} lesions (robust z = {ud:.1f})")
    if spread >= UNSTABLE_SPREAD:
        parts.append(
            f"the score changes with image orientation (± {100 * spread:.1f} percentage points): interpret with care"
        )
    if rank == 1 and n > 1:
        parts.append(f"ranked first of {n} lesions")
    return "; ".join(parts)


def _unique_ids(lesions: Sequence[LesionInput]) -> tuple[list[str], list[str]]:
    seen: dict[str, int] = {}
    ids, renamed = [], []
    for lesion in lesions:
        base = str(lesion.image_id)
        seen[base] = seen.get(base, 0) + 1
        new = base if seen[base] == 1 else f"{base} ({seen[base]})"
        if new != base:
            renamed.append(f"{base} -> {new}")
        ids.append(new)
    return ids, renamed


def triage_patient(
    predictor,
    lesions: list[LesionInput],
    patient: PatientInfo | None = None,
    tta: int | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    fast_model: bool = True,
    batch_size: int | None = None,
) -> TriageResult:
    """Score, compare and rank one patient's lesions. Broken images are reported, never fatal.

    tta: test-time augmentation views (default: the model's, Predictor.tta, as the predict CLI uses).
    progress(done, total) is called as lesions are scored (total = number of lesions given).
    fast_model: on CPU, score with the conv+BN-folded channels_last twin (see inference_predictor).
    batch_size: images per forward pass (default: CPU_BATCH on CPU, the predictor's on a GPU).
    """
    patient = patient or PatientInfo()
    settings = triage_settings(predictor)
    threshold = float(predictor.threshold)
    notes: list[str] = []
    ids, renamed = _unique_ids(lesions)
    if renamed:
        notes.append("Duplicate image ids were renamed: " + ", ".join(renamed) + ".")
    total = len(lesions)

    runner = inference_predictor(predictor) if fast_model else predictor
    default_batch = CPU_BATCH if runner.device.type == "cpu" else predictor.batch_size
    batch = max(1, int(batch_size or default_batch))
    # Metadata normalised once for the patient (unknown site names are reported once, not per batch).
    metadata = lesion_metadata([lesion.site for lesion in lesions], patient.sex, patient.age, "triage")
    sites_all = metadata["site"]
    # Decoding runs ahead in threads (Pillow releases the GIL) while the network scores full batches.
    stream = runner.score_stream(
        [lambda lesion=lesion: decode_lesion(lesion) for lesion in lesions],
        metadata,
        tta=predictor.tta if tta is None else tta,
        progress=progress,
        batch_size=batch,
        workers=workers or max(1, min(4, os.cpu_count() or 1)),
    )
    ok_idx = stream.indices
    errors = [{"image_id": ids[i], "filename": _name(lesions[i]), "reason": reason} for i, reason in stream.errors]
    errors_frame = pd.DataFrame(errors, columns=["image_id", "filename", "reason"])
    if errors:
        notes.append(f"{len(errors)} of {total} image(s) could not be read and are not ranked (see errors).")

    n = len(ok_idx)
    sites = sites_all.iloc[ok_idx]
    p = stream.predictions.p_melanoma.astype(np.float64)
    spread = stream.predictions.p_spread.astype(np.float64)
    emb = stream.predictions.embedding.astype(np.float32)
    if not n:
        notes.append("No image could be read, so nothing was scored.")

    scored = score_patient(p, emb, settings)
    ud = scored["ugly_duckling"]
    if 0 < n < settings["min_lesions"]:
        notes.append(
            f"Only {n} lesion{'s' if n != 1 else ''}: the ugly-duckling comparison needs at least "
            f"{settings['min_lesions']}, so it was not computed."
        )
    elif n < 6 and n >= settings["min_lesions"]:
        notes.append(
            f"Only {n} lesions: the ugly-duckling comparison is weak with so few; read it as a hint, not a finding."
        )
    if settings["method"] == "patient_context" and n > 1:
        notes.append(
            "Ranked by patient context: each lesion's P(melanoma) relative to this patient's other lesions and how "
            "unlike them it looks (chosen because it put melanomas earlier on held-out complete patients; see the "
            "Model page)."
        )
    if not settings["from_checkpoint"]:
        notes.append(
            "This model's checkpoint has no evaluated triage settings: lesions are ranked by "
            "P(melanoma) alone; the ugly-duckling score is shown for information."
        )
    xy = embedding_map(emb)
    table = pd.DataFrame(
        {
            "image_id": [ids[i] for i in ok_idx],
            "filename": [_name(lesions[i]) for i in ok_idx],
            "site": sites.to_numpy(),
            "p_melanoma": p,
            "p_spread": spread,
            "percentile": pd.Series(p).rank(pct=True, method="average").to_numpy() * 100 if n else np.zeros(0),
            "ugly_duckling": ud,
            "triage_score": scored["triage_score"],
            "rank": scored["rank"],
            "suspicious": p >= threshold,
            "outlier": np.nan_to_num(ud, nan=-np.inf) >= settings["ud_outlier_z"],
            "x": xy[:, 0],
            "y": xy[:, 1],
        }
    )
    table["reasons"] = [
        _reasons(r.p_melanoma, r.p_spread, r.ugly_duckling, n, threshold, settings["ud_outlier_z"], r.rank)
        for r in table.itertuples()
    ]
    return TriageResult(
        table=table,
        embeddings=emb,
        errors=errors_frame,
        notes=notes,
        model_id=predictor.model_id,
        threshold=threshold,
        settings=settings,
        tta=stream.tta,
    )


# ---------------------------------------------------------------- batch (CLI) output


def has_patient_ids(records: pd.DataFrame) -> bool:
    """Readers set group_id = image_id when no patient id is known (folders, CSVs without patient_id)."""
    return "group_id" in records and bool((records["group_id"].astype(str) != records["image_id"].astype(str)).any())


def patient_columns(scores: pd.DataFrame, embeddings: np.ndarray, settings: dict[str, Any]) -> pd.DataFrame:
    """ugly_duckling, triage_score, patient_rank for every scored row, computed patient by patient."""
    out = pd.DataFrame(index=scores.index, columns=["ugly_duckling", "triage_score", "patient_rank"], dtype=float)
    positions = np.arange(len(scores))
    for _, rows in pd.Series(positions, index=scores.index).groupby(scores["group_id"].astype(str), sort=False):
        idx = rows.to_numpy()
        res = score_patient(scores["p_melanoma"].to_numpy(float)[idx], embeddings[idx], settings)
        out.iloc[idx, 0] = res["ugly_duckling"]
        out.iloc[idx, 1] = res["triage_score"]
        out.iloc[idx, 2] = res["rank"]
    out["patient_rank"] = out["patient_rank"].astype(int)
    return out


def output_table(records: pd.DataFrame, scored, predictor) -> pd.DataFrame:
    """The predict CLI's CSV: image_name,target first (Kaggle), then the patient columns when the input has
    patient ids (patient_id,ugly_duckling,triage_score,patient_rank), then tta_spread."""
    scores = scored.scores
    table = pd.DataFrame({"image_name": scores["image_id"].to_numpy(), "target": scores["p_melanoma"].round(6)})
    if has_patient_ids(records) and len(scores):
        cols = patient_columns(scores, np.asarray(scored.embeddings), triage_settings(predictor))
        table["patient_id"] = scores["group_id"].to_numpy()
        table["ugly_duckling"] = cols["ugly_duckling"].round(4).to_numpy()
        table["triage_score"] = cols["triage_score"].round(6).to_numpy()
        table["patient_rank"] = cols["patient_rank"].to_numpy()
    table["tta_spread"] = scores["p_spread"].round(6).to_numpy()
    return table
