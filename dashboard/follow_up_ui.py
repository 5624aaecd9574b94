"""Streamlit parts of following a lesion: a lesion's comparison view (two visits side by side, aligned overlay
or difference, the score trend with its band), the score-rise flag, and the known lesions of the review's
patient. The follow-up picker (thumbnails of those lesions) is in follow_up_picker.py; the logic is in
follow_up.py, comparison.py and follow_up_figures.py.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import streamlit as st
from PIL import Image

from dashboard.comparison import SCALE_CAVEAT, AlignedPair, aligned_pair, blend, difference, fit_into_box
from dashboard.follow_up import (
    LesionHistory,
    LesionVisit,
    earlier_findings,
    lesion_histories,
    previous_score_line,
    read_stored_image,
    with_unsaved_visit,
)
from dashboard.follow_up_figures import lesion_trend
from dashboard.model_evidence import rephotograph_share
from dashboard.score_rise import RiseMargin, ScoreRise, lesion_rise, score_rise
from dashboard.textsafe import literal
from dashboard.wording import pct, score_interval

COMPARE_SOURCE_PX = 900  # stored images are read at most this size for the comparison
HISTORIES = "follow_up_histories"
VIEWS = ("Side by side", "Aligned overlay", "Difference")
ZOOM_BELOW = 0.25  # the trend's axis starts zoomed when every score is below this


def rise_margin() -> RiseMargin:
    return RiseMargin.from_setting()


# ---------------------------------------------------------------- data, cached


def review_histories(store: Any, patient: Any) -> list[LesionHistory]:
    """The known lesions of the review's patient, read once per patient and visit count."""
    if store is None or patient is None or patient.patient_id is None or not patient.known_lesions:
        return []
    key = (patient.patient_id, patient.visit_count, len(patient.known_lesions))
    cached = st.session_state.get(HISTORIES)
    if cached is None or cached[0] != key:
        cached = (key, lesion_histories(store.patient_timeline(patient.patient_id)))
        st.session_state[HISTORIES] = cached
    return cached[1]


@st.cache_data(max_entries=64, show_spinner=False)
def _stored_image(path: str, sha256: str) -> Image.Image | None:
    return read_stored_image(path, COMPARE_SOURCE_PX)


@st.cache_resource(max_entries=32, show_spinner="Aligning the two images…")
def _aligned(earlier_key: str, later_key: str, _earlier: Image.Image, _later: Image.Image) -> AlignedPair | None:
    return aligned_pair(_earlier, _later)


# ---------------------------------------------------------------- score rise


def rise_badge(rise: ScoreRise | None) -> None:
    if rise is None:
        return
    st.badge(
        f"Score rose {pct(rise.before)} → {pct(rise.after)}" + (" (may be noise)" if rise.may_be_noise else ""),
        color="orange" if rise.may_be_noise else "red",
        icon=":material/trending_up:",
    )


def rise_notice(rise: ScoreRise | None) -> None:
    """The flag with what it means and what it does not, with the model's own same-day photograph check."""
    if rise is None:
        return
    from dashboard import resources

    margin = rise.margin
    same_day = rephotograph_share(resources.checkpoint_validation(), margin.kind, margin.value)
    st.warning(f"**{rise.headline()}.** {rise.caveat(same_day)}", icon=":material/trending_up:")


def live_rise(
    histories: list[LesionHistory], lesion_id: int | None, p: float, spread: float | None, model_id: str | None
) -> ScoreRise | None:
    """A linked image's live score against the lesion's last saved score."""
    lesion = next((h for h in histories if h.lesion_id == lesion_id), None)
    if lesion is None:
        return None
    scored = [v for v in lesion.visits if v.p_melanoma is not None]
    if not scored:
        return None
    last = scored[-1]
    return score_rise(
        last.p_melanoma,
        p,
        rise_margin(),
        before_spread=last.p_spread,
        after_spread=spread,
        same_model=last.model_id == model_id,
    )


# ---------------------------------------------------------------- comparison


def _score_line(visit: LesionVisit) -> str:
    if visit.p_melanoma is None:
        return "not scored"
    return f"P(melanoma) {pct(visit.p_melanoma)} ({score_interval(visit.p_melanoma, visit.p_spread)})"


