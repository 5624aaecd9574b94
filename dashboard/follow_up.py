"""Following one mole across visits, without Streamlit: each known lesion's images and scores by visit
(from the store's patient timeline), the follow-up picker's filter by site, and what a follow-up's card says
about the lesion's past. The "score rose" flag is score_rise.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from dashboard.choices import decision_label
from dashboard.store.core import visit_order_key
from data.images import decode_image

if TYPE_CHECKING:
    from dashboard.store.records import ImageView, LesionSummary, PatientTimeline

ALL_SITES = "all sites"
UNSAVED_VISIT_ID = -1  # the review in progress, shown with the saved visits before it is saved


@dataclass(frozen=True)
class LesionVisit:
    """One visit's image of a lesion and the score saved with it."""

    visit_id: int  # UNSAVED_VISIT_ID for the review in progress
    visit_number: int  # per patient (1 = first visit; 0 = the review in progress)
    # When the lesion looked like this: the day entered for images taken before the visit (at local noon),
    # else the visit's own time. Trends and "last seen" use it; the order is the store's visit order.
    visit_time: datetime
    image: ImageView | None  # None for the review in progress (its image is not stored yet)
    p_melanoma: float | None
    p_spread: float | None  # None on scores saved before the spread was recorded
    ugly_duckling: float | None
    model_id: str | None
    rank: int | None = None

    @property
    def date(self) -> str:
        return self.visit_time.astimezone().strftime("%Y-%m-%d")

    @property
    def is_unsaved(self) -> bool:
        return self.visit_id == UNSAVED_VISIT_ID

    def name(self) -> str:
        return "this visit (not saved yet)" if self.is_unsaved else f"visit {self.visit_number} · {self.date}"


@dataclass(frozen=True)
class LesionHistory:
    """A known lesion of the patient: what it is, where it is, and its visits oldest first."""

    lesion_id: int
    number: int  # per patient (1 = the patient's first lesion)
    label: str
    site: str
    visits: tuple[LesionVisit, ...]
    body_region: str | None = None

    @property
    def latest(self) -> LesionVisit:
        return self.visits[-1]

    @property
    def previous(self) -> LesionVisit | None:
        return self.visits[-2] if len(self.visits) > 1 else None

    def title(self) -> str:
        return f"#{self.number or self.lesion_id} {self.label}".strip()

    def where(self) -> str:
        """Site, and the body-map region when one was recorded."""
        return self.site if not self.body_region else f"{self.site} · {region_label(self.body_region)}"


def with_unsaved_visit(
    lesion: LesionHistory,
    p_melanoma: float | None,
    p_spread: float | None,
    model_id: str | None,
    when: datetime,
    ugly_duckling: float | None = None,
) -> LesionHistory:
    """The lesion's saved visits plus the review in progress (its live score), for the review's comparison."""
    current = LesionVisit(
        visit_id=UNSAVED_VISIT_ID,
        visit_number=0,
        visit_time=when,
        image=None,
        p_melanoma=p_melanoma,
        p_spread=p_spread,
        ugly_duckling=ugly_duckling,
        model_id=model_id,
    )
    return replace(lesion, visits=(*lesion.visits, current))


def comparable(lesions: Sequence[LesionHistory]) -> list[LesionHistory]:
    """Known lesions whose latest visit has a stored dermoscopic photo (overview photos show a body area)."""
    return [
        h
        for h in lesions
        if h.visits and h.latest.image is not None and getattr(h.latest.image, "kind", "dermoscopic") == "dermoscopic"
    ]


def read_stored_image(path: str | Path, max_px: int) -> Image.Image | None:
    """A stored lesion image (upright RGB, at most ``max_px`` on a side), or None if it cannot be read."""
    try:
        image = decode_image(Path(path), lesion=False)
    except (OSError, ValueError):  # ImageDecodeError is a ValueError
        return None
    image.thumbnail((max_px, max_px))
    return image


def region_label(key: str) -> str:
    from data.body_sites import REGIONS

    region = REGIONS.get(key)
    return region.label if region is not None else key


