"""A review in progress: one `ReviewState` object (kept in ``st.session_state`` by the pages) holds the
patient, the images uploaded so far (keyed by SHA-256, so a re-upload is recognised), upload problems, the
triage result, the clinician's decisions, and whether it was saved. The pages only render this state and
call its methods; it needs no Streamlit.

One class in two parts: the images and their settings (uploads, overview photos, sites, body regions,
follow-up links) are ``ReviewImages`` in review_images.py; this module adds the rest of the review (its status,
the triage, the decisions, saving). What is made from it (the visit to save: review_record.py; the draft kept
on the server: review_draft.py) lives in modules of its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dashboard.choices import DECISIONS, DEFAULT_REVIEW_MONTHS, REVIEW_MONTHS
from dashboard.earlier_lesions import embed_earlier, lesions_to_compare, upload_caveats
from dashboard.errors import STORE_ERRORS, log_swallowed
from dashboard.overview_photos import OverviewPhotos
from dashboard.patient_form import PatientContext
from dashboard.review_images import ReviewImages
from dashboard.review_record import ReviewNotReady, review_to_save
from dashboard.store import validation
from dashboard.store.records import visit_date
from dashboard.uploads import UploadedImage, UploadProblem

# ---------------------------------------------------------------- review state


@dataclass
class LesionDecision:
    action: str | None = None
    comment: str = ""
    review_months: int | None = None  # a monitor decision's repeat-imaging interval


@dataclass
class ReviewState(ReviewImages):
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
