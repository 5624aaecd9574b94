"""The dashboard's logic, testable without Streamlit.

A review in progress lives in one `ReviewState` object (kept in ``st.session_state`` by the pages):
the patient, the images uploaded so far (keyed by SHA-256, so a re-upload is recognised), upload
problems, the triage result, the clinician's decisions, and whether it was saved. The pages only
render this state and call its methods.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import math
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from PIL import Image

from dashboard.store.api import NotFoundError
from dashboard.store.config import DEFAULT_MAX_IMAGE_BYTES
from dashboard.store.files import FORMAT_EXTENSIONS, inspect_image
from dashboard.store.models import ACTIONS, ANATOMIC_SITES, SEXES
from dashboard.store.records import LesionReview, ReviewToSave
from data.hashing import sha256_bytes as sha256_of
from data.images import MAX_PIXELS, ImageDecodeError, decode_image, probe_image
from model.metrics import SCREENING_PREVALENCE, at_prevalence

if TYPE_CHECKING:
    from dashboard.store.records import LesionSummary, PatientTimeline, VisitLesion, VisitView


SITES: tuple[str, ...] = ANATOMIC_SITES
SEX_OPTIONS: tuple[str, ...] = SEXES
DECISIONS: tuple[str, ...] = ACTIONS
DECISION_HELP = {
    "biopsy": "Take a biopsy for histology",
    "excise": "Excise the lesion",
    "monitor": "Follow up with repeat imaging",
    "reassure": "Benign-appearing; no follow-up needed",
    "refer": "Refer to a colleague or specialist clinic",
}
IMAGE_SUFFIXES = tuple(sorted({"jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp"}))
UPLOAD_TYPES = (*IMAGE_SUFFIXES, "zip")
# Pillow formats an upload may be (those the store keeps); the scoring decodes them with the same rules.
UPLOAD_FORMATS = tuple(FORMAT_EXTENSIONS)
# Operating-system clutter inside archives: skipped without an error card.
_JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
# Documents that travel in a zip beside the images (a notes.txt, a referral PDF): skipped with a notice,
# not an error card — nothing is wrong with the upload.
_DOCUMENT_SUFFIXES = {".txt", ".md", ".csv", ".tsv", ".json", ".xml", ".pdf", ".doc", ".docx", ".rtf", ".odt"}
_DOCUMENT_SUFFIXES |= {".xls", ".xlsx", ".ods", ".html", ".htm", ".log"}

DISPLAY_PX = 768  # saliency maps are computed and shown at this size, not at full resolution

ProblemKind = Literal["error", "duplicate", "notice", "skipped"]


# ---------------------------------------------------------------- upload limits


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int = DEFAULT_MAX_IMAGE_BYTES  # per image (the store's own limit)
    max_pixels: int = MAX_PIXELS  # the one pixel limit of every input (data.images), the store's too
    max_images: int = 200  # per review
    max_total_bytes: int = 600 * 1024 * 1024  # all images of one review, held in memory
    max_zip_members: int = 1_000
    max_zip_uncompressed: int = 1024 * 1024 * 1024
    max_compression_ratio: float = 100.0  # JPEG/PNG barely compress; 100x is a zip bomb
    thumbnail_px: int = 384


DEFAULT_LIMITS = UploadLimits()
# The file uploader's own limit (its caption shows it): one image, or one zip of images, per file.
UPLOAD_FILE_MB = DEFAULT_LIMITS.max_file_bytes // (1024 * 1024)


def _mb(n: float) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


@dataclass(frozen=True)
class UploadProblem:
    filename: str
    reason: str
    kind: ProblemKind = "error"


@dataclass
class UploadedImage:
    """One lesion image of the review in progress."""

    sha256: str
    filename: str
    data: bytes = field(repr=False)
    image_format: str
    width: int
    height: int
    thumbnail: Image.Image = field(repr=False)
    site: str = "unknown"
    label: str = ""
    existing_lesion_id: int | None = None
    _display: Image.Image | None = field(default=None, repr=False, compare=False)
    _thumb_jpeg: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        """Short, stable id for widget keys."""
        return self.sha256[:16]

    def image(self) -> Image.Image:
        """The full-size, upright RGB image."""
        return decode_image(self.data, self.filename)

    def thumbnail_jpeg(self) -> bytes:
        """The thumbnail encoded once, so reruns of the page do not re-encode every image."""
        if self._thumb_jpeg is None:
            buffer = io.BytesIO()
            self.thumbnail.save(buffer, format="JPEG", quality=90)
            self._thumb_jpeg = buffer.getvalue()
        return self._thumb_jpeg

    def display_image(self, max_px: int = DISPLAY_PX) -> Image.Image:
        """Upright RGB at most `max_px` on a side (decoded once): for overlays and the saliency page."""
        if self._display is None:
            img = self.image()
            img.thumbnail((max_px, max_px))
            self._display = img
        return self._display


def is_zip(name: str, data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06") or name.lower().endswith(".zip")


def _is_junk(member: str) -> bool:
    parts = PurePosixPath(member).parts
    return (
        any(p == "__MACOSX" for p in parts)
        or PurePosixPath(member).name.lower() in _JUNK_NAMES
        or PurePosixPath(member).name.startswith("._")
    )


def expand_upload(
    name: str, data: bytes, limits: UploadLimits = DEFAULT_LIMITS
) -> Iterator[tuple[str, bytes] | UploadProblem]:
    """One uploaded file -> its images: itself, or the members of a zip archive.

    Archives are read in memory with hard limits (member count, uncompressed total, per-file size
    checked against the bytes actually read, compression ratio), so a zip bomb is refused, never
    inflated. Nothing is written to disk.
    """
    if not is_zip(name, data):
        yield name, data
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir() and not _is_junk(i.filename)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        yield UploadProblem(name, f"damaged or unreadable zip archive ({exc})")
        return
    if not infos:
        yield UploadProblem(name, "the zip archive contains no files")
        return
    if len(infos) > limits.max_zip_members:
        yield UploadProblem(
            name,
            f"the zip archive holds {len(infos):,} files; at most {limits.max_zip_members:,} are accepted",
        )
        return
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_zip_uncompressed:
        yield UploadProblem(
            name,
            f"the zip archive unpacks to {_mb(declared)}; at most {_mb(limits.max_zip_uncompressed)} is accepted",
        )
        return
    read_total = 0
    with archive:
        for info in infos:
            member = f"{name}/{info.filename}"
            if info.flag_bits & 0x1:
                yield UploadProblem(member, "encrypted (password-protected) file; cannot be read")
                continue
            if PurePosixPath(info.filename).suffix.lower() in _DOCUMENT_SUFFIXES:
                yield UploadProblem(member, "not an image (a document in the zip); skipped", "skipped")
                continue
            if info.filename.lower().endswith(".zip"):
                yield UploadProblem(member, "zip archives inside a zip archive are not opened")
                continue
            if info.file_size > limits.max_file_bytes:
                yield UploadProblem(
                    member,
                    f"file is {_mb(info.file_size)}; the limit is {_mb(limits.max_file_bytes)} per image",
                )
                continue
            if info.compress_size and info.file_size / info.compress_size > limits.max_compression_ratio:
                yield UploadProblem(member, "suspicious compression ratio (zip-bomb protection); file not opened")
                continue
            try:
                with archive.open(info) as handle:
                    # Never trust the header: read at most one byte over the limit.
                    content = handle.read(limits.max_file_bytes + 1)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
                yield UploadProblem(member, f"cannot be extracted from the archive ({exc})")
                continue
            if len(content) > limits.max_file_bytes:
                yield UploadProblem(member, f"file is over the limit of {_mb(limits.max_file_bytes)} per image")
                continue
            read_total += len(content)
            if read_total > limits.max_zip_uncompressed:
                yield UploadProblem(name, "the zip archive unpacks to more than its header says; stopped reading")
                return
            yield member, content


def check_image(
    name: str, data: bytes, limits: UploadLimits = DEFAULT_LIMITS
) -> tuple[dict[str, Any], Image.Image] | UploadProblem:
    """Validate one image file -> (facts, thumbnail) or a problem naming the reason in plain words."""
    if not data:
        return UploadProblem(name, "file is empty (0 bytes)")
    if len(data) > limits.max_file_bytes:
        return UploadProblem(name, f"file is {_mb(len(data))}; the limit is {_mb(limits.max_file_bytes)} per image")
    # The input rules shared with the predict CLI and the training data (data.images), on the header alone
    # before anything is decoded: the pixel limit, the lesion geometry, one picture per file.
    try:
        probe_image(data, name, max_pixels=limits.max_pixels, formats=UPLOAD_FORMATS)
    except ImageDecodeError as exc:
        if exc.reason.startswith("not an image in an accepted format"):
            return UploadProblem(
                name,
                "not an image this dashboard can read (accepted: JPEG, PNG, TIFF, WebP, BMP, or a zip of these)",
            )
        return UploadProblem(name, exc.reason)
    try:
        info = inspect_image(data, max_bytes=limits.max_file_bytes, max_pixels=limits.max_pixels)
    except ValueError as exc:
        reason = str(exc)
        if "truncated" in reason.lower() or "corrupt" in reason.lower():
            reason = "corrupt or truncated image data (the file is incomplete or damaged)"
        return UploadProblem(name, reason)
    try:
        full = decode_image(data, name, max_pixels=limits.max_pixels, formats=UPLOAD_FORMATS)
    except ImageDecodeError as exc:
        return UploadProblem(name, exc.reason)
    thumb = full.copy()
    thumb.thumbnail((limits.thumbnail_px, limits.thumbnail_px))
    facts = {
        "sha256": info.sha256,
        "image_format": info.image_format,
        "width": full.width,
        "height": full.height,
    }
    return facts, thumb


def default_label(filename: str) -> str:
    stem = PurePosixPath(filename).stem.strip() or "lesion"
    return stem[:120]


# ---------------------------------------------------------------- patient


# "Follow-up of" choice for a lesion seen for the first time. Not None: a select box whose value is None shows
# an empty "Choose an option", which reads as if nothing were decided. Database ids start at 1.
NEW_LESION = 0


@dataclass
class PatientContext:
    identifier: str
    birth_year: int | None = None
    sex: str = "unknown"
    patient_id: int | None = None  # set when the patient is already in the case store
    known_lesions: list[LesionSummary] = field(default_factory=list)
    # sha256 -> description of where this exact image was saved before
    known_images: dict[str, tuple[int, str]] = field(default_factory=dict)
    visit_count: int = 0

    def age(self, today: dt.date | None = None) -> float | None:
        if self.birth_year is None:
            return None
        return float((today or dt.date.today()).year - self.birth_year)

    def describe(self) -> str:
        parts = [self.identifier]
        age = self.age()
        if self.birth_year is not None:
            parts.append(f"born {self.birth_year} (≈{age:.0f} y)")
        else:
            parts.append("age unknown")
        parts.append(self.sex if self.sex != "unknown" else "sex unknown")
        return " · ".join(parts)

    def follow_up_options(self) -> list[int]:
        """The "Follow-up of" choices: NEW_LESION first, then the ids of the patient's known lesions."""
        return [NEW_LESION] + [lesion.id for lesion in self.known_lesions]

    def lesion_choice_label(self, lesion_id: int | None) -> str:
        if lesion_id is None or lesion_id == NEW_LESION:
            return "New lesion (first time seen)"
        for lesion in self.known_lesions:
            if lesion.id == lesion_id:
                seen = lesion.last_seen.date().isoformat() if lesion.last_seen else "never"
                return f"#{self.lesion_number(lesion_id)} {lesion.label} · {lesion.site} · last seen {seen}"
        return "another lesion"

    def lesion_number(self, lesion_id: int) -> int:
        """The lesion's number for this patient (1 = first seen), as pages show it; ids are global."""
        for position, lesion in enumerate(self.known_lesions, start=1):
            if lesion.id == lesion_id:
                return getattr(lesion, "number", 0) or position
        return 0


