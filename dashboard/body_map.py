"""The body map without Streamlit: a front/back diagram of data.body_sites' regions, the lesions placed on
it coloured by P(melanoma), a click turned back into a region key, and items grouped by region.

Both views share one pair of axes (the back view sits BACK_OFFSET units to the right), so a selected
point's coordinates alone say which view and region it lies in. Streamlit's plotly selection returns
points, never filled areas: every region therefore has a hit point (a marker at its centre), and a
lesion marker selects its region too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import plotly.graph_objects as go

from dashboard.figures import GREEN, GREY, ORANGE, RED, plotly_text
from dashboard.wording import pct
from data.body_sites import DIAGRAM_HEIGHT, DIAGRAM_WIDTH, REGIONS, BodyRegion, Point, region

BACK_OFFSET = DIAGRAM_WIDTH + 20.0
VIEW_OFFSETS = {"front": 0.0, "back": BACK_OFFSET}
# The colour scale is logarithmic: calibrated scores are often a few per cent, and the threshold is low.
LOWEST_SHOWN = 1e-3
REGION_FILL = "rgba(31, 95, 139, 0.06)"
SELECTED_FILL = "rgba(31, 95, 139, 0.35)"
OUTLINE = "#7d8894"
MARKER_SPACING = 6.0  # diagram units between marker centres: ~14 px at the default height, a 13 px marker's width
GRID_SPACING = 4.0  # diagram units between a region's invisible click targets (about 10 px on screen)

T = TypeVar("T")


@dataclass(frozen=True)
class MapLesion:
    """One lesion to draw: ``key`` identifies it in the caller's terms (image SHA-256, lesion id)."""

    key: str
    label: str
    region: str
    score: float | None = None

    def __post_init__(self) -> None:
        region(self.region)  # refuses an unknown key with its message


# ---------------------------------------------------------------- geometry


def diagram_point(body_region: BodyRegion, point: Point) -> Point:
    """A point in a region's own view, placed on the shared axes."""
    return point[0] + VIEW_OFFSETS[body_region.side], point[1]


def lesion_positions(body_region: BodyRegion, count: int) -> list[Point]:
    """``count`` points ``MARKER_SPACING`` apart on a hexagonal lattice around the region's centre, nearest
    first: inside the region while it has room, then just outside its edge (a hand with six moles spills over
    rather than stacking markers on top of each other). Deterministic, so a marker keeps its place from one
    rerun to the next."""
    cx, cy = body_region.centre
    rings = math.isqrt(count) + 2  # a hexagonal disc of r rings holds 3r^2 + 3r + 1 points
    candidates = []
    for j in range(-rings, rings + 1):
        for i in range(-rings, rings + 1):
            dx, dy = MARKER_SPACING * (i + j / 2), MARKER_SPACING * j * math.sqrt(3) / 2
            point = (cx + dx, cy + dy)
            outside = not body_region.contains(point)
            candidates.append((outside, round(math.hypot(dx, dy), 9), round(math.atan2(dy, dx), 9), point))
    candidates.sort(key=lambda c: c[:3])
    return [diagram_point(body_region, c[3]) for c in candidates[:count]]


def region_at(x: float, y: float) -> str | None:
    """The region under a point of the shared axes (None outside every region)."""
    for side, offset in VIEW_OFFSETS.items():
        local = (x - offset, y)
        for key, body_region in REGIONS.items():
            if body_region.side == side and body_region.contains(local):
                return key
    return None


# ---------------------------------------------------------------- colour


def colour_position(p: float, lowest: float = LOWEST_SHOWN) -> float:
    """Where a probability sits on the map's logarithmic colour scale (0 at ``lowest`` or below, 1 at 100%)."""
    p = min(1.0, max(lowest, float(p)))
    return math.log10(p / lowest) / math.log10(1 / lowest)


def score_colour_scale(threshold: float | None) -> list[list[Any]]:
    """Green below the operating threshold, amber to red above it: the colour changes at the threshold."""
    if threshold is None:
        return [[0.0, GREEN], [0.5, "#e0a030"], [1.0, RED]]
    at = colour_position(threshold)
    return [[0.0, GREEN], [at, "#a8b64a"], [at, ORANGE], [1.0, RED]]


def _colour_bar(threshold: float | None) -> dict[str, Any]:
    ticks = {p: pct(p) for p in (0.001, 0.01, 0.1, 1.0)}
    if threshold is not None:
        # A round tick too close to the threshold's would print over it.
        ticks = {p: t for p, t in ticks.items() if abs(math.log10(p / threshold)) > 0.3}
        ticks[threshold] = f"threshold {pct(threshold)}"
    ordered = sorted(ticks)
    return {
        "title": {"text": "P(melanoma)"},
        "tickvals": [colour_position(p) for p in ordered],
        "ticktext": [ticks[p] for p in ordered],
        "len": 0.8,
    }


