"""The follow-up picker's "most alike first" order: the patient's known lesions ordered by how close each one's
latest stored photo lies to the new image in the model's embedding space (cosine distance).

No Streamlit. A suggestion to speed the search, never a link: the clinician compares the photos and picks.
How often the right lesion comes first is measured per checkpoint (training/lesion_matching.py, under
``lesion_matching`` in validation.json) and shown beside the order. Embeddings are one view each (the model's
pooled image features, metadata plays no part) and kept per (weights, image SHA-256): opening the picker for the
next image embeds only that image. The weights are named by the model id, the checkpoint's version and its
weights' SHA-256, so a retrained checkpoint that kept its id (or one of the same id in another folder) does not
reuse another's embeddings.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from dashboard.follow_up import LesionHistory, comparable, read_stored_image

READ_PX = 512  # the model sees 224 px; one photo at 384 and 512 px lies < 0.053 apart (model/ugly_duckling.py)
CACHE_SIZE = 2048  # embeddings (2,560 floats each: ~20 MB)


@dataclass(frozen=True)
class Likeness:
    """Cosine distance from the new image to each comparable known lesion (lesion_id -> distance)."""

    distances: dict[int, float] = field(default_factory=dict)
    unreadable: int = 0  # known lesions whose stored photo could not be read (left unordered)

    def order(self, lesions: Sequence[LesionHistory]) -> list[LesionHistory]:
        """Most alike first; lesions without a distance keep their order after them."""
        known = sorted((h for h in lesions if h.lesion_id in self.distances), key=lambda h: self.distances[h.lesion_id])
        return known + [h for h in lesions if h.lesion_id not in self.distances]

    def places(self, lesions: Sequence[LesionHistory]) -> dict[int, int]:
        """Rank by likeness among ``lesions`` (those shown that can be picked: 1 = the most alike of them);
        lesions not compared get none."""
        compared = self.order([h for h in lesions if h.lesion_id in self.distances])
        return {h.lesion_id: n for n, h in enumerate(compared, start=1)}


def evidence_text(validation: dict[str, Any] | None) -> str:
    """What the order is worth, from the checkpoint's measurement (training/lesion_matching.py)."""
    from model.score_text import ci_text

    match = (validation or {}).get("lesion_matching")
    if not isinstance(match, dict) or not match.get("lesions"):
        return "How often this order puts the right lesion first was not measured for this model."
    return (
        f"Measured on {match['lesions']} lesions photographed twice (HAM10000; each new photo turned at random) "
        f"among {match['candidates']} lesions of one site: the right lesion came first in "
        f"{ci_text(match.get('first'), '.0%')} and among the first three in {ci_text(match.get('top3'), '.0%')} "
        f"(a random order: {match['random_first']:.0%} and {match['random_top3']:.0%}). Those photos were taken at "
        "one visit and the other lesions were strangers': expect less a year later among the patient's own moles."
    )


def likeness(
    predictor: Any,
    new_sha256: str,
    new_image: Callable[[], Image.Image],
    lesions: Sequence[LesionHistory],
) -> Likeness:
    """Distances from the new image (decoded by ``new_image`` only when not embedded yet) to ``lesions``."""
    candidates = comparable(lesions)
    if not candidates:
        return Likeness()
    wanted = {new_sha256: new_image}
    for h in candidates:
        image = h.latest.image
        wanted.setdefault(image.sha256, lambda path=image.path: read_stored_image(path, READ_PX))
    vectors = embeddings(predictor, wanted)
    query = vectors[new_sha256]
    if query is None:  # the new image cannot be decoded: its own error is shown on its card
        return Likeness()
    distances, unreadable = {}, 0
    for h in candidates:
        vector = vectors[h.latest.image.sha256]
        if vector is None:
            unreadable += 1
        else:
            distances[h.lesion_id] = float(1.0 - vector @ query)
    return Likeness(distances, unreadable)


BATCH = 32
_cache: OrderedDict[tuple[tuple[str, str | None, str | None], str], np.ndarray | None] = OrderedDict()
_lock = threading.Lock()


def weights_key(predictor: Any) -> tuple[str, str | None, str | None]:
    """(model id, checkpoint version, weights SHA-256) of a loaded model: what changes with its weights. The
    digest is the checkpoint's (model.checkpoint.weights_digest: the hash of the weights file as loaded);
    version and digest are None for a model without a checkpoint config."""
    from model.checkpoint import weights_digest

    config = getattr(predictor, "config", None) or {}
    version = config.get("version")
    model_id = str(getattr(predictor, "model_id", id(predictor)))
    return model_id, None if version is None else str(version), weights_digest(config)


def embeddings(predictor: Any, images: dict[str, Callable[[], Image.Image | None]]) -> dict[str, np.ndarray | None]:
    """Unit embeddings by SHA-256 (None for an image that cannot be decoded), cached by the model's weights
    (``weights_key``) and the image's content; only the images not cached yet are decoded, in batches."""
    model = weights_key(predictor)
    found: dict[str, np.ndarray | None] = {}
    with _lock:
        for sha in images:
            if (model, sha) in _cache:
                _cache.move_to_end((model, sha))
                found[sha] = _cache[(model, sha)]
    missing = [sha for sha in images if sha not in found]
    for start in range(0, len(missing), BATCH):
        batch = missing[start : start + BATCH]
        computed = _embed(predictor, [images[sha] for sha in batch])
        found.update(zip(batch, computed, strict=True))
        with _lock:
            for sha, vector in zip(batch, computed, strict=True):
                _cache[(model, sha)] = vector
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return found


def _decode(load: Callable[[], Image.Image | None]) -> Image.Image | None:
    try:
        return load()
    except (OSError, ValueError):  # ImageDecodeError is a ValueError
        return None


def _embed(predictor: Any, loads: Sequence[Callable[[], Image.Image | None]]) -> list[np.ndarray | None]:
    from model.fast_cpu import inference_predictor

    decoded = [_decode(load) for load in loads]
    readable = [image for image in decoded if image is not None]
    if not readable:
        return [None] * len(decoded)
    runner = inference_predictor(predictor)
    try:
        raw = np.asarray(runner.predict_images(readable, tta=1).embedding, dtype=np.float64)
    except ValueError:  # one image the model refuses (e.g. too small): embed one by one, that one None
        if len(loads) == 1:
            return [None]
        return [v for load in loads for v in _embed(predictor, [load])]
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    units = iter(np.where(norms > 0, raw / np.maximum(norms, 1e-12), np.nan))
    out: list[np.ndarray | None] = []
    for image in decoded:
        vector = next(units) if image is not None else None
        out.append(None if vector is None or not np.isfinite(vector).all() else vector)
    return out