def lesion_histories(timeline: PatientTimeline) -> list[LesionHistory]:
    """Every lesion of the patient with its images and scores by visit, in the patient's lesion order.

    Read from ``CaseStore.patient_timeline`` (one query). Each visit contributes the lesion's scored
    (dermoscopic) image; overview photos are not compared. Images entered as taken on an earlier day are
    dated that day. A lesion's visits come in the store's visit order (``visit_order_key``, which also
    numbers the visits), so a trend or a score-rise check never runs against the visit numbers.
    """
    visits_of: dict[int, dict[int, LesionVisit]] = {}
    about: dict[int, Any] = {}
    in_order = sorted(timeline.visits, key=lambda v: visit_order_key(getattr(v, "taken_on", None), v.visit_time, v.id))
    for visit in in_order:  # oldest first
        taken_on = getattr(visit, "taken_on", None)
        when = visit.visit_time if taken_on is None else datetime.combine(taken_on, time(12)).astimezone()
        for item in visit.lesions:
            pred = item.prediction
            visits_of.setdefault(item.lesion_id, {})[visit.id] = LesionVisit(
                visit_id=visit.id,
                visit_number=visit.number or visit.id,
                visit_time=when,
                image=item.image,
                p_melanoma=None if pred is None else pred.p_melanoma,
                p_spread=None if pred is None else pred.p_spread,
                ugly_duckling=None if pred is None else pred.ugly_duckling,
                model_id=None if pred is None else pred.model_id,
                rank=None if pred is None else pred.rank,
            )
            about[item.lesion_id] = item  # the latest visit's site/label/number win
    histories = [
        LesionHistory(
            lesion_id=lesion_id,
            number=about[lesion_id].lesion_number or lesion_id,
            label=about[lesion_id].label,
            site=about[lesion_id].site,
            visits=tuple(by_visit.values()),  # in the visit order above
            body_region=getattr(about[lesion_id], "body_region", None),
        )
        for lesion_id, by_visit in visits_of.items()
    ]
    return sorted(histories, key=lambda h: h.number)


# ---------------------------------------------------------------- picker


def site_filter_options(lesions: Iterable[LesionHistory]) -> list[str]:
    """The picker's site filter: "all sites" first, then each site that has a known lesion."""
    return [ALL_SITES, *sorted({lesion.site for lesion in lesions})]


def default_site_filter(image_site: str, lesions: Sequence[LesionHistory]) -> str:
    """Start on the image's own site when a known lesion is there (a lesion does not move), else all."""
    return image_site if any(lesion.site == image_site for lesion in lesions) else ALL_SITES


def filter_by_site(
    lesions: Iterable[LesionHistory], site: str, keep_lesion_id: int | None = None
) -> list[LesionHistory]:
    """The known lesions on ``site`` ("all sites": every one). The lesion the image is linked to now
    (``keep_lesion_id``) always stays, so a filter never hides the current choice."""
    return [
        lesion
        for lesion in lesions
        if site in (ALL_SITES, lesion.site) or (keep_lesion_id is not None and lesion.lesion_id == keep_lesion_id)
    ]


def previous_score_line(lesion: LesionHistory, now: float, now_model: str | None = None) -> str | None:
    """On a follow-up's card: the lesion's last saved score beside today's, whichever way it moved (a fall is
    news too); None when the lesion has no saved score."""
    from dashboard.wording import pct

    scored = [v for v in lesion.visits if v.p_melanoma is not None and not v.is_unsaved]
    if not scored:
        return None
    last = scored[-1]
    line = f"Last saved score: {pct(last.p_melanoma)} at {last.name()}; now {pct(now)}"
    if now_model is not None and last.model_id not in (None, now_model):
        line += " (scored by another model version then)"
    return line + "."


def earlier_findings(summary: LesionSummary | None) -> tuple[str, bool] | None:
    """On a follow-up's card: the lesion's recorded histology and last decision, and whether the histology was
    malignant (a lesion already excised as melanoma photographed again needs a second look at the link);
    None when nothing was recorded."""
    if summary is None:
        return None
    from dashboard.outcomes import HISTOLOGY_LABELS

    parts, malignant = [], False
    histology = summary.histology
    if histology is not None and histology.result != "not_done":
        malignant = histology.result in ("melanoma", "other_malignant")
        result = HISTOLOGY_LABELS[histology.result].lower()
        parts.append(f"histology {result}" + (f" (reported {histology.reported_on})" if histology.reported_on else ""))
    if summary.latest_action:
        due = getattr(summary, "review_due", None)
        last = decision_label(summary.latest_action)
        parts.append(f"last decision: {last}" + (f", repeat imaging due {due}" if due else ""))
    if not parts:
        return None
    return "Recorded for this lesion: " + "; ".join(parts) + ".", malignant
