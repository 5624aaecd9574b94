"""The body map (dashboard/body_map.py), checked on the plotly figure and selection payloads (no Streamlit)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dashboard.body_map import (
    BACK_OFFSET,
    MARKER_SPACING,
    MapLesion,
    body_map_figure,
    colour_position,
    diagram_point,
    group_by_region,
    lesion_positions,
    region_at,
    region_from_selection,
)
from dashboard.body_map_placement import review_lesions_on_map, saved_lesions_on_map
from data.body_sites import DIAGRAM_WIDTH, REGIONS

THRESHOLD = 0.018


def _trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def _inside_bbox(key, x, y):
    r = REGIONS[key]
    offset = BACK_OFFSET if r.side == "back" else 0.0
    xs, ys = zip(*r.polygon, strict=True)
    return min(xs) + offset <= x <= max(xs) + offset and min(ys) <= y <= max(ys)


def test_both_views_are_drawn_side_by_side_with_every_region():
    fig = body_map_figure([], threshold=THRESHOLD)
    titles = {a.text for a in fig.layout.annotations}
    assert {"<b>Front</b>", "<b>Back</b>"} <= titles
    assert len(fig.layout.shapes) == len(REGIONS)
    hits = _trace(fig, "body regions")
    assert sorted(c[0] for c in hits.customdata) == sorted(REGIONS)
    front_x = [x for x, c in zip(hits.x, hits.customdata, strict=True) if REGIONS[c[0]].side == "front"]
    back_x = [x for x, c in zip(hits.x, hits.customdata, strict=True) if REGIONS[c[0]].side == "back"]
    assert max(front_x) < DIAGRAM_WIDTH <= BACK_OFFSET < min(back_x)


def test_every_region_hit_point_lies_in_its_region():
    hits = _trace(body_map_figure([]), "body regions")
    for x, y, custom in zip(hits.x, hits.y, hits.customdata, strict=True):
        assert region_at(x, y) == custom[0]


def test_one_marker_per_lesion_at_its_region_distinct_when_they_share_one():
    lesions = [
        MapLesion("a", "left shoulder mole", "left_shoulder_back", 0.30),
        MapLesion("b", "mole 2", "left_shoulder_back", 0.01),
        MapLesion("c", "mole 3", "left_shoulder_back", 0.002),
        MapLesion("d", "shin", "right_lower_leg_front", 0.05),
    ]
    fig = body_map_figure(lesions, threshold=THRESHOLD)
    markers = _trace(fig, "lesions")
    assert len(markers.x) == len(lesions)
    by_key = {c[1]: (x, y, c[0]) for x, y, c in zip(markers.x, markers.y, markers.customdata, strict=True)}
    for lesion in lesions:
        x, y, key = by_key[lesion.key]
        assert key == lesion.region and _inside_bbox(lesion.region, x, y)
    shoulder = {(round(x, 6), round(y, 6)) for x, y, k in by_key.values() if k == "left_shoulder_back"}
    assert len(shoulder) == 3
    # Deterministic: the same lesions in another order land on the same places.
    again = _trace(body_map_figure(list(reversed(lesions)), threshold=THRESHOLD), "lesions")
    assert sorted(zip(again.x, again.y, strict=True)) == sorted(zip(markers.x, markers.y, strict=True))


def test_marker_colour_follows_the_score_and_changes_at_the_threshold():
    scores = [0.001, 0.01, 0.02, 0.2, 0.9]
    lesions = [MapLesion(str(i), f"L{i}", "chest", p) for i, p in enumerate(scores)]
    markers = _trace(body_map_figure(lesions, threshold=THRESHOLD), "lesions")
    colour = {c[1]: v for c, v in zip(markers.customdata, markers.marker.color, strict=True)}
    values = [colour[str(i)] for i in range(len(scores))]
    assert values == sorted(values) and len(set(values)) == len(values)
    scale = [tuple(step) for step in markers.marker.colorscale]
    at_threshold = [pos for pos, _ in scale if math.isclose(pos, colour_position(THRESHOLD))]
    assert len(at_threshold) == 2  # a hard colour change at the threshold
    assert any("threshold 1.8%" in t for t in markers.marker.colorbar.ticktext)
    hover = {c[1]: c[3] for c in markers.customdata}
    assert hover["3"] == "20%" and hover["0"] == "0.1%"


def test_unscored_lesions_are_drawn_apart_and_labels_are_escaped():
    fig = body_map_figure([MapLesion("x", "<b>mine</b>", "face", None), MapLesion("y", "n", "face", float("nan"))])
    grey = _trace(fig, "lesions not scored")
    assert len(grey.x) == 2 and "<b>" not in grey.customdata[0][2] + grey.customdata[1][2]
    assert all(t.name != "lesions" for t in fig.data)


def test_the_selected_region_is_highlighted():
    fig = body_map_figure([], selected_region="right_palm")
    fills = [s.fillcolor for s in fig.layout.shapes]
    assert len(set(fills)) == 2 and sum(f == fills[list(REGIONS).index("right_palm")] for f in fills) == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"selection": {"points": [{"curve_number": 0, "point_index": 3, "x": 1, "y": 1, "customdata": None}]}},
        {"points": [{"x": 1.0, "y": 1.0}]},
    ],
)
def test_a_point_without_customdata_is_located_by_its_coordinates(payload):
    x, y = REGIONS["left_sole"].centre
    payload_points = payload.get("selection", payload)["points"]
    payload_points[0].update({"x": x + BACK_OFFSET, "y": y})
    assert region_from_selection(payload) == "left_sole"


def test_a_click_on_a_region_or_a_lesion_maps_back_to_its_key():
    fig = body_map_figure([MapLesion("a", "mole", "upper_back", 0.1)], threshold=THRESHOLD)
    hits = _trace(fig, "body regions")
    i = next(i for i, c in enumerate(hits.customdata) if c[0] == "right_forearm_back")
    event = {
        "selection": {
            "points": [
                {
                    "curve_number": 0,
                    "point_index": i,
                    "x": hits.x[i],
                    "y": hits.y[i],
                    "customdata": list(hits.customdata[i]),
                }
            ],
            "point_indices": [i],
            "box": [],
            "lasso": [],
        }
    }
    assert region_from_selection(event) == "right_forearm_back"
    marker = _trace(fig, "lesions")
    on_lesion = {
        "selection": {"points": [{"x": marker.x[0], "y": marker.y[0], "customdata": list(marker.customdata[0])}]}
    }
    assert region_from_selection(on_lesion) == "upper_back"


@pytest.mark.parametrize("empty", [None, {}, {"selection": {"points": []}}, {"selection": {}}])
def test_no_selection_is_none(empty):
    assert region_from_selection(empty) is None


def test_unknown_keys_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="unknown body region 'elbow_wing'"):
        region_from_selection({"selection": {"points": [{"customdata": ["elbow_wing"]}]}})
    with pytest.raises(ValueError, match="unknown body region"):
        MapLesion("a", "mole", "elbow_wing", 0.1)
    with pytest.raises(ValueError, match="unknown body region"):
        body_map_figure([], selected_region="elbow_wing")
    two = {"selection": {"points": [{"customdata": ["chest"]}, {"customdata": ["left_palm"]}]}}
    with pytest.raises(ValueError, match="2 body regions are selected"):
        region_from_selection(two)


def test_group_by_region_follows_the_diagram_and_loses_nothing():
    items = [
        {"id": 1, "body_region": "left_sole"},
        {"id": 2, "body_region": None},
        {"id": 3, "body_region": "face"},
        {"id": 4, "body_region": "left_sole"},
        {"id": 5, "body_region": "retired_key"},
        {"id": 6, "body_region": float("nan")},  # a table's missing value
    ]
    groups = group_by_region(items)
    assert [g.key for g in groups] == ["face", "left_sole", "retired_key", None]
    assert [i["id"] for i in groups[1].items] == [1, 4]
    assert groups[1].title == "Left sole" and groups[1].site == "palms/soles"
    assert "retired_key" in groups[2].title and groups[3].title == "No body region"
    assert [i["id"] for i in groups[3].items] == [2, 6]
    assert sum(len(g.items) for g in groups) == len(items)


def test_group_by_region_reads_any_attribute():
    lesions = [MapLesion("a", "x", "chest", 0.1), MapLesion("b", "y", "abdomen", 0.2)]
    groups = group_by_region(lesions, region_of=lambda les: les.region)
    assert [g.key for g in groups] == ["chest", "abdomen"]


def test_saved_lesions_are_placed_by_their_region_and_the_rest_listed():
    from types import SimpleNamespace

    summaries = [
        SimpleNamespace(id=11, number=1, label="back mole", body_region="upper_back", latest_p_melanoma=0.04),
        SimpleNamespace(id=12, number=2, label="arm", body_region=None, latest_p_melanoma=0.01),
        SimpleNamespace(id=13, number=3, label="old key", body_region="retired_key", latest_p_melanoma=None),
    ]
    placed, unplaced = saved_lesions_on_map(summaries)
    assert [(m.key, m.label, m.region, m.score) for m in placed] == [("11", "#1 back mole", "upper_back", 0.04)]
    assert [s.id for s in unplaced] == [12, 13]


def test_review_images_with_a_region_are_drawn_scored_or_not():
    labels = {"sha-a": "left arm", "sha-b": "back", "sha-c": "nowhere"}
    regions = {"sha-a": "left_upper_arm_front", "sha-b": "upper_back"}
    lesions = review_lesions_on_map(labels, regions, {"sha-a": 0.2})
    assert [(m.key, m.region, m.score) for m in lesions] == [
        ("sha-a", "left_upper_arm_front", 0.2),
        ("sha-b", "upper_back", None),
    ]


def test_every_region_is_filled_with_click_targets_that_name_it():
    areas = _trace(body_map_figure([]), "region areas")
    found = {}
    for x, y, custom in zip(areas.x, areas.y, areas.customdata, strict=True):
        assert region_at(x, y) == custom[0]
        found[custom[0]] = found.get(custom[0], 0) + 1
    assert set(found) == set(REGIONS)
    assert found["chest"] > found["left_ear"] >= 1  # larger regions get more targets


@pytest.mark.parametrize("count", [2, 3, 5, 8, 12])
def test_markers_sharing_a_region_never_overlap_even_in_small_regions(count):
    # a hand or a foot with several moles used to pack its markers on top of each other
    for key, body_region in REGIONS.items():
        points = np.asarray(lesion_positions(body_region, count))
        gaps = np.linalg.norm(points[:, None] - points[None, :], axis=-1)[np.triu_indices(count, 1)]
        assert gaps.min() >= MARKER_SPACING - 1e-9, key


def test_markers_fill_their_region_first_and_start_at_its_centre():
    for key, body_region in REGIONS.items():
        room = sum(1 for p in lesion_positions(body_region, 30) if region_at(*p) == key)
        points = lesion_positions(body_region, 30)
        inside = [region_at(*p) == key for p in points]
        assert inside == [True] * room + [False] * (30 - room), key  # spills over the edge only when full
        if body_region.contains(body_region.centre):
            assert points[0] == pytest.approx(diagram_point(body_region, body_region.centre))