# ---------------------------------------------------------------- figure


def _region_shape(body_region: BodyRegion, selected: bool) -> dict[str, Any]:
    points = [diagram_point(body_region, p) for p in body_region.polygon]
    path = "M " + " L ".join(f"{x:.2f},{y:.2f}" for x, y in points) + " Z"
    return {
        "type": "path",
        "path": path,
        "xref": "x",
        "yref": "y",
        "layer": "below",
        "fillcolor": SELECTED_FILL if selected else REGION_FILL,
        "line": {"color": "#1f5f8b" if selected else OUTLINE, "width": 2.5 if selected else 1},
    }


def _region_hit_points() -> go.Scatter:
    regions = list(REGIONS.values())
    points = [diagram_point(r, r.centre) for r in regions]
    return go.Scatter(
        x=[p[0] for p in points],
        y=[p[1] for p in points],
        mode="markers",
        name="body regions",
        marker={"size": 11, "color": "rgba(31, 95, 139, 0.25)", "line": {"width": 1, "color": "#1f5f8b"}},
        customdata=[[r.key, plotly_text(r.label), r.site] for r in regions],
        hovertemplate="<b>%{customdata[1]}</b><br>model site: %{customdata[2]}<extra>click to choose</extra>",
        showlegend=False,
    )


def region_grid(body_region: BodyRegion, spacing: float = GRID_SPACING) -> list[Point]:
    """Points on a regular grid inside the region (its centre when it is smaller than one cell)."""
    xs, ys = zip(*body_region.polygon, strict=True)
    points = []
    y = min(ys) + spacing / 2
    while y < max(ys):
        x = min(xs) + spacing / 2
        while x < max(xs):
            if body_region.contains((x, y)):
                points.append((x, y))
            x += spacing
        y += spacing
    return points or [body_region.centre]


@functools.cache
def _region_area_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The area points' x, y and customdata, computed once: the regions never change, and plotly checks
    numpy arrays ~10x faster than lists of ~700 points (every page run draws the map)."""
    xs, ys, data = [], [], []
    for r in REGIONS.values():
        for point in region_grid(r):
            x, y = diagram_point(r, point)
            xs.append(x)
            ys.append(y)
            data.append([r.key, plotly_text(r.label), r.site])
    arrays = (np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), np.asarray(data, dtype=object))
    for array in arrays:
        array.flags.writeable = False  # shared by every figure
    return arrays


def _region_area_points() -> go.Scatter:
    """Invisible points filling every region, so that a click anywhere on a region selects it (plotly
    selects the point nearest the click; Streamlit returns points, not shapes)."""
    xs, ys, data = _region_area_arrays()
    return go.Scatter(
        x=xs,
        y=ys,
        mode="markers",
        name="region areas",
        marker={"size": 10, "opacity": 0},
        customdata=data,
        hovertemplate="<b>%{customdata[1]}</b><br>model site: %{customdata[2]}<extra>click to choose</extra>",
        showlegend=False,
    )


def _lesion_trace(lesions: Sequence[MapLesion], threshold: float | None, scored: bool) -> go.Scatter | None:
    if not lesions:
        return None
    by_region: dict[str, list[MapLesion]] = {}
    for lesion in sorted(lesions, key=lambda les: les.key):
        by_region.setdefault(lesion.region, []).append(lesion)
    xs, ys, data, colours = [], [], [], []
    for key, members in by_region.items():
        for lesion, (x, y) in zip(members, lesion_positions(REGIONS[key], len(members)), strict=True):
            xs.append(x)
            ys.append(y)
            score = pct(lesion.score) if scored else "not scored"
            data.append([key, lesion.key, plotly_text(lesion.label), score, plotly_text(REGIONS[key].label)])
            if scored:
                colours.append(colour_position(lesion.score))
    marker: dict[str, Any] = {"size": 13, "line": {"width": 1.5, "color": "white"}}
    if scored:
        marker |= {
            "color": colours,
            "colorscale": score_colour_scale(threshold),
            "cmin": 0.0,
            "cmax": 1.0,
            "showscale": True,
            "colorbar": _colour_bar(threshold),
        }
    else:
        marker |= {"color": GREY, "symbol": "circle-open", "line": {"width": 2.5, "color": GREY}}
    return go.Scatter(
        x=xs,
        y=ys,
        mode="markers",
        name="lesions" if scored else "lesions not scored",
        marker=marker,
        customdata=data,
        hovertemplate="<b>%{customdata[2]}</b><br>P(melanoma) %{customdata[3]}<br>%{customdata[4]}<extra></extra>",
    )


def _view_labels() -> list[dict[str, Any]]:
    """'Front' / 'Back' over each view, and the patient's R / L beside it (mirrored between the views)."""
    notes = []
    for side, offset in VIEW_OFFSETS.items():
        notes.append({"x": offset + DIAGRAM_WIDTH / 2, "y": DIAGRAM_HEIGHT + 8, "text": f"<b>{side.title()}</b>"})
        left_text, right_text = ("R", "L") if side == "front" else ("L", "R")
        notes.append({"x": offset + 18, "y": DIAGRAM_HEIGHT - 20, "text": left_text})
        notes.append({"x": offset + DIAGRAM_WIDTH - 18, "y": DIAGRAM_HEIGHT - 20, "text": right_text})
    return [{**n, "showarrow": False, "xref": "x", "yref": "y", "font": {"color": "#444"}} for n in notes]


