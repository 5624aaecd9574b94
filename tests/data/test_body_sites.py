"""The body-site vocabulary: every region maps onto a model site, left/right come in pairs, keys are stable."""

from __future__ import annotations

import pytest

from data.body_sites import DIAGRAM_HEIGHT, DIAGRAM_WIDTH, MAX_KEY_LENGTH, REGIONS, model_site, region, regions_on
from data.schema import SITES, UNKNOWN


def test_every_region_maps_to_a_known_model_site():
    for key in REGIONS:
        assert model_site(key) in SITES and model_site(key) != UNKNOWN, key
    # Every model site except unknown can be reached from the map.
    assert {r.site for r in REGIONS.values()} == set(SITES) - {UNKNOWN}


@pytest.mark.parametrize(
    ("key", "site"),
    [
        ("left_palm", "palms/soles"),
        ("right_sole", "palms/soles"),
        ("left_hand_back", "upper extremity"),
        ("right_foot_top", "lower extremity"),
        ("genital", "oral/genital"),
        ("scalp", "head/neck"),
        ("left_buttock", "torso"),
        ("upper_back", "torso"),
    ],
)
def test_isic_conventions(key, site):
    assert model_site(key) == site


def test_left_and_right_come_in_pairs_on_mirrored_sides_of_the_body():
    lateral = [r for r in REGIONS.values() if r.laterality is not None]
    assert lateral
    for r in lateral:
        other = "right" if r.laterality == "left" else "left"
        twin = REGIONS[other + r.key[len(r.laterality) :]]
        assert (twin.laterality, twin.side, twin.site) == (other, r.side, r.site)
        assert r.centre[0] == pytest.approx(DIAGRAM_WIDTH - twin.centre[0])


def test_the_patients_right_is_on_the_viewers_left_from_the_front_and_on_the_viewers_right_from_the_back():
    assert REGIONS["right_palm"].centre[0] < DIAGRAM_WIDTH / 2
    assert REGIONS["right_hand_back"].centre[0] > DIAGRAM_WIDTH / 2


def test_keys_are_unique_short_snake_case_and_match_their_region():
    for key, r in REGIONS.items():
        assert r.key == key
        assert len(key) <= MAX_KEY_LENGTH
        assert key.replace("_", "").isalpha() and key == key.lower()
    assert len({r.label for r in REGIONS.values()}) == len(REGIONS)


def test_both_views_are_populated_and_shapes_lie_on_the_diagram():
    assert regions_on("front") and regions_on("back")
    for r in REGIONS.values():
        assert r.side in ("front", "back")
        assert len(r.polygon) >= 3
        for x, y in (*r.polygon, r.centre):
            assert 0 <= x <= DIAGRAM_WIDTH and 0 <= y <= DIAGRAM_HEIGHT, r.key


def test_centre_lies_inside_an_l_shaped_region():
    thigh = REGIONS["right_thigh_front"]
    x, y = thigh.centre
    xs, ys = zip(*thigh.polygon, strict=True)
    assert min(xs) < x < max(xs) and min(ys) < y < max(ys)
    assert not (x > 44 and y > 94)  # not in the notch left for the genital area


@pytest.mark.parametrize("bad", ["left_wing", "", None, "LEFT_PALM"])
def test_unknown_keys_are_refused_with_a_clear_message(bad):
    with pytest.raises(ValueError, match="unknown body region"):
        region(bad)
    with pytest.raises(ValueError, match="unknown body region"):
        model_site(bad)


def test_regions_of_one_view_do_not_overlap():
    for r in REGIONS.values():
        for other in regions_on(r.side):
            if other.key != r.key:
                assert not other.contains(r.centre), (r.key, other.key)
                assert not any(other.contains(p) for p in _inner_points(r)), (r.key, other.key)


def _inner_points(r, steps=6):
    """A grid of points strictly inside the region's bounding box that the region itself contains."""
    xs, ys = zip(*r.polygon, strict=True)
    grid = [
        (min(xs) + (max(xs) - min(xs)) * (i + 0.5) / steps, min(ys) + (max(ys) - min(ys)) * (j + 0.5) / steps)
        for i in range(steps)
        for j in range(steps)
    ]
    return [p for p in grid if r.contains(p)]
