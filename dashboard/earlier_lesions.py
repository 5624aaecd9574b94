"""At a follow-up, the patient's earlier lesions join the ugly-duckling comparison and the image-source check.

No Streamlit. The references are the patient's known lesions that are not imaged again in this review
(a lesion linked as a follow-up is represented by its new image), each by its latest stored dermoscopic
image, embedded now by the model that scores this review (model.triage.triage_patient, so embeddings
match). They are compared against but not ranked (model/ugly_duckling.py).

Image sources (data/image_source.py) are described at one scale for every image, the display size
(DISPLAY_PX), so an upload and a stored image are measured alike; pixel sizes are the originals.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from dashboard.follow_up import LesionHistory, comparable, read_stored_image
from dashboard.uploads import DISPLAY_PX, UploadedImage
from data.image_source import ImageSource, camera_model, fine_detail, source_caveats


@dataclass(frozen=True)
class EarlierLesions:
    """The references of one review: embeddings (m, d) and image sources, rows aligned with lesion_ids."""

    lesion_ids: tuple[int, ...] = ()
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    sources: tuple[ImageSource, ...] = ()
    unreadable: int = 0  # stored images that could not be read (left out, counted)

    def __len__(self) -> int:
        return len(self.lesion_ids)


def lesions_to_compare(histories: Iterable[LesionHistory], followed_up: Iterable[int | None]) -> list[LesionHistory]:
    """Known lesions not imaged again in this review whose latest visit has a stored dermoscopic image."""
    again = {lesion_id for lesion_id in followed_up if lesion_id is not None}
    return [h for h in comparable(list(histories)) if h.lesion_id not in again]


def stored_source(width: int, height: int, image: Image.Image) -> ImageSource:
    """A stored image's source: its original pixel size, detail at the display scale; no camera (stripped)."""
    return ImageSource(width, height, fine_detail(image), None)


def upload_source(upload: UploadedImage) -> ImageSource | None:
    """An upload's source: original pixel size, detail at the display scale, EXIF camera of the raw bytes
    (None when the image cannot be decoded: the triage reports that image's error)."""
    try:
        camera = camera_model(Image.open(io.BytesIO(upload.data)))
    except (OSError, ValueError):
        camera = None
    try:
        return ImageSource(upload.width, upload.height, fine_detail(upload.display_image()), camera)
    except (OSError, ValueError):  # ImageDecodeError is a ValueError
        return None


def embed_earlier(
    predictor: Any,
    lesions: Sequence[LesionHistory],
    patient: Any = None,
    triage_fn: Callable[..., Any] | None = None,
) -> EarlierLesions:
    """Embed each lesion's latest stored image with `predictor` (the same flow as the review's scores).

    Kept for the last few (model, patient, images) asked, so running the triage again after a site change
    does not embed the earlier images again (stored files are content-addressed: the SHA-256 names them)."""
    if not lesions:
        return EarlierLesions()
    key = (
        id(predictor),
        getattr(predictor, "model_id", None),
        repr(patient),
        tuple((h.lesion_id, h.latest.image.sha256, h.site) for h in lesions),
    )
    if triage_fn is None and key in _embedded:
        _embedded.move_to_end(key)
        return _embedded[key]
    earlier = _embed(predictor, lesions, patient, triage_fn)
    if triage_fn is None:
        _embedded[key] = earlier
        while len(_embedded) > CACHE_SIZE:
            _embedded.popitem(last=False)
    return earlier


CACHE_SIZE = 8
_embedded: OrderedDict[tuple, EarlierLesions] = OrderedDict()


def _embed(
    predictor: Any, lesions: Sequence[LesionHistory], patient: Any, triage_fn: Callable[..., Any] | None
) -> EarlierLesions:
    if triage_fn is None:
        from model.triage import triage_patient as triage_fn
    from model.triage import LesionInput

    by_key = {f"lesion-{h.lesion_id}": h for h in lesions}
    inputs = [LesionInput(key, h.latest.image.path, site=h.site) for key, h in by_key.items()]
    result = triage_fn(predictor, inputs, patient)
    ids, sources, rows = [], [], []
    for row, key in enumerate(result.table["image_id"]):
        h = by_key[key]
        image = read_stored_image(h.latest.image.path, DISPLAY_PX)
        if image is None:
            continue
        ids.append(h.lesion_id)
        sources.append(stored_source(h.latest.image.width, h.latest.image.height, image))
        rows.append(row)
    embeddings = np.asarray(result.embeddings, dtype=np.float32)[rows]
    return EarlierLesions(tuple(ids), embeddings, tuple(sources), unreadable=len(lesions) - len(ids))


def upload_caveats(uploads: dict[str, UploadedImage], earlier: EarlierLesions | None = None) -> dict[str, str]:
    """sha256 -> the image-source caveat, for the uploads that differ clearly from the patient's others."""
    described = {k: upload_source(upload) for k, upload in uploads.items()}
    keys = [k for k, source in described.items() if source is not None]
    sources = [described[k] for k in keys]
    caveats = source_caveats(sources, earlier.sources if earlier is not None else ())
    return {k: c for k, c in zip(keys, caveats, strict=True) if c}