def validate_new_patient(identifier: str, birth_year: int | None, sex: str) -> list[str]:
    """Problems with a new-patient form, as messages (empty = fine)."""
    problems = []
    identifier = (identifier or "").strip()
    if not identifier:
        problems.append("Enter a pseudonymous patient identifier.")
    elif len(identifier) > 64:
        problems.append("The identifier is longer than 64 characters.")
    elif any(ord(ch) < 32 for ch in identifier):
        problems.append("The identifier contains control characters.")
    if birth_year is not None and not 1900 <= int(birth_year) <= dt.date.today().year:
        problems.append(f"Birth year must be between 1900 and {dt.date.today().year}.")
    if sex not in SEX_OPTIONS:
        problems.append(f"Sex must be one of {', '.join(SEX_OPTIONS)}.")
    return problems


def patient_from_store(store: Any, patient_id: int) -> PatientContext:
    """Load an existing patient with the lesions and images saved before (for follow-up linking)."""
    timeline: PatientTimeline = store.patient_timeline(patient_id)
    known_images: dict[str, tuple[int, str]] = {}
    for visit in timeline.visits:
        for lesion in visit.lesions:
            where = (lesion.lesion_id, f"visit of {visit.visit_time.date().isoformat()} (lesion “{lesion.label}”)")
            known_images.setdefault(lesion.image.sha256, where)
            # The stored file has its metadata stripped: a re-upload matches the hash of the upload.
            if lesion.image.source_sha256:
                known_images.setdefault(lesion.image.source_sha256, where)
    record = timeline.patient
    return PatientContext(
        identifier=record.identifier,
        birth_year=record.birth_year,
        sex=record.sex,
        patient_id=record.id,
        known_lesions=list(store.list_lesions(patient_id)),
        known_images=known_images,
        visit_count=len(timeline.visits),
    )


