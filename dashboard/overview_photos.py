"""Overview photos of the review in progress: a clinical photo that shows where a lesion is on the body,
taken at the visit beside the lesion's dermoscopic image. Several per lesion; stored with the lesion
(the store's LesionImage.kind "overview"), never scored by the model and never compared as a lesion.

Kept apart from ReviewState's lesion images on purpose: an overview photo must not enter the triage, the
ugly-duckling comparison or the follow-up picker. No Streamlit here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from dashboard.store.records import OverviewImage
from dashboard.uploads import DEFAULT_LIMITS, UploadLimits, UploadProblem, check_image
from data.images import jpeg_bytes

MAX_PER_LESION = 4  # a close-up and a wider view or two; more is a different workflow (total-body photography)


@dataclass
class OverviewPhoto:
    sha256: str
    filename: str
    data: bytes = field(repr=False)
    thumbnail: Image.Image = field(repr=False)
    _thumb_jpeg: bytes | None = field(default=None, repr=False, compare=False)

    def thumbnail_jpeg(self) -> bytes:
        """Encoded once: the panel shows it on every rerun of the page."""
        if self._thumb_jpeg is None:
            self._thumb_jpeg = jpeg_bytes(self.thumbnail, quality=85)
        return self._thumb_jpeg


@dataclass
class OverviewPhotos:
    """Lesion image sha256 -> its overview photos, in the order they were added."""

    by_lesion: dict[str, list[OverviewPhoto]] = field(default_factory=dict)

    def add(self, lesion: str, name: str, data: bytes, limits: UploadLimits = DEFAULT_LIMITS) -> UploadProblem | None:
        """Add one photo to a lesion, or say in plain words why not (nothing else changes)."""
        checked = check_image(name, data, limits)
        if isinstance(checked, UploadProblem):
            return checked
        photos = self.by_lesion.setdefault(lesion, [])
        facts, thumb = checked
        if any(p.sha256 == facts["sha256"] for p in photos):
            return UploadProblem(name, "this overview photo is already added to this lesion", "duplicate")
        if len(photos) >= MAX_PER_LESION:
            return UploadProblem(name, f"a lesion holds at most {MAX_PER_LESION} overview photos; not added")
        photos.append(OverviewPhoto(sha256=facts["sha256"], filename=name, data=data, thumbnail=thumb))
        return None

    def remove(self, lesion: str, photo: str) -> None:
        self.by_lesion[lesion] = [p for p in self.by_lesion.get(lesion, []) if p.sha256 != photo]

    def drop_lesion(self, lesion: str) -> None:
        """The lesion image left the review: its overview photos go with it."""
        self.by_lesion.pop(lesion, None)

    def of(self, lesion: str) -> list[OverviewPhoto]:
        return list(self.by_lesion.get(lesion, []))

    def records(self, lesion: str) -> tuple[OverviewImage, ...]:
        """What the store saves with the lesion."""
        return tuple(OverviewImage(image_bytes=p.data, original_filename=p.filename) for p in self.of(lesion))

    @property
    def total_bytes(self) -> int:
        return sum(len(p.data) for photos in self.by_lesion.values() for p in photos)

    # ------------------------------------------------------------ the server-side draft

    def draft_entries(self) -> dict[str, list[str]]:
        """lesion sha256 -> its photos' sha256, for the draft's JSON."""
        return {lesion: [p.sha256 for p in photos] for lesion, photos in self.by_lesion.items() if photos}

    def draft_images(self) -> list[tuple[str, str, bytes]]:
        return [(p.sha256, p.filename, p.data) for photos in self.by_lesion.values() for p in photos]
