"""The images of a review in progress: taking uploads in (each unusable file named with its reason, a re-upload
recognised by its SHA-256, the review's size limits), overview photos, and each image's label, anatomic site,
body-map region and follow-up link.

``ReviewImages`` is one part of ``ReviewState`` (dashboard/review_state.py), which holds the fields these
methods use and adds the rest of the review: the triage, the decisions, saving. No Streamlit here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dashboard.choices import SITES
from dashboard.errors import STORE_ERRORS, log_swallowed
from dashboard.overview_photos import OverviewPhotos
from dashboard.patient_form import NEW_LESION, PatientContext
from dashboard.uploads import (
    DEFAULT_LIMITS,
    UploadedImage,
    UploadLimits,
    UploadProblem,
    as_mb,
    check_image,
    default_label,
    expand_upload,
    is_junk,
)
from data.body_sites import REGIONS, model_site
from data.hashing import sha256_bytes as sha256_of
from data.settings import LIMITS

if TYPE_CHECKING:
    from dashboard.store.records import LesionSummary

logger = logging.getLogger(__name__)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)  # sha256 of new images
    problems: list[UploadProblem] = field(default_factory=list)


class ReviewImages:
    """The review's images and their settings (a part of ReviewState: its fields are declared here only as what
    these methods read and change)."""

    patient: PatientContext | None
    images: dict[str, UploadedImage]  # sha256 -> image, upload order
    problems: list[UploadProblem]
    decisions: dict[str, Any]  # sha256 -> LesionDecision: a removed image's decision goes with it
    body_regions: dict[str, str]
    overviews: OverviewPhotos

    def _require_editable(self) -> None:
        raise NotImplementedError  # ReviewState's: a saved review is read-only

    # ------------------------------------------------------------ uploads

    @property
    def total_bytes(self) -> int:
        return sum(len(img.data) for img in self.images.values()) + self.overviews.total_bytes

    def add_files(self, files: Iterable[tuple[str, bytes]], limits: UploadLimits = DEFAULT_LIMITS) -> IngestReport:
        """Take in uploaded files (images or zips of images); problems are kept for error cards."""
        self._require_editable()
        report = IngestReport()
        for name, data in files:
            for item in expand_upload(name, bytes(data), limits):
                if isinstance(item, UploadProblem):
                    report.problems.append(item)
                    continue
                member, content = item
                if is_junk(member):
                    continue
                self._add_one(member, content, limits, report)
        # Newest problems first, replacing older problems about the same file name.
        names = {p.filename for p in report.problems}
        self.problems = report.problems + [p for p in self.problems if p.filename not in names]
        return report

    def _add_one(self, name: str, data: bytes, limits: UploadLimits, report: IngestReport) -> None:
        sha = sha256_of(data) if data else ""
        if sha and sha in self.images:
            first = self.images[sha].filename
            same = "the same file" if first == name else f"identical to “{first}”"
            report.problems.append(UploadProblem(name, f"{same}, already loaded — not added twice", "duplicate"))
            return
        if len(self.images) >= limits.max_images:
            report.problems.append(
                UploadProblem(name, f"a review holds at most {limits.max_images} images; this one was not added")
            )
            return
        too_much = self._over_total(name, data, limits)
        if too_much is not None:
            report.problems.append(too_much)
            return
        checked = check_image(name, data, limits)
        if isinstance(checked, UploadProblem):
            report.problems.append(checked)
            return
        facts, thumb = checked
        image = UploadedImage(
            filename=name, data=data, thumbnail=thumb, label=default_label(name, len(self.images) + 1), **facts
        )
        if self.patient and sha in self.patient.known_images:
            lesion_id, where = self.patient.known_images[sha]
            report.problems.append(
                UploadProblem(
                    name,
                    f"this exact image was already saved at the {where}; it is linked to that lesion — "
                    "remove it if it was included by mistake",
                    "notice",
                )
            )
            self._link(image, lesion_id)
        self.images[sha] = image
        report.added.append(sha)

    def flag_saved_for_other_patients(self, store: Any, added: Iterable[str]) -> int:
        """Warn about each of ``added`` (images just uploaded, or resumed from a draft) that ``store`` holds for
        another patient (the wrong patient chosen, mixed-up files); returns how many. Not refused: the earlier
        save may be the mistake, and the clinician decides. Without the store, or when it fails, the check is
        skipped (and logged): the review goes on, as everywhere on the review page."""
        added = list(added)
        if store is None or not added:
            return 0
        patient_id = self.patient.patient_id if self.patient else None
        try:
            elsewhere = set(store.images_saved_for_other_patients(added, patient_id))
        except STORE_ERRORS as exc:
            log_swallowed(logger, "checking new images against other patients", exc)
            return 0
        flagged = [sha for sha in self.images if sha in elsewhere]
        for sha in flagged:
            self.problems.append(
                UploadProblem(
                    self.images[sha].filename,
                    "this exact image is already saved for another patient: check that this review is of the "
                    "right patient and that the files are this patient's before saving",
                    "other_patient",
                )
            )
        return len(flagged)

    def remove_image(self, sha256: str) -> None:
        self._require_editable()
        self.images.pop(sha256, None)
        self.decisions.pop(sha256, None)
        self.body_regions.pop(sha256, None)
        self.overviews.drop_lesion(sha256)

    def add_overview(
        self, lesion: str, name: str, data: bytes, limits: UploadLimits = DEFAULT_LIMITS
    ) -> UploadProblem | None:
        """An overview photo for one lesion image of this review (not scored; it does not change the triage)."""
        self._require_editable()
        if lesion not in self.images:
            raise KeyError(f"no image {lesion[:12]} in this review")
        return self._over_total(name, data, limits) or self.overviews.add(lesion, name, data, limits)

    def _over_total(self, name: str, data: bytes, limits: UploadLimits) -> UploadProblem | None:
        """All images of one review (lesion images and overview photos) are held in memory: a total limit."""
        if self.total_bytes + len(data) > limits.max_total_bytes:
            return UploadProblem(name, f"the images of one review may total {as_mb(limits.max_total_bytes)}; not added")
        return None

    def remove_overview(self, lesion: str, photo: str) -> None:
        self._require_editable()
        self.overviews.remove(lesion, photo)

    def clear_problems(self) -> None:
        self.problems = []

    # ------------------------------------------------------------ per-image settings

    def set_site(self, sha256: str, site: str) -> None:
        self._require_editable()
        if site not in SITES:
            raise ValueError(f"unknown anatomic site {site!r}")
        image = self.images[sha256]
        if image.existing_lesion_id is not None:
            linked = self._known_lesion(image.existing_lesion_id)
            if linked is not None and linked.site != site:
                image.existing_lesion_id = None  # a lesion does not move: changing the site unlinks it
        image.site = site
        if sha256 in self.body_regions and model_site(self.body_regions[sha256]) != site:
            del self.body_regions[sha256]  # a region always lies on the image's site

    def set_body_region(self, sha256: str, region_key: str | None) -> None:
        """Place the image's lesion on the body map (None: take it off). The region's model site becomes the
        image's site, so the model is given it; a followed lesion recorded at another site is unlinked."""
        self._require_editable()
        if region_key is None:
            self.body_regions.pop(sha256, None)
            return
        site = model_site(region_key)  # ValueError names an unknown key
        self.set_site(sha256, site)
        self.body_regions[sha256] = region_key

    def set_label(self, sha256: str, label: str) -> None:
        self._require_editable()
        self.images[sha256].label = (label or "").strip()[: LIMITS.label_max]

    def link_lesion(self, sha256: str, lesion_id: int | None) -> None:
        """Mark an image as a follow-up of a lesion saved earlier (None or NEW_LESION = a new lesion)."""
        self._require_editable()
        image = self.images[sha256]
        if lesion_id is None or lesion_id == NEW_LESION:
            image.existing_lesion_id = None
            return
        taken = {i.existing_lesion_id for s, i in self.images.items() if s != sha256}
        if lesion_id in taken:
            raise ValueError("that lesion is already linked to another image of this visit")
        self._link(image, lesion_id)

    def _link(self, image: UploadedImage, lesion_id: int) -> None:
        lesion = self._known_lesion(lesion_id)
        if lesion is None:
            raise ValueError("that lesion is not one of this patient's lesions")
        image.existing_lesion_id = lesion_id
        image.site = lesion.site
        image.label = lesion.label
        region_key = getattr(lesion, "body_region", None)
        if region_key in REGIONS and model_site(region_key) == lesion.site:
            self.body_regions[image.sha256] = region_key  # a followed lesion stays where it was placed
        else:
            self.body_regions.pop(image.sha256, None)

    def _known_lesion(self, lesion_id: int) -> LesionSummary | None:
        if not self.patient:
            return None
        return next((les for les in self.patient.known_lesions if les.id == lesion_id), None)

    def set_sites_where_unknown(self, site: str) -> int:
        count = 0
        for sha, image in self.images.items():
            if image.site == "unknown" and image.existing_lesion_id is None:
                self.set_site(sha, site)
                count += 1
        return count