def find_exact_patient(store: Any, identifier: str) -> int | None:
    identifier = identifier.strip()
    for summary in store.search_patients(identifier):
        if summary.identifier == identifier:
            return summary.id
    return None


# ---------------------------------------------------------------- review state


@dataclass
class LesionDecision:
    action: str | None = None
    comment: str = ""


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)  # sha256 of new images
    problems: list[UploadProblem] = field(default_factory=list)


class ReviewNotReady(ValueError):
    """The review cannot be saved yet; the message says why, in the clinician's words."""


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
    saved_visit_id: int | None = None
    saved_visit_number: int | None = None  # the visit's number for this patient (1 = first), as pages show it
    heatmaps: dict[tuple[str, str], Any] = field(default_factory=dict)  # (sha256, method) -> (H, W) array
    uploader_generation: int = 0  # bumped to empty the file uploader after its files were taken in

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

    def input_fingerprint(self) -> str:
        """What the scores depend on: images, their sites, the patient's age and sex."""
        payload = {
            "age": self.patient.age() if self.patient else None,
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
        return sum(len(img.data) for img in self.images.values())

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
                if _is_junk(member):
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
        if self.total_bytes + len(data) > limits.max_total_bytes:
            report.problems.append(
                UploadProblem(name, f"the images of one review may total {_mb(limits.max_total_bytes)}; not added")
            )
            return
        checked = check_image(name, data, limits)
        if isinstance(checked, UploadProblem):
            report.problems.append(checked)
            return
        facts, thumb = checked
        image = UploadedImage(filename=name, data=data, thumbnail=thumb, label=default_label(name), **facts)
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

    def remove_image(self, sha256: str) -> None:
        self._require_editable()
        self.images.pop(sha256, None)
        self.decisions.pop(sha256, None)

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

    def set_label(self, sha256: str, label: str) -> None:
        self._require_editable()
        self.images[sha256].label = (label or "").strip()[:120]

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
        return PatientInfo(age=self.patient.age(), sex=self.patient.sex)

    def run_triage(
        self,
        predictor: Any,
        tta: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        triage_fn: Callable[..., Any] | None = None,
    ) -> Any:
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
        result = triage_fn(predictor, self.lesion_inputs(), self.patient_info(), **kwargs)
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
        return table

    def triage_errors(self) -> pd.DataFrame:
        if self.result is None or self.result.errors is None:
            return pd.DataFrame(columns=["image_id", "filename", "reason"])
        return self.result.errors

    # ------------------------------------------------------------ decisions

    def set_decision(self, sha256: str, action: str | None, comment: str | None = None) -> None:
        self._require_editable()
        if action is not None and action not in DECISIONS:
            raise ValueError(f"unknown decision {action!r}")
        decision = self.decisions.setdefault(sha256, LesionDecision())
        decision.action = action
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

    # ------------------------------------------------------------ saving

    def build_review(
        self,
        clinician: str,
        model_version: str,
        model_checksum: str,
        visit_time: dt.datetime | None = None,
    ) -> ReviewToSave:
        if self.patient is None:
            raise ReviewNotReady("Choose or create the patient first.")
        if self.result is None:
            raise ReviewNotReady("Run the triage before saving.")
        if self.result_is_stale:
            raise ReviewNotReady("Images or sites changed after the triage ran: run the triage again before saving.")
        if not (clinician or "").strip():
            raise ReviewNotReady("Enter the reviewing clinician's name before saving.")
        table = self.scored_table()
        if table.empty:
            raise ReviewNotReady("No image could be scored, so there is nothing to save.")
        lesions = []
        for row in table.itertuples():
            image = self.images[row.image_id]
            decision = self.decision(row.image_id)
            comment = decision.comment if decision.action else ""
            ugly = None if row.ugly_duckling is None or _isnan(row.ugly_duckling) else float(row.ugly_duckling)
            lesions.append(
                LesionReview(
                    image_bytes=image.data,
                    original_filename=image.filename,
                    site=image.site,
                    lesion_label=image.label or default_label(image.filename),
                    existing_lesion_id=image.existing_lesion_id,
                    p_melanoma=float(row.p_melanoma),
                    ugly_duckling=ugly,
                    triage_score=float(row.triage_score),
                    rank=int(row.rank),
                    decision_action=decision.action,
                    decision_comment=comment,
                    # The score's uncertainty and flag, as the live card showed them.
                    p_spread=_optional_float(getattr(row, "p_spread", None)),
                    tta_views=int(self.result_tta) if self.result_tta else None,
                    outlier=bool(getattr(row, "outlier", False)),
                )
            )
        return ReviewToSave(
            patient_identifier=self.patient.identifier,
            birth_year=self.patient.birth_year,
            sex=self.patient.sex,
            clinician=clinician.strip(),
            visit_time=visit_time or dt.datetime.now(dt.UTC),
            model_version=model_version,
            model_checksum=model_checksum,
            notes=self.notes.strip(),
            lesions=lesions,
        )

    def save(self, store: Any, clinician: str, model_version: str, model_checksum: str) -> int:
        review = self.build_review(clinician, model_version, model_checksum)
        visit_id = store.save_review(review)
        self.saved_visit_id = visit_id
        self.problems = []  # upload messages were about the work in progress, which is now saved
        # The visit is saved; what follows only serves display (its number) and links to the history page.
        with contextlib.suppress(Exception):
            saved = store.load_visit(visit_id)
            self.saved_visit_number = getattr(saved, "number", None) or None
            if self.patient is not None and self.patient.patient_id is None:
                self.patient.patient_id = saved.patient_id
        return visit_id

    # ------------------------------------------------------------ server-side draft (issue: reload lost work)

    def draft_state(self) -> dict[str, Any]:
        """Everything a reload would lose except the image bytes and the scores, as JSON."""
        patient = self.patient
        return {
            "version": 1,
            "patient": None
            if patient is None
            else {
                "identifier": patient.identifier,
                "birth_year": patient.birth_year,
                "sex": patient.sex,
                "patient_id": patient.patient_id,
            },
            "images": [
                {"sha256": sha, "site": img.site, "label": img.label, "lesion_id": img.existing_lesion_id}
                for sha, img in self.images.items()
            ],
            "decisions": {sha: [d.action, d.comment] for sha, d in self.decisions.items() if d.action or d.comment},
            "notes": self.notes,
        }

    def draft_images(self) -> list[tuple[str, str, bytes]]:
        return [(sha, img.filename, img.data) for sha, img in self.images.items()]

    def draft_fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.draft_state(), sort_keys=True).encode()).hexdigest()

    def _require_editable(self) -> None:
        if self.is_saved:
            raise ReviewNotReady("This review is saved and read-only. Start a new review to make changes.")


