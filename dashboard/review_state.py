"""A review in progress: one `ReviewState` object (kept in ``st.session_state`` by the pages) holds the
patient, the images uploaded so far (keyed by SHA-256, so a re-upload is recognised), upload problems, the
triage result, the clinician's decisions, and whether it was saved. The pages only render this state and
call its methods; it needs no Streamlit.

Over 400 lines because it is one class, the review's state and its rules; what it builds on (uploads,
the patient, wording) and what is made from it (the visit to save: review_record.py; the draft kept on the
server: review_draft.py) live in modules of their own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from dashboard.choices import DECISIONS, DEFAULT_REVIEW_MONTHS, REVIEW_MONTHS, SITES
from dashboard.earlier_lesions import embed_earlier, lesions_to_compare, upload_caveats
from dashboard.errors import STORE_ERRORS, log_swallowed
from dashboard.overview_photos import OverviewPhotos
from dashboard.patient_form import NEW_LESION, PatientContext
from dashboard.review_record import ReviewNotReady, review_to_save
from dashboard.store import validation
from dashboard.store.records import visit_date
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

# ---------------------------------------------------------------- review state


@dataclass
class LesionDecision:
    action: str | None = None
    comment: str = ""
    review_months: int | None = None  # a monitor decision's repeat-imaging interval


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)  # sha256 of new images
    problems: list[UploadProblem] = field(default_factory=list)


@dataclass
class ReviewState:
    """Everything about one patient's review in progress; lives in st.session_state."""

    patient: PatientContext | None = None
    images: dict[str, UploadedImage] = field(default_factory=dict)  # sha256 -> image, upload order
    problems: list[UploadProblem] = field(default_factory=list)
    result: Any = None  # model.triage.TriageResult
    result_fingerprint: str | None = None
    result_tta: int | None = None
    decisions: dict[str, LesionDecision] = field(default_factory=dict)  # sha256 -> decision
    notes: str = ""
    taken_on: dt.date | None = None  # the day the images were taken, when not today (images taken earlier)
    saved_visit_id: int | None = None
    saved_visit_number: int | None = None  # the visit's number for this patient (1 = first), as pages show it
    heatmaps: dict[tuple[str, str], Any] = field(default_factory=dict)  # (sha256, method) -> (H, W) array
    # sha256 -> why this image's source differs from the patient's others (data/image_source.py), at triage
    source_caveats: dict[str, str] = field(default_factory=dict)
    # sha256 -> data.body_sites key: where the image's lesion is on the body map (it decides the site).
    body_regions: dict[str, str] = field(default_factory=dict)
    uploader_generation: int = 0  # bumped to empty the file uploader after its files were taken in
    # Overview photos per lesion image (saved with the lesion, never scored): dashboard/overview_photos.py
    overviews: OverviewPhotos = field(default_factory=OverviewPhotos)

    # ------------------------------------------------------------ status

    def saved_visit_label(self) -> str:
        """ "visit 2" (this patient's second), for the saved-review messages."""
        return f"visit {self.saved_visit_number or self.saved_visit_id}"

    @property
    def has_unsaved_work(self) -> bool:
        return bool(self.images) and self.saved_visit_id is None

    @property
    def is_saved(self) -> bool:
        return self.saved_visit_id is not None

    def unsaved_summary(self) -> str:
        who = self.patient.identifier if self.patient else "no patient"
        if self.result is not None and not self.result_is_stale:
            return f"Triage results for {who} ({len(self.scored_table())} lesions) are not saved."
        return f"{len(self.images)} uploaded image(s) for {who} are not triaged or saved."

    def sidebar_status(self, on_review_page: bool) -> str | None:
        """The sidebar's line on the review in progress (None when nothing needs saying)."""
        if self.patient is None or self.is_saved or not self.has_unsaved_work:
            return None
        if on_review_page:
            return self.unsaved_summary() + " Save it below (section 5) when you are done."
        return self.unsaved_summary() + " Return to Patient review to save it."

    def other_patient_notice(self, shown_identifier: str) -> str | None:
        """On a page about one patient: a warning when the review in progress is about someone else."""
        if self.patient is None or self.patient.identifier == shown_identifier:
            return None
        status = "saved" if self.is_saved else ("not saved" if self.has_unsaved_work else "no images yet")
        return (
            f"This page shows patient {shown_identifier}. The review in progress (sidebar) is for another "
            f"patient, {self.patient.identifier} ({status})."
        )

    def visit_day(self) -> dt.date:
        """The date of the visit under review by the store's rule (``store.records.visit_date``): the day the
        images were taken when entered, else today (the local day it is saved)."""
        return visit_date(self.taken_on, dt.datetime.now(dt.UTC))

    def patient_age(self) -> float | None:
        """The patient's age on the visit's date (``visit_day``): what the model is given, and what the saved
        visit's scores were computed with. Images taken two years ago are scored at the age of then."""
        return self.patient.age(self.visit_day()) if self.patient else None

    def input_fingerprint(self) -> str:
        """What the scores depend on: images, their sites, the patient's age (on the visit's date) and sex."""
        payload = {
            "age": self.patient_age(),
            "sex": self.patient.sex if self.patient else None,
            "images": [(sha, img.site) for sha, img in self.images.items()],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    @property
    def result_is_stale(self) -> bool:
        return self.result is not None and self.result_fingerprint != self.input_fingerprint()

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

    def flag_saved_for_other_patients(self, saved_elsewhere: Iterable[str]) -> int:
        """Warn about each image of the review that is saved for another patient (the store's
        ``images_saved_for_other_patients``); returns how many. Not refused: the earlier save may be the
        mistake, and the clinician decides."""
        elsewhere = set(saved_elsewhere)
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

    # ------------------------------------------------------------ triage

    def lesion_inputs(self) -> list[Any]:
        from model.triage import LesionInput

        return [
            LesionInput(image_id=sha, image=img.data, site=img.site, filename=img.filename)
            for sha, img in self.images.items()
        ]

    def patient_info(self) -> Any:
        from model.triage import PatientInfo

        if self.patient is None:
            return PatientInfo()
        return PatientInfo(age=self.patient_age(), sex=self.patient.sex)

    def run_triage(
        self,
        predictor: Any,
        tta: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        triage_fn: Callable[..., Any] | None = None,
        known_lesions: Sequence[Any] = (),
    ) -> Any:
        """Score, compare and rank this review's images. known_lesions: the patient's LesionHistory list
        (dashboard/follow_up.py); those not imaged again join the ugly-duckling comparison as references and
        the image-source check (dashboard/earlier_lesions.py)."""
        self._require_editable()
        if self.patient is None:
            raise ReviewNotReady("Choose or create the patient first.")
        if not self.images:
            raise ReviewNotReady("Upload at least one lesion image first.")
        if triage_fn is None:
            from model.triage import triage_patient as triage_fn
        kwargs: dict[str, Any] = {"progress": progress}
        if tta is not None:
            kwargs["tta"] = tta
        followed_up = [image.existing_lesion_id for image in self.images.values()]
        earlier = embed_earlier(
            predictor, lesions_to_compare(known_lesions, followed_up), self.patient_info(), triage_fn
        )
        if len(earlier):
            kwargs["references"] = earlier.embeddings
        result = triage_fn(predictor, self.lesion_inputs(), self.patient_info(), **kwargs)
        self.source_caveats = upload_caveats(self.images, earlier)
        self.result = result
        self.result_fingerprint = self.input_fingerprint()
        self.result_tta = getattr(result, "tta", tta)  # what the scores were computed with
        self.heatmaps.clear()
        scored = set(self.scored_table()["image_id"])
        self.decisions = {sha: d for sha, d in self.decisions.items() if sha in scored}
        return result

    def scored_table(self) -> pd.DataFrame:
        """The triage table, ranked (rank 1 first), with display columns added."""
        if self.result is None:
            return pd.DataFrame()
        table = self.result.table.copy()
        table = table[table["image_id"].isin(self.images)]  # an image removed after triage drops out
        table = table.sort_values("rank", kind="stable").reset_index(drop=True)
        table["label"] = [self.images[s].label for s in table["image_id"]]
        table["filename"] = [self.images[s].filename for s in table["image_id"]]
        table["site"] = [self.images[s].site for s in table["image_id"]]
        table["body_region"] = [self.body_regions.get(s) for s in table["image_id"]]
        return table

    def triage_errors(self) -> pd.DataFrame:
        if self.result is None or self.result.errors is None:
            return pd.DataFrame(columns=["image_id", "filename", "reason"])
        return self.result.errors

    # ------------------------------------------------------------ decisions

    def set_decision(
        self, sha256: str, action: str | None, comment: str | None = None, review_months: int | None = None
    ) -> None:
        """A lesion's decision; a monitor decision gets an interval (``review_months``, else the one it has,
        else DEFAULT_REVIEW_MONTHS), any other none."""
        self._require_editable()
        if action is not None and action not in DECISIONS:
            raise ValueError(f"unknown decision {action!r}")
        if review_months is not None and review_months not in REVIEW_MONTHS:
            raise ValueError(f"repeat imaging in {review_months!r} months is not offered ({REVIEW_MONTHS})")
        decision = self.decisions.setdefault(sha256, LesionDecision())
        decision.action = action
        if action == "monitor":
            decision.review_months = review_months or decision.review_months or DEFAULT_REVIEW_MONTHS
        else:
            decision.review_months = None
        if comment is not None:
            decision.comment = comment.strip()

    def decision(self, sha256: str) -> LesionDecision:
        return self.decisions.get(sha256, LesionDecision())

    def undecided_suspicious(self) -> list[str]:
        table = self.scored_table()
        if table.empty:
            return []
        flagged = table[table["suspicious"].astype(bool) | table["outlier"].astype(bool)]
        return [row.label for row in flagged.itertuples() if self.decision(row.image_id).action is None]

    def set_taken_on(self, value: dt.date | None) -> None:
        """The day the images were taken (None: today). Not in the future, not before the birth year."""
        self._require_editable()
        birth_year = self.patient.birth_year if self.patient else None
        self.taken_on = validation.past_date(value, "date the images were taken", birth_year)

    # ------------------------------------------------------------ saving

    def save(self, store: Any, clinician: str, model_version: str, model_checksum: str) -> int:
        review = review_to_save(self, clinician, model_version, model_checksum)
        visit_id = store.save_review(review)
        self.saved_visit_id = visit_id
        self.problems = []  # upload messages were about the work in progress, which is now saved
        # The visit is saved; what follows only serves display (its number) and links to the history page.
        try:
            saved = store.load_visit(visit_id)
        except STORE_ERRORS as exc:
            log_swallowed(logging.getLogger(__name__), "reading back the saved visit", exc)
            return visit_id
        self.saved_visit_number = getattr(saved, "number", None) or None
        if self.patient is not None and self.patient.patient_id is None:
            self.patient.patient_id = saved.patient_id
        return visit_id

    def _require_editable(self) -> None:
        if self.is_saved:
            raise ReviewNotReady("This review is saved and read-only. Start a new review to make changes.")