def comparison_view(
    lesion: LesionHistory,
    threshold: float | None,
    key: str,
    current_image: Image.Image | None = None,
) -> None:
    """A lesion over time: two of its visits side by side (or aligned overlay / difference) and the trend.

    ``current_image``: the review in progress's image, when ``lesion`` ends with the unsaved visit.
    """
    margin = rise_margin()
    rise_notice(lesion_rise(lesion, margin))
    visits = list(lesion.visits)

    def load(visit: LesionVisit) -> Image.Image | None:
        if visit.image is None:
            return current_image
        return _stored_image(str(visit.image.path), visit.image.sha256)

    if len(visits) >= 2:
        positions = list(range(len(visits)))
        first, second = st.select_slider(
            "Visits compared",
            options=positions,
            value=(positions[-2], positions[-1]),
            format_func=lambda i: visits[i].name(),
            key=f"compare_visits_{key}",
        )
        if first == second:
            first = max(0, second - 1) if second else 1
        earlier, later = visits[min(first, second)], visits[max(first, second)]
        view = st.segmented_control("View", VIEWS, default=VIEWS[0], key=f"compare_view_{key}") or VIEWS[0]
        _pair_view(earlier, later, load(earlier), load(later), view, key)
    else:
        st.caption("Only one visit so far: a comparison appears after the lesion is imaged again.")
    scores = [v.p_melanoma for v in visits if v.p_melanoma is not None]
    zoom = st.toggle(
        "Zoom the P(melanoma) axis to the scores",
        value=bool(scores) and max(scores) < ZOOM_BELOW,
        key=f"compare_zoom_{key}",
        help="Scores of a few per cent lie flat on a 0–100% axis. Zoomed, the axis title gives its range.",
    )
    st.plotly_chart(lesion_trend(lesion, threshold, margin, zoom=zoom), key=f"compare_trend_{key}")
    st.caption(
        f"Band: each score's range across the image's rotated/flipped views (± 2 × their spread), as stored; "
        f"it shows how much a score depends on orientation, not the model's whole error. A rise since the previous "
        f"visit is flagged at {margin.describe()}; a rise within the band may be noise. "
        "Decision support, not a diagnosis."
    )


def _pair_view(
    earlier: LesionVisit,
    later: LesionVisit,
    earlier_image: Image.Image | None,
    later_image: Image.Image | None,
    view: str,
    key: str,
) -> None:
    if earlier_image is None or later_image is None:
        st.error("A stored image of this lesion cannot be read.", icon=":material/broken_image:")
        return
    left, right = st.columns(2)
    if view == VIEWS[0]:
        for column, visit, image in ((left, earlier, earlier_image), (right, later, later_image)):
            column.image(
                fit_into_box(image),
                caption=f"{visit.name()} — {_score_line(visit)}",
                width="stretch",
                alt=f"The lesion at {visit.name()}",
            )
        st.caption(SCALE_CAVEAT)
        return
    pair = _aligned(_cache_key(earlier), _cache_key(later), earlier_image, later_image)
    if pair is None:
        st.warning(
            "These two images could not be aligned (too few matching landmarks and no clear lesion outline). "
            "Compare them side by side.",
            icon=":material/compare:",
        )
        return
    left.image(
        fit_into_box(Image.fromarray(pair.earlier)),
        caption=earlier.name(),
        width="stretch",
        alt=f"The lesion at {earlier.name()}",
    )
    if view == VIEWS[1]:
        weight = st.slider(
            f"Blend: {earlier.name()} ← → {later.name()}", 0.0, 1.0, 0.5, 0.05, key=f"compare_blend_{key}"
        )
        right.image(
            fit_into_box(blend(pair, weight)),
            caption="aligned overlay",
            width="stretch",
            alt=f"{later.name()} aligned onto {earlier.name()} and blended",
        )
    else:
        right.image(
            fit_into_box(difference(pair)),
            caption="difference after alignment and brightness matching (brighter = larger change)",
            width="stretch",
            alt=f"What changed between {earlier.name()} and {later.name()}, brighter where it changed more",
        )
    (st.warning if pair.alignment.approximate else st.info)(pair.alignment.note(), icon=":material/compare:")
    st.caption(SCALE_CAVEAT)


def _cache_key(visit: LesionVisit) -> str:
    return visit.image.sha256 if visit.image is not None else f"unsaved-{visit.visit_time.isoformat()}"