def draft_summary(draft: Any) -> str:
    """One line on a kept draft: whose review, how many images, when last changed."""
    patient = (draft.state or {}).get("patient") or {}
    when = draft.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
    who = patient.get("identifier", "a patient")
    return f"An unsaved review of {who} ({len(draft.images)} image(s)), last changed {when}."


def resume_draft(draft: Any, store: Any = None) -> ReviewState:
    """A review rebuilt from a kept draft: the patient, the images (checked again), sites, labels, follow-up
    links, decisions and notes. The triage is run again (the scores are not kept; the TTA is fixed per model)."""
    saved = draft.state or {}
    person = saved.get("patient") or {}
    if not person.get("identifier"):
        raise ValueError("the kept review names no patient")
    if person.get("patient_id") is not None and store is not None:
        patient = patient_from_store(store, int(person["patient_id"]))
    else:
        patient = PatientContext(
            identifier=str(person["identifier"]), birth_year=person.get("birth_year"), sex=person.get("sex", "unknown")
        )
    state = ReviewState(patient=patient)
    state.add_files([(image.filename, image.data) for image in draft.images])
    # The draft keeps images with personal metadata stripped: map the upload's key to the review's.
    key_of = {image.upload_sha256: sha256_of(image.data) for image in draft.images}
    for entry in saved.get("images", []):
        sha = key_of.get(entry.get("sha256"))
        if sha not in state.images:
            continue
        with contextlib.suppress(ValueError, KeyError):
            if entry.get("lesion_id") is not None:
                state.link_lesion(sha, int(entry["lesion_id"]))
            else:
                state.set_site(sha, entry.get("site", "unknown"))
            state.set_label(sha, entry.get("label", ""))
    for old, (action, comment) in (saved.get("decisions") or {}).items():
        sha = key_of.get(old)
        if sha in state.images:
            with contextlib.suppress(ValueError):
                state.set_decision(sha, action, comment or "")
    state.notes = str(saved.get("notes") or "")
    state.problems = [p for p in state.problems if p.kind != "notice"]
    return state


