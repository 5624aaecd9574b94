"""The lesion-preserving CAM overlay and its colour scale (pure image functions, no network)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from model import cam_overlay


@pytest.fixture
def image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, size=(60, 80, 3), dtype=np.uint8))


@pytest.fixture
def heat() -> np.ndarray:
    """0 on the left half; a peak of 1 at (30, 60) falling off on the right half."""
    yy, xx = np.mgrid[0:60, 0:80]
    h = np.exp(-((yy - 30) ** 2 + (xx - 60) ** 2) / 80.0).astype(np.float32)
    h[:, :40] = 0.0
    return h


@pytest.mark.parametrize("style", list(cam_overlay.OVERLAY_STYLES))
def test_pixels_where_the_map_is_zero_are_the_original_image(image, heat, style):
    out = np.asarray(cam_overlay.OVERLAY_STYLES[style](image, heat))
    original = np.asarray(image)
    assert out.shape == original.shape
    assert np.array_equal(out[:, :35], original[:, :35])  # the left half (and a margin for contour lines)


def test_pixels_at_the_map_maximum_are_coloured(image, heat):
    out = np.asarray(cam_overlay.attribution_overlay(image, heat, opacity=0.6), dtype=float)
    expected = 0.4 * np.asarray(image, dtype=float)[30, 60] + 0.6 * cam_overlay.colours(np.array([1.0]))[0]
    assert np.allclose(out[30, 60], expected, atol=1.0)
    assert not np.array_equal(out[30, 60], np.asarray(image, dtype=float)[30, 60])


def test_the_colour_weight_rises_with_the_map_value():
    values = np.linspace(0, 1, 11)
    weight = cam_overlay.colour_weight(values, opacity=0.8, floor=0.2)
    assert weight[0] == 0 and weight[2] == 0  # at and below the floor: the original pixel
    assert np.all(np.diff(weight[2:]) > 0) and weight[-1] == pytest.approx(0.8)


def test_an_empty_map_changes_nothing_and_a_smaller_map_is_resized(image):
    assert np.array_equal(np.asarray(cam_overlay.attribution_overlay(image, np.zeros((7, 7)))), np.asarray(image))
    small = np.ones((6, 8), dtype=np.float32)
    assert cam_overlay.attribution_overlay(image, small).size == image.size


def test_contour_lines_are_drawn_around_the_peak(image, heat):
    out = np.asarray(cam_overlay.contour_overlay(image, heat, levels=(0.5,)))
    changed = np.any(out != np.asarray(image), axis=2)
    assert changed.any()
    assert not changed[30, 60]  # the inside of the line is untouched too: the lesion stays visible


def test_bad_arguments_get_specific_messages(image, heat):
    with pytest.raises(ValueError, match="opacity"):
        cam_overlay.attribution_overlay(image, heat, opacity=1.5)
    with pytest.raises(ValueError, match="contour levels"):
        cam_overlay.contour_overlay(image, heat, levels=(1.0,))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        cam_overlay.attribution_overlay(image, np.zeros((2, 2, 2)))


def test_the_colour_scale_runs_from_the_untouched_background_to_the_top_colour():
    background = (214, 176, 152)
    bar = np.asarray(cam_overlay.colour_scale(width=200, height=48, opacity=1.0, background=background))
    assert bar.shape == (48, 200, 3)
    assert tuple(bar[5, 2]) == background  # low: the skin shows through
    v = np.array([197 / 199])  # high: nearly the full colour, blended exactly as an overlay pixel would be
    w = cam_overlay.colour_weight(v, opacity=1.0)[0]
    expected = np.asarray(background) * (1 - w) + cam_overlay.colours(v)[0] * w
    assert w > 0.95 and np.allclose(bar[5, 197], expected, atol=1.0)
    assert (bar[30:] < 128).any()  # the labels are drawn under the bar
