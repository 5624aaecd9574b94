"""The body map on the pages (Streamlit): the review's panel where selected images are placed by clicking a
region, the per-card pick box, the gallery's grouping by region, and the case history's map. The figure,
the click decoding and the grouping live in dashboard/body_map.py (no Streamlit)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import streamlit as st

from dashboard.body_map import body_map_figure, group_by_region
from dashboard.body_map_placement import (
    Placement,
    place_saved_lesion,
    place_saved_lesion_in,
    place_selected,
    place_selected_in,
    review_lesions_on_map,
    saved_lesions_on_map,
)
from dashboard.textsafe import literal
from data.body_sites import REGIONS

PICK = "bodymap_pick_"  # + image key: the card's "select for the body map" box
NOTICE = "bodymap_notice"
LAST_REGION = "bodymap_region"
GENERATION = "bodymap_generation"  # bumped after each placement: a new chart starts with no selection
LAST_PLACED = "bodymap_last_placed"  # the saved lesion the history's map placed last
CHART_CONFIG = {"displayModeBar": False}


def region_text(key: str | None) -> str:
    return f"{REGIONS[key].label} ({REGIONS[key].site})" if key in REGIONS else "not placed on the body map"


def pick_checkbox(state: Any, sha256: str, locked: bool) -> None:
    """On an image card: the image's region, and the box that selects it for the next click on the map."""
    image = state.images[sha256]
    st.caption(f":material/accessibility_new: {region_text(state.body_regions.get(sha256))}")
    if not locked:
        st.checkbox("Select for the body map", key=f"{PICK}{image.key}")


def _picked(state: Any) -> list[str]:
    return [sha for sha, image in state.images.items() if st.session_state.get(f"{PICK}{image.key}")]


def _place(state: Any, chart_key: str) -> None:
    """The chart's on_select callback: the clicked region goes to every selected image."""
    _placed(state, place_selected(state, st.session_state.get(chart_key), _picked(state)))


def _place_by_name(state: Any) -> None:
    """The region box's button: the region chosen by name goes to every selected image."""
    region = _region_chosen("review")
    if region is not None:
        _placed(state, place_selected_in(state, region, _picked(state)))


def _region_chosen(where: str) -> str | None:
    """The region chosen in ``where``'s list, or None with a notice to choose one."""
    region = st.session_state.get(_region_box_key(where))
    if region is None:
        st.session_state[NOTICE] = ("info", "Choose a body region in the list first.")
    return region


def _region_box_key(where: str) -> str:
    return f"bodymap_region_box_{where}_{st.session_state.get(GENERATION, 0)}"


def _region_by_name(where: str, button: str, on_click: Callable[[], None]) -> None:
    """The map without a pointer: the region chosen from a list, then a button (the chart takes only clicks,
    and a keyboard or screen-reader user cannot reach its regions)."""
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.selectbox(
            "…or choose the region from a list",
            list(REGIONS),
            index=None,
            placeholder="Body region",
            format_func=region_text,
            key=_region_box_key(where),
        )
        st.button(button, key=f"bodymap_place_{where}", on_click=on_click, icon=":material/location_on:")


def _placed(state: Any, placement: Placement) -> None:
    if placement.region is not None:
        st.session_state[LAST_REGION] = placement.region
        st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1  # the next click starts afresh
    for sha in placement.placed:
        image = state.images[sha]
        st.session_state[f"site_{image.key}"] = image.site  # the card's site box shows the new site
        st.session_state[f"{PICK}{image.key}"] = False
    if placement.kind:
        st.session_state[NOTICE] = (placement.kind, placement.message)


def _notice() -> None:
    kind, text = st.session_state.pop(NOTICE, (None, None))
    if kind:
        getattr(st, kind)(literal(text))


def _map_chart(fig: Any, chart_key: str, on_click: Callable[[], None] | None) -> None:
    """The map as a chart: a click on a region calls ``on_click``; without one, a picture that takes no clicks."""
    if on_click is None:
        st.plotly_chart(fig, key=chart_key, config=CHART_CONFIG)
    else:
        st.plotly_chart(fig, key=chart_key, on_select=on_click, selection_mode="points", config=CHART_CONFIG)


def review_panel(state: Any, threshold: float | None, locked: bool) -> None:
    """The review's body map: this visit's images at their regions; click a region to place the selected ones."""
    picked = _picked(state)
    # Open while images are being set up (like the image grid above), or when images are selected for it.
    expanded = not locked and (state.result is None or state.result_is_stale or bool(picked))
    with st.expander("Body map", expanded=expanded, icon=":material/accessibility_new:"):
        if locked:
            st.caption("Where this visit's lesions are. The review is saved: regions can no longer change here.")
        elif picked:
            st.markdown(f"**{len(picked)} image(s) selected** — click a region to place them.")
        else:
            st.caption(
                "Tick “Select for the body map” on one or more images above, then click a region: the "
                "images are placed there and their anatomic site is set to the region's, which the model uses."
            )
        _notice()
        scores = {}
        if state.result is not None and not state.result_is_stale:
            table = state.scored_table()
            scores = dict(zip(table["image_id"], table["p_melanoma"], strict=True))
        labels = {sha: image.label or image.filename for sha, image in state.images.items()}
        lesions = review_lesions_on_map(labels, state.body_regions, scores)
        fig = body_map_figure(lesions, st.session_state.get(LAST_REGION), threshold)
        chart_key = f"body_map_{st.session_state.get(GENERATION, 0)}"
        _map_chart(fig, chart_key, None if locked else lambda: _place(state, chart_key))
        if not locked:
            _region_by_name("review", "Place the selected images", lambda: _place_by_name(state))