def _optional_float(value: Any) -> float | None:
    return None if value is None or _isnan(value) else float(value)


def _isnan(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def model_checksum(config: dict[str, Any]) -> str:
    return str(config.get("weights_sha256") or config.get("weights_sha256_actual") or "unknown")[:128]


# ---------------------------------------------------------------- reading scores


@dataclass(frozen=True)
class ScoreBand:
    name: Literal["above", "near", "below"]
    title: str
    colour: Literal["red", "orange", "green"]
    explanation: str


def score_band(p: float, threshold: float, spread: float = 0.0) -> ScoreBand:
    """Where a score lies relative to the operating threshold, allowing for its uncertainty."""
    margin = max(2.0 * float(spread or 0.0), 0.02)
    low, high = max(0.0, p - margin), min(1.0, p + margin)
    if p >= threshold:
        if low < threshold:
            return ScoreBand(
                "above",
                "Above threshold (borderline)",
                "red",
                f"{pct(p)} is above the {pct(threshold)} threshold, but its uncertainty "
                f"({pct(low)}–{pct(high)}) reaches below it.",
            )
        return ScoreBand("above", "Above threshold", "red", f"{pct(p)} is above the {pct(threshold)} threshold.")
    if high >= threshold:
        return ScoreBand(
            "near",
            "Near threshold",
            "orange",
            f"{pct(p)} is below the {pct(threshold)} threshold, but its uncertainty "
            f"({pct(low)}–{pct(high)}) reaches above it.",
        )
    return ScoreBand("below", "Below threshold", "green", f"{pct(p)} is below the {pct(threshold)} threshold.")


def pct(p: float | None, digits: int | None = None) -> str:
    """A probability as a percentage, the one format of every page: one decimal below 10% (the calibrated
    P(melanoma) is often a few per cent: "2.4%"), none from 10% ("86%"); ``digits`` forces a precision."""
    if p is None or _isnan(p):
        return "–"
    value = 100 * float(p)
    if digits is None:
        digits = 1 if round(abs(value), 1) < 10 else 0
    return f"{value:.{digits}f}%"


def spread_text(spread: float | None) -> str:
    if spread is None or _isnan(spread):
        return "no uncertainty estimate"
    return f"± {100 * float(spread):.1f} points across augmented views"


def reason_lines(reasons: Any) -> list[str]:
    """The triage's plain-text reasons, one per line/semicolon, ready for a bullet list."""
    if reasons is None or (isinstance(reasons, float) and math.isnan(reasons)):
        return []
    if isinstance(reasons, list | tuple):
        parts = [str(r) for r in reasons]
    else:
        text = str(reasons)
        parts = text.split("\n") if "\n" in text else text.split("; ")
    return [p.strip().rstrip(".") + "." for p in parts if p.strip()]


# ---------------------------------------------------------------- operating point at real prevalence


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    sensitivity: float | None
    specificity: float | None
    prevalence: float
    chosen_by: str = ""

    def _screening(self, key: str) -> float | None:
        if self.sensitivity is None or self.specificity is None:
            return None
        value = at_prevalence(self.sensitivity, self.specificity, self.prevalence)[key]
        return value if math.isfinite(value) else None

    @property
    def ppv(self) -> float | None:
        return self._screening("ppv")

    @property
    def npv(self) -> float | None:
        return self._screening("npv")

    @property
    def reviews_per_melanoma(self) -> float | None:
        """Lesions flagged (and so reviewed) per melanoma found: 1 / PPV."""
        ppv = self.ppv
        return 1 / ppv if ppv else None

    def per_1000(self) -> dict[str, float] | None:
        """Natural frequencies for 1,000 screened lesions."""
        if self.sensitivity is None or self.specificity is None:
            return None
        melanomas = 1000 * self.prevalence
        found = melanomas * self.sensitivity
        false_alarms = (1000 - melanomas) * (1 - self.specificity)
        return {
            "melanomas": melanomas,
            "found": found,
            "missed": melanomas - found,
            "flagged": found + false_alarms,
            "false_alarms": false_alarms,
        }


def operating_point(config: dict[str, Any], prevalence: float = SCREENING_PREVALENCE) -> OperatingPoint:
    op = config.get("operating_point") or {}
    return OperatingPoint(
        threshold=float(op.get("threshold", 0.5)),
        sensitivity=_maybe_float(op.get("sensitivity")),
        specificity=_maybe_float(op.get("specificity")),
        prevalence=prevalence,
        chosen_by=str(op.get("chosen_by") or op.get("rule") or ""),
    )


def _maybe_float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def performance_sentence(op: OperatingPoint) -> str:
    """One line a clinician can read next to the scores."""
    if op.sensitivity is None or op.specificity is None:
        return (
            f"Operating threshold {pct(op.threshold)}. This model has no validation figures recorded: "
            "treat its scores as unvalidated."
        )
    per = op.reviews_per_melanoma
    return (
        f"Operating threshold {pct(op.threshold)}: in validation it found {pct(op.sensitivity)} of melanomas "
        f"(sensitivity) and cleared {pct(op.specificity)} of benign lesions (specificity). At the "
        f"{pct(op.prevalence, 2)} prevalence of screening, about 1 in {per:.0f} flagged lesions "
        "is a melanoma "
        f"(PPV {pct(op.ppv, 1)})."
    )


# ---------------------------------------------------------------- model card files


def checkpoint_file_json(folder: Path | None, name: str) -> dict[str, Any] | None:
    if folder is None:
        return None
    path = Path(folder) / name
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def checkpoint_file_text(folder: Path | None, name: str) -> str | None:
    if folder is None:
        return None
    path = Path(folder) / name
    try:
        return path.read_text() if path.is_file() else None
    except OSError:
        return None


CURVE_KEYS = ("roc", "pr", "calibration")
# Column names a clinician can read, for the per-dataset validation table.
METRIC_NAMES = {
    "n": "images",
    "n_melanoma": "melanomas",
    "auc": "ROC AUC",
    "pauc_80": "pAUC (TPR ≥ 80%)",
    "sens_at_spec90": "sensitivity at 90% specificity",
    "spec_at_sens90": "specificity at 90% sensitivity",
    "spec_at_sens95": "specificity at 95% sensitivity",
    "calibration_ece": "calibration error (ECE)",
}


def curve_sets(validation: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Named sets of validation curves ({roc, pr, calibration}).

    Accepts the flat layout (roc/pr/calibration at the top) and the layout with
    ``curves: {pooled: {...}, <dataset>: {...}}``; "pooled" comes first.
    """
    validation = validation or {}
    sets: dict[str, dict[str, Any]] = {}
    if any(isinstance(validation.get(k), dict) for k in CURVE_KEYS):
        sets["validation"] = {k: validation.get(k) for k in CURVE_KEYS}
    curves = validation.get("curves")
    if isinstance(curves, dict):
        for name, value in sorted(curves.items(), key=lambda kv: (kv[0] != "pooled", kv[0])):
            if isinstance(value, dict) and any(isinstance(value.get(k), dict) for k in CURVE_KEYS):
                sets[name] = value
    return sets


def per_dataset_table(validation: dict[str, Any] | None) -> pd.DataFrame:
    """One row per dataset (and "all datasets" when pooled figures exist), readable columns."""
    validation = validation or {}
    per = dict(validation.get("per_dataset") or {})
    if isinstance(validation.get("pooled"), dict):
        per = {"all datasets (pooled)": validation["pooled"], **per}
    rows = []
    for name, stats in per.items():
        if not isinstance(stats, dict):
            continue
        row: dict[str, Any] = {"dataset": name}
        for key, value in stats.items():
            label = METRIC_NAMES.get(key)
            if label is None or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            row[label] = int(value) if key in ("n", "n_melanoma") else round(float(value), 3)
            ci = stats.get(f"{key}_ci")
            if isinstance(ci, list | tuple) and len(ci) == 2:
                row[f"{label} 95% CI"] = f"{float(ci[0]):.3f}–{float(ci[1]):.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- case history


def timeline_table(timeline: PatientTimeline) -> pd.DataFrame:
    rows = []
    for visit in reversed(timeline.visits):  # newest first
        decided = [les for les in visit.lesions if les.decision]
        top = visit.lesions[0].prediction if visit.lesions and visit.lesions[0].prediction else None
        rows.append(
            {
                "visit": visit.number or visit.id,
                "date": visit.visit_time.astimezone().strftime("%Y-%m-%d %H:%M"),
                "clinician": visit.clinician,
                "lesions": len(visit.lesions),
                "highest P(melanoma)": top.p_melanoma if top else None,
                "decisions": ", ".join(sorted({les.decision.action for les in decided})) or "none",
                "model": visit.model_version,
            }
        )
    return pd.DataFrame(rows)


def decisions_table(decisions: Sequence[Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "date": d.visit_time.astimezone().strftime("%Y-%m-%d"),
                "lesion": f"#{d.lesion_number or d.lesion_id} {d.lesion_label}",
                "site": d.site,
                "decision": d.action,
                "comment": d.comment,
                "clinician": d.clinician,
            }
            for d in reversed(list(decisions))
        ]
    )


def visit_choice_label(visit: VisitView) -> str:
    return (
        f"Visit {visit.number or visit.id} · {visit.visit_time.astimezone().strftime('%Y-%m-%d %H:%M')} · "
        f"{len(visit.lesions)} lesion(s) · {visit.clinician}"
    )


class StoredImageError(LookupError):
    """A saved lesion image cannot be shown; the message says why, in the clinician's words."""


@dataclass(frozen=True)
class StoredLesionImage:
    """One lesion image of a saved visit, ready for the saliency page (no Streamlit needed)."""

    visit: VisitView
    lesion: VisitLesion
    image: Image.Image = field(repr=False)  # upright RGB, at most DISPLAY_PX on a side
    site: str
    patient: Any  # model.triage.PatientInfo: sex, and age at the visit

    @property
    def sha256(self) -> str:
        return self.lesion.image.sha256

    @property
    def key(self) -> str:
        """The same short id the review's saliency link uses (``?lesion=``)."""
        return self.sha256[:16]

    @property
    def scored_by(self) -> str | None:
        """The model id stored with the prediction made at that visit (None if it was not scored)."""
        return self.lesion.prediction.model_id if self.lesion.prediction else None

    def source_line(self) -> str:
        when = self.visit.visit_time.astimezone().strftime("%Y-%m-%d %H:%M")
        return (
            f"Saved visit {self.visit.number or self.visit.id} of {when} ({self.visit.clinician}) · "
            f"lesion #{self.lesion.lesion_number or self.lesion.lesion_id} "
            f"“{self.lesion.label}” · {self.site} · {self.lesion.image.original_filename}"
        )


def stored_lesion_image(
    store: Any, visit_id: int | str, lesion_key: str, max_px: int = DISPLAY_PX
) -> StoredLesionImage:
    """Resolve a saved visit's lesion (``lesion_key``: the image's SHA-256 or a prefix of it, ≥ 8 hex
    characters) into its image, the site stored with the lesion and the patient's metadata as at that
    visit — what the model was given when it scored the image.

    The image is read through the store (``CaseStore.image_path``), checked against its SHA-256 and
    decoded with data.images.decode_image. Every failure raises StoredImageError with a readable reason.
    """
    from data.images import read_source
    from model.triage import PatientInfo

    try:
        visit_number = int(str(visit_id).strip())
    except ValueError:
        raise StoredImageError(f"“{visit_id}” is not a saved visit number.") from None
    try:
        visit = store.load_visit(visit_number)
    except NotFoundError:
        raise StoredImageError(f"Visit {visit_number} is not in the case database.") from None
    key = (lesion_key or "").strip().lower()
    matches = [les for les in visit.lesions if len(key) >= 8 and les.image.sha256.startswith(key)]
    if len(matches) != 1:
        raise StoredImageError(f"Visit {visit_number} has no lesion image “{lesion_key}”.")
    lesion = matches[0]
    what = f"The stored image of lesion #{lesion.lesion_id} “{lesion.label}” (visit {visit_number})"
    name = lesion.image.original_filename or None
    try:
        data, name = read_source(store.image_path(lesion.image.sha256), name)
        image = decode_image(data, name) if sha256_of(data) == lesion.image.sha256 else None
    except (NotFoundError, ValueError) as exc:  # ImageDecodeError is a ValueError
        reason = exc.reason if isinstance(exc, ImageDecodeError) else str(exc)
        raise StoredImageError(f"{what} cannot be read: {reason}.") from None
    if image is None:
        raise StoredImageError(
            f"{what} is corrupt: the file no longer matches the checksum recorded when it was saved."
        )
    image.thumbnail((max_px, max_px))
    record = store.get_patient(visit.patient_id)
    context = PatientContext(identifier="", birth_year=record.birth_year, sex=record.sex)
    patient = PatientInfo(age=context.age(visit.visit_time.date()), sex=record.sex)
    return StoredLesionImage(visit=visit, lesion=lesion, image=image, site=lesion.site, patient=patient)


def export_filename(identifier: str, fmt: str, today: dt.date | None = None) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in identifier)[:40] or "patient"
    return f"case-history_{safe}_{(today or dt.date.today()).isoformat()}.{fmt}"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
