"""Whole-patient triage: score every lesion, find the "ugly duckling", rank what to look at first.

Importable without Streamlit; the dashboard uses triage_patient, and its scores, ranks and ugly-duckling
z-scores come from the same functions as the predict CLI's table and training/evaluate_triage.py, so the
numbers a clinician sees are the numbers that were evaluated. Where the parts live:
    model/triage_settings.py   the checkpoint's "triage" parameters (TRIAGE_DEFAULTS, triage_settings)
    model/ugly_duckling.py     how unlike the patient's other lesions each lesion is (the UD z-score)
    model/triage_scoring.py    triage score and rank within a patient (logit_blend, patient_context)
    model/fast_cpu.py          the conv+BN-folded channels_last CPU twin the flow scores with
    model/triage_table.py      the predict CLI's output table
This module: the per-patient flow (decode, score, compare, rank, explain) and its result.

Speed (CPU)
    triage_patient scores through Predictor.score_stream, the same decode -> batch -> score loop as the
    predict CLI (decoding in threads while the network scores small batches, CPU_BATCH), with the folded
    twin (model/fast_cpu.py). Every image is decoded in full, exactly as the CLI decodes it (no
    reduced-scale JPEG decoding, which moved scores of large photos by up to 0.03), so scores equal the
    predict CLI's to ~1e-6.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from data.images import ImageDecodeError, decode_image, geometry_problem, to_rgb
from data.schema import lesion_metadata
from model.fast_cpu import CPU_BATCH, inference_predictor
from model.score_text import pct_against
from model.triage_scoring import score_patient
from model.triage_settings import triage_settings
from model.ugly_duckling import embedding_map, z_text

ProgressFn = Callable[[int, int], None]

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
    # Earlier lesions compared against (not ranked): how many, and their places on the embedding map.
    reference_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    compared: int | None = None  # distinct lesions in the ugly-duckling comparison (copies of one photo count once)

    @property
    def ranked(self) -> pd.DataFrame:
        return self.table.sort_values("rank", kind="stable").reset_index(drop=True)


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


# ---------------------------------------------------------------- triage


def _reasons(
    p: float,
    spread: float,
    ud: float,
    n: int,
    threshold: float,
    outlier_z: float,
    rank: int,
    earlier: int = 0,
    others_compared: int | None = None,
) -> str:
    """``others_compared``: the distinct other lesions the comparison used (copies of one photo count once);
    by default the visit's other lesions and the earlier ones."""
    count = n - 1 + earlier if others_compared is None else others_compared
    others = f"this patient's other {count} lesions" + (f" ({earlier} from earlier visits)" if earlier else "")
    parts = []
    ps, ts = pct_against(p, threshold)  # as the score bar and the cards word them
    if p >= threshold:
        parts.append(f"P(melanoma) {ps} is above the operating threshold {ts}")
    if not math.isnan(ud) and ud >= outlier_z:
        parts.append(f"unlike {others} (robust z = {z_text(ud)})")
    if not parts:
        parts.append(f"no flag: P(melanoma) {ps} is below the operating threshold {ts}")
        if not math.isnan(ud):
            parts.append(f"similar to {others} (robust z = {z_text(ud)})")
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


def _listed(names: Sequence[str]) -> str:
    quoted = [f"“{name}”" for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _copy_notes(ids: Sequence[str], groups: np.ndarray) -> list[str]:
    """One note per group of images the model sees as one photo (model.ugly_duckling.copy_groups); rows past
    ``ids`` are the earlier visits' lesions."""
    notes = []
    for label in np.unique(groups):
        members = np.flatnonzero(groups == label)
        now = [ids[i] for i in members if i < len(ids)]
        if len(members) < 2 or not now:
            continue
        if len(now) < len(members):
            notes.append(
                f"{_listed(now)} look{'s' if len(now) == 1 else ''} like the same photo as a lesion from an earlier "
                "visit: if so, link it to that lesion rather than adding a new one."
            )
        else:
            notes.append(
                f"{_listed(now)} look like the same photo uploaded {len(now)} times: if they are one lesion, remove "
                "the copies. The ugly-duckling comparison counts them as one."
            )
    return notes


def triage_patient(
    predictor,
    lesions: list[LesionInput],
    patient: PatientInfo | None = None,
    tta: int | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    fast_model: bool = True,
    batch_size: int | None = None,
    references: np.ndarray | None = None,
) -> TriageResult:
    """Score, compare and rank one patient's lesions. Broken images are reported, never fatal.

    tta: test-time augmentation views (default: the model's, Predictor.tta, as the predict CLI uses).
    progress(done, total) is called as lesions are scored (total = number of lesions given).
    fast_model: on CPU, score with the conv+BN-folded channels_last twin (see inference_predictor).
    batch_size: images per forward pass (default: CPU_BATCH on CPU, the predictor's on a GPU).
    references: (m, d) embeddings of the patient's known lesions from earlier visits that are not imaged
    again now (the latest image of each): the ugly-duckling comparison includes them, but they are not
    scored or ranked (model/ugly_duckling.py).
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

    earlier = np.zeros((0, emb.shape[1] if emb.ndim == 2 else 0), dtype=np.float32)
    if references is not None and len(references) and n:
        earlier = np.asarray(references, dtype=np.float32).reshape(len(references), -1)
        if earlier.shape[1] != emb.shape[1]:
            raise ValueError(
                f"reference embeddings have {earlier.shape[1]} features, this model's have {emb.shape[1]}: "
                "earlier lesions must be embedded by the same model"
            )
    m = len(earlier)
    scored = score_patient(p, emb, settings, earlier if m else None)
    ud = scored["ugly_duckling"]
    groups = scored["copy_groups"]
    compared = len(np.unique(groups))  # what the comparison saw: copies of one photo count once
    earlier_only = len(set(groups[n:]) - set(groups[:n]))  # earlier lesions not photographed again now
    if m:
        notes.append(
            f"The ugly-duckling comparison includes {m} lesion{'s' if m != 1 else ''} known from earlier visits "
            "(their latest image; not ranked here)."
        )
    if 0 < compared < settings["min_lesions"]:
        notes.append(
            f"Only {compared} lesion{'s' if compared != 1 else ''}: the ugly-duckling comparison needs at least "
            f"{settings['min_lesions']}, so it was not computed."
        )
    elif n and settings["min_lesions"] <= compared < 6:
        notes.append(
            f"Only {compared} lesions: the ugly-duckling comparison is weak with so few; read it as a hint, not a "
            "finding."
        )
    # Named by file (the dashboard's image ids are hashes), by id when there is no file name.
    shown = [lesions[i].filename or ids[i] for i in ok_idx]
    notes += _copy_notes(shown, groups)
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
    xy_all = embedding_map(np.vstack([emb, earlier]) if m else emb)
    xy = xy_all[:n]
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
        _reasons(
            r.p_melanoma,
            r.p_spread,
            r.ugly_duckling,
            n,
            threshold,
            settings["ud_outlier_z"],
            r.rank,
            earlier_only,
            others_compared=compared - 1,
        )
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
        reference_xy=xy_all[n:],
        compared=compared,
    )