def review_lesion_over_time(state: Any, image: Any, row: Any, threshold: float) -> None:
    """In a review card: for an image linked to a known lesion, the rise flag and a comparison dialog."""
    from dashboard import resources

    store, _ = resources.try_get_user_store()
    lesion = next((h for h in review_histories(store, state.patient) if h.lesion_id == image.existing_lesion_id), None)
    if lesion is None:
        return
    model_id = getattr(state.result, "model_id", None)
    rise_badge(live_rise([lesion], lesion.lesion_id, float(row.p_melanoma), _number_or_none(row.p_spread), model_id))
    previous = previous_score_line(lesion, float(row.p_melanoma), model_id)
    if previous:
        st.caption(previous)
    known = next((k for k in state.patient.known_lesions if k.id == image.existing_lesion_id), None)
    findings = earlier_findings(known)
    if findings is not None:
        text, malignant = findings
        if malignant:  # photographed again after a malignant result: is the link right, is this a recurrence?
            st.warning(literal(text), icon=":material/biotech:")
        else:
            st.caption(literal(text))
    if st.button("Compare with earlier visits", key=f"compare_open_{image.key}", icon=":material/compare:"):
        _review_comparison(lesion, image, row, threshold, model_id)


@st.dialog("Lesion over time", width="large")
def _review_comparison(lesion: LesionHistory, image: Any, row: Any, threshold: float, model_id: str | None) -> None:
    now = with_unsaved_visit(
        lesion,
        float(row.p_melanoma),
        _number_or_none(row.p_spread),
        model_id,
        datetime.now(UTC),
        _number_or_none(row.ugly_duckling),
    )
    st.markdown(f"**{literal(lesion.title())}** · {literal(lesion.where())}")
    comparison_view(now, threshold, key=f"review_{image.key}", current_image=image.display_image())


def _number_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def history_flags(histories: list[LesionHistory]) -> list[tuple[LesionHistory, ScoreRise]]:
    """Lesions whose score rose since their previous visit, for the history page's summary."""
    margin = rise_margin()
    return [(h, rise) for h in histories if (rise := lesion_rise(h, margin)) is not None]


def lesion_choice_label(lesion: LesionHistory, margin: RiseMargin | None = None) -> str:
    rise = lesion_rise(lesion, margin or rise_margin())
    latest = lesion.latest
    return (
        f"{lesion.title()} · {lesion.site} · {len(lesion.visits)} visit(s)"
        + (f" · latest P(melanoma) {pct(latest.p_melanoma)}" if latest.p_melanoma is not None else "")
        + (" · ▲ score rose" if rise is not None else "")
    )


# ---------------------------------------------------------------- case history


def history_rise_summary(histories: list[LesionHistory]) -> None:
    """Above the history's tabs: the lesions whose score rose since their previous visit, if any."""
    flagged = history_flags(histories)
    if not flagged:
        return
    lines = "; ".join(
        f"{literal(lesion.title())} ({pct(rise.before)} → {pct(rise.after)}"
        + (", may be noise" if rise.may_be_noise else "")
        + ")"
        for lesion, rise in flagged
    )
    st.warning(
        f"**Score rose since the previous visit** (flagged at {rise_margin().describe()}): {lines}. "
        "See **Lesion over time**. A rise within the scores' spread, or between model versions, may be noise.",
        icon=":material/trending_up:",
    )


def history_comparison(histories: list[LesionHistory], threshold: float | None) -> None:
    """The Case history tab: pick a lesion (flagged ones first offered), then its comparison view."""
    if not histories:
        st.info("No lesions recorded.")
        return
    margin = rise_margin()
    flagged = {lesion.lesion_id for lesion, _ in history_flags(histories)}
    followed = [h for h in histories if len(h.visits) > 1]
    first = next((h for h in histories if h.lesion_id in flagged), followed[0] if followed else histories[0])
    lesion = st.selectbox(
        "Lesion",
        histories,
        index=histories.index(first),
        format_func=lambda h: lesion_choice_label(h, margin),
        key="compare_lesion",
    )
    st.caption(f"{literal(lesion.where())} · first seen {lesion.visits[0].date} · {len(lesion.visits)} visit(s)")
    comparison_view(lesion, threshold, key=f"history_{lesion.lesion_id}")