def body_map_figure(
    lesions: Iterable[MapLesion] = (),
    selected_region: str | None = None,
    threshold: float | None = None,
    height: int = 560,
) -> go.Figure:
    """Front and back views side by side: the regions (the selected one highlighted), a hit point per
    region, and a marker per lesion at its region coloured by P(melanoma) (the colour changes at the
    operating ``threshold``; lesions without a score are open grey circles)."""
    lesions = list(lesions)
    if selected_region is not None:
        region(selected_region)
    fig = go.Figure()
    fig.add_trace(_region_area_points())
    fig.add_trace(_region_hit_points())
    for scored in (True, False):
        part = [les for les in lesions if (les.score is not None and not math.isnan(les.score)) == scored]
        trace = _lesion_trace(part, threshold, scored)
        if trace is not None:
            fig.add_trace(trace)
    fig.update_layout(
        shapes=[_region_shape(r, r.key == selected_region) for r in REGIONS.values()],
        annotations=_view_labels(),
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        plot_bgcolor="white",
        showlegend=False,
        clickmode="event+select",
        dragmode=False,
    )
    fig.update_xaxes(visible=False, range=[-6, BACK_OFFSET + DIAGRAM_WIDTH + 6], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-4, DIAGRAM_HEIGHT + 16], scaleanchor="x", fixedrange=True)
    return fig


# ---------------------------------------------------------------- selection


def _points(selection_event: Any) -> list[Mapping[str, Any]]:
    if selection_event is None:
        return []
    selection = selection_event.get("selection", selection_event) if isinstance(selection_event, Mapping) else None
    if selection is None:
        selection = getattr(selection_event, "selection", None)
    points = (selection or {}).get("points") if isinstance(selection, Mapping) else None
    return list(points or [])


def _point_region(point: Mapping[str, Any]) -> str | None:
    custom = point.get("customdata")
    if isinstance(custom, list | tuple) and custom:
        custom = custom[0]
    if isinstance(custom, str) and custom:
        return region(custom).key
    x, y = point.get("x"), point.get("y")
    if isinstance(x, int | float) and isinstance(y, int | float):
        return region_at(float(x), float(y))
    return None


def region_from_selection(selection_event: Any) -> str | None:
    """The region key a click on the body map chose (a region's point or a lesion marker), from
    ``st.plotly_chart(..., on_select="rerun")``'s event or its ``selection``. None when nothing is
    selected; ValueError when the points name an unknown region or several different regions."""
    keys = {key for key in map(_point_region, _points(selection_event)) if key is not None}
    if len(keys) > 1:
        names = ", ".join(REGIONS[k].label for k in sorted(keys))
        raise ValueError(f"{len(keys)} body regions are selected ({names}): click one region.")
    return keys.pop() if keys else None


# ---------------------------------------------------------------- grouping


@dataclass
class RegionGroup(Generic[T]):
    key: str | None  # None: items without a region
    title: str
    site: str | None
    items: list[T] = field(default_factory=list)


def _stored_region(item: Any) -> str | None:
    if isinstance(item, Mapping):
        return item.get("body_region")
    return getattr(item, "body_region", None)


def group_by_region(items: Iterable[T], region_of: Callable[[T], str | None] = _stored_region) -> list[RegionGroup[T]]:
    """Items grouped by body region, in the diagram's order (head to feet, front before back), then any
    unrecognised key (kept, named as such: nothing is lost), then the items without a region. Items keep
    their order within a group. ``region_of`` reads ``body_region`` (attribute or mapping key) by default."""
    groups: dict[str | None, RegionGroup[T]] = {}
    for item in items:
        key = region_of(item)
        key = key if isinstance(key, str) and key else None  # a table's missing value may be NaN
        if key not in groups:
            known = REGIONS.get(key) if key else None
            title = known.label if known else ("No body region" if key is None else f"Unrecognised region “{key}”")
            groups[key] = RegionGroup(key, title, known.site if known else None)
        groups[key].items.append(item)
    order = {key: i for i, key in enumerate(REGIONS)}
    return sorted(groups.values(), key=lambda g: (g.key is None, order.get(g.key, len(order)), g.key or ""))