def group_toggle() -> bool:
    return st.toggle("Group by body region", key="gallery_by_region", help="Lesions under their region, in rank order.")


def gallery_groups(table: Any, by_region: bool) -> Iterator[tuple[str | None, list[Any]]]:
    """The ranked gallery's rows, in one run (title None) or grouped by the images' body regions."""
    rows = list(table.itertuples())
    if not by_region:
        yield None, rows
        return
    for group in group_by_region(rows, region_of=lambda row: getattr(row, "body_region", None)):
        yield group.title, group.items


def _lesion_choice(lesion: Any) -> str:
    where = REGIONS[lesion.body_region].label if lesion.body_region in REGIONS else "not placed"
    return f"#{lesion.number or lesion.id} {lesion.label} · {lesion.site} · {where}"


def history_chooser_key() -> str:
    """The history's "Place a lesion" box is a new widget after each placement: the browser keeps showing a
    keyed box's old text when only its option labels change, so it would still name the region just left."""
    return f"history_place_lesion_{st.session_state.get(GENERATION, 0)}"


def _history_chart_key() -> str:
    return f"history_body_map_{st.session_state.get(GENERATION, 0)}"


def _place_saved(store: Any, lesions: list[Any]) -> None:
    """The history chart's on_select callback: the chosen saved lesion goes to the clicked region."""
    chart_key = _history_chart_key()
    chosen = next((les for les in lesions if les.id == st.session_state.get(history_chooser_key())), None)
    if chosen is None:
        return
    _saved_placed(chosen, place_saved_lesion(store, chosen, st.session_state.get(chart_key)))


def _place_saved_by_name(store: Any, lesions: list[Any]) -> None:
    """The history's region box's button: the chosen saved lesion goes to the region chosen by name."""
    chosen = next((les for les in lesions if les.id == st.session_state.get(history_chooser_key())), None)
    region = _region_chosen("history") if chosen is not None else None
    if region is not None:
        _saved_placed(chosen, place_saved_lesion_in(store, chosen, region))


def _saved_placed(chosen: Any, placement: Placement) -> None:
    if placement.region is not None or placement.kind:
        st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1
        st.session_state[LAST_PLACED] = chosen.id
    if placement.kind:
        st.session_state[NOTICE] = (placement.kind, placement.message)


def _chooser_index(lesions: list[Any], unplaced: list[Any]) -> int:
    """The next lesion not on the map yet; when all are, the one just placed (its new region shown)."""
    ids = [les.id for les in lesions]
    if unplaced:
        return ids.index(unplaced[0].id)
    last = st.session_state.get(LAST_PLACED)
    return ids.index(last) if last in ids else 0


def history_map(lesions: list[Any], threshold: float | None, store: Any = None, user: Any = None) -> None:
    """The case history's map: the patient's lesions at their regions, coloured by their latest score. A user
    who may write can place a saved lesion (one saved before the body map, or moved) by clicking a region."""
    placed, unplaced = saved_lesions_on_map(lesions)
    can_place = store is not None and user is not None and user.can("patient.write") and bool(lesions)
    if can_place:
        st.selectbox(
            "Place a lesion on the map (then click its region)",
            [les.id for les in lesions],
            index=_chooser_index(lesions, unplaced),
            format_func=lambda lesion_id: _lesion_choice(next(les for les in lesions if les.id == lesion_id)),
            key=history_chooser_key(),
            help="The region must lie on the lesion's recorded anatomic site; each change is recorded in the "
            "audit trail under your name.",
        )
        _notice()
    if not placed and not can_place:
        st.info("None of this patient's lesions is placed on the body map yet (place them during a review).")
    else:
        fig = body_map_figure(placed, threshold=threshold)
        _map_chart(fig, _history_chart_key(), (lambda: _place_saved(store, lesions)) if can_place else None)
    if can_place:
        _region_by_name("history", "Place the lesion", lambda: _place_saved_by_name(store, lesions))
    if unplaced and placed:
        names = ", ".join(f"#{les.number or les.id} {les.label}" for les in unplaced)
        st.caption(f"Not on the map yet: {literal(names)}.")
    if placed:
        rows = [
            {"region": group.title, "lesion": f"#{les.number or les.id} {les.label}", "site": les.site}
            for group in group_by_region(lesions)
            for les in group.items
        ]
        st.dataframe(rows, hide_index=True, key="history_regions_table")
