"""The body map's records and clicks, without Streamlit: a page's lesions (the review's images, a patient's
saved lesions) as map markers, and a click turned into a placement (the review's selected images, or a saved
lesion through the store). The figure and the click decoding are in dashboard/body_map.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dashboard.body_map import MapLesion, region_from_selection
from data.body_sites import REGIONS


def lesion_number_label(number: int | None, lesion_id: int, label: str) -> str:
    return f"#{number or lesion_id} {label}"


def saved_lesions_on_map(summaries: Iterable[Any]) -> tuple[list[MapLesion], list[Any]]:
    """A patient's saved lesions (dashboard.store LesionSummary) as map markers, scored by their latest
    P(melanoma); and the lesions not placed on the map yet (no region, or a key this vocabulary lacks)."""
    placed, unplaced = [], []
    for lesion in summaries:
        key = getattr(lesion, "body_region", None)
        if key not in REGIONS:
            unplaced.append(lesion)
            continue
        label = lesion_number_label(getattr(lesion, "number", 0), lesion.id, lesion.label)
        placed.append(MapLesion(str(lesion.id), label, key, lesion.latest_p_melanoma))
    return placed, unplaced


def review_lesions_on_map(
    labels: Mapping[str, str], regions: Mapping[str, str | None], scores: Mapping[str, float] | None = None
) -> list[MapLesion]:
    """The review's images (``labels``: image key -> label) that have a region, with their score when the
    triage has run (``scores``: image key -> P(melanoma); a missing key is drawn as not scored)."""
    scores = scores or {}
    return [
        MapLesion(key, label, regions[key], scores.get(key))
        for key, label in labels.items()
        if regions.get(key) in REGIONS
    ]


@dataclass(frozen=True)
class Placement:
    """What a click on the review's body map did: the region clicked (None: none), the images placed there,
    and the message for the clinician (``kind``: Streamlit's alert name)."""

    region: str | None
    placed: tuple[str, ...]
    kind: str
    message: str


def place_selected(state: Any, selection_event: Any, picked: Sequence[str]) -> Placement:
    """Place the review's ``picked`` images (SHA-256 keys) on the region a click chose. ``state`` is a
    dashboard.review_state.ReviewState; each image's site becomes the region's model site."""
    try:
        key = region_from_selection(selection_event)
    except ValueError as exc:
        return Placement(None, (), "error", str(exc))
    return place_selected_in(state, key, picked)


def place_selected_in(state: Any, key: str | None, picked: Sequence[str]) -> Placement:
    """As place_selected, for a region chosen by name (the keyboard's way: the map takes only clicks)."""
    if key is None:
        return Placement(None, (), "", "")
    if key not in REGIONS:
        return Placement(None, (), "error", f"unknown body region {key!r}")
    chosen = REGIONS[key]
    if not picked:
        return Placement(
            key,
            (),
            "info",
            f"{chosen.label} chosen, but no image is selected: tick “Select for the body map” on the images "
            "first, then click the region.",
        )
    for sha in picked:
        state.set_body_region(sha, key)
    return Placement(
        key,
        tuple(picked),
        "success",
        f"{len(picked)} image(s) placed on {chosen.label}: anatomic site “{chosen.site}”.",
    )


def place_saved_lesion(store: Any, lesion: Any, selection_event: Any) -> Placement:
    """Place a saved lesion (a LesionSummary) on the region a click chose, through the store (role-checked,
    audited). The store refuses a region off the lesion's recorded site; its message is returned."""
    try:
        key = region_from_selection(selection_event)
    except ValueError as exc:
        return Placement(None, (), "error", f"Lesion not placed: {exc}.")
    return place_saved_lesion_in(store, lesion, key)


def place_saved_lesion_in(store: Any, lesion: Any, key: str | None) -> Placement:
    """As place_saved_lesion, for a region chosen by name (the keyboard's way)."""
    try:
        if key is None:
            return Placement(None, (), "", "")
        store.set_body_region(lesion.id, key)
    except (ValueError, PermissionError) as exc:  # PermissionError: the store's AccessDenied (session ended)
        return Placement(None, (), "error", f"Lesion not placed: {exc}.")
    name = lesion_number_label(getattr(lesion, "number", 0), lesion.id, lesion.label)
    return Placement(key, (str(lesion.id),), "success", f"{name} placed on {REGIONS[key].label}.")
