"""Registration of a later image onto an earlier one recovers a known shift, scale and rotation."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from PIL import Image

from dashboard.comparison import (
    COMPARE_PX,
    align,
    align_on_features,
    align_on_outline,
    aligned_pair,
    blend,
    difference,
    fit_into_box,
    lesion_mask,
)

SIZE = 400


def _skin(seed: int = 0, textured: bool = True) -> np.ndarray:
    """A skin-coloured image with texture (pores, hairs: the landmarks) and a dark oval lesion in the middle."""
    rng = np.random.default_rng(seed)
    image = np.zeros((SIZE, SIZE, 3), np.float32)
    image[:] = (205, 160, 140)
    if textured:
        noise = cv2.GaussianBlur(rng.normal(0, 1, (SIZE, SIZE)).astype(np.float32), (0, 0), 2.0)
        image += 18 * noise[..., None] / noise.std()
        for _ in range(40):  # hairs
            x0, y0 = rng.integers(0, SIZE, 2)
            angle = rng.uniform(0, math.pi)
            x1, y1 = int(x0 + 80 * math.cos(angle)), int(y0 + 80 * math.sin(angle))
            cv2.line(image, (int(x0), int(y0)), (x1, y1), (90, 60, 50), 1, cv2.LINE_AA)
    return image


def _with_lesion(image: np.ndarray, axes: tuple[int, int] = (70, 50)) -> np.ndarray:
    out = image.copy()
    cv2.ellipse(out, (SIZE // 2, SIZE // 2), axes, 20, 0, 360, (95, 60, 45), -1, cv2.LINE_AA)
    cv2.circle(out, (SIZE // 2 + 20, SIZE // 2 - 10), 12, (60, 35, 30), -1, cv2.LINE_AA)  # some structure
    return np.clip(out, 0, 255).astype(np.uint8)


def _similarity(scale: float, angle_deg: float, shift: tuple[float, float]) -> np.ndarray:
    """Earlier (x, y) → later (x, y): rotate and scale about the centre, then shift."""
    matrix = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), angle_deg, scale)
    matrix[:, 2] += shift
    return matrix


def _photograph_again(earlier: np.ndarray, transform: np.ndarray) -> np.ndarray:
    return cv2.warpAffine(earlier, transform, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _round_trip_error(alignment, transform: np.ndarray) -> float:
    """Largest distance between points of the earlier image and where the alignment puts them back."""
    grid = np.array([[x, y] for x in (120, 200, 280) for y in (120, 200, 280)], dtype=float)
    in_later = grid @ transform[:, :2].T + transform[:, 2]
    return float(np.abs(alignment.map_points(in_later) - grid).max())


@pytest.mark.parametrize(
    ("scale", "angle", "shift"),
    [(1.0, 0.0, (23.0, -17.0)), (1.25, 0.0, (-10.0, 8.0)), (0.85, 12.0, (15.0, 5.0))],
)
def test_feature_alignment_recovers_shift_scale_and_rotation(scale, angle, shift):
    earlier = _with_lesion(_skin())
    transform = _similarity(scale, angle, shift)
    found = align(earlier, _photograph_again(earlier, transform))
    assert found is not None and found.method == "features" and not found.approximate
    assert found.scale == pytest.approx(1 / scale, rel=0.02)
    assert found.rotation_deg == pytest.approx(angle, abs=1.0)  # later → earlier turns back by the same angle
    assert _round_trip_error(found, transform) < 1.5


def test_without_landmarks_the_outline_alignment_recovers_centre_and_size_and_says_approximate():
    earlier = _with_lesion(_skin(textured=False))
    transform = _similarity(1.2, 0.0, (30.0, -20.0))
    later = _photograph_again(earlier, transform)
    assert align_on_features(earlier, later) is None  # a plain image has nothing to match on
    found = align(earlier, later)
    assert found is not None and found.method == "lesion outline" and found.approximate
    assert found.scale == pytest.approx(1 / 1.2, rel=0.03)
    assert _round_trip_error(found, transform) < 3.0
    assert "approximate" in found.note().lower() and "cannot show growth" in found.note()


def test_landmark_alignment_keeps_growth_visible_where_the_outline_alignment_hides_it():
    skin = _skin(seed=3)
    earlier, grown = _with_lesion(skin, (60, 42)), _with_lesion(skin, (78, 55))  # same photograph, larger lesion
    on_landmarks = align_on_features(earlier, grown)
    on_outline = align_on_outline(earlier, grown)
    assert on_landmarks is not None and on_landmarks.scale == pytest.approx(1.0, abs=0.03)
    assert on_outline is not None and on_outline.scale < 0.85  # shrinks the grown lesion back


def test_lesion_mask_finds_the_central_lesion_not_the_dark_corners():
    image = _with_lesion(_skin(seed=1))
    for corner in ((0, 0), (SIZE, 0), (0, SIZE), (SIZE, SIZE)):  # a dermatoscope's vignette
        cv2.circle(image, corner, 90, (20, 20, 20), -1)
    mask = lesion_mask(image)
    ys, xs = np.nonzero(mask)
    assert abs(xs.mean() - SIZE / 2) < 10 and abs(ys.mean() - SIZE / 2) < 10
    assert not mask[0, 0] and not mask[-1, -1]


def test_no_lesion_and_no_landmarks_gives_no_alignment():
    plain = np.full((200, 200, 3), 180, np.uint8)
    assert align(plain, plain.copy()) is None


def test_aligned_pair_views_show_no_difference_for_the_same_lesion_and_some_for_a_changed_one():
    earlier = _with_lesion(_skin(seed=2))
    moved = _photograph_again(earlier, _similarity(1.1, 5.0, (12.0, -9.0)))
    pair = aligned_pair(Image.fromarray(earlier), Image.fromarray(moved))
    assert pair is not None and pair.earlier.shape == pair.later.shape == (SIZE, SIZE, 3)
    changed = _with_lesion(_skin(seed=2))
    cv2.circle(changed, (SIZE // 2 - 30, SIZE // 2 + 20), 25, (30, 20, 20), -1)  # a new dark part
    changed_pair = aligned_pair(Image.fromarray(earlier), Image.fromarray(changed))
    assert changed_pair is not None

    def change_at_new_part(p) -> float:
        diff = np.asarray(difference(p)).astype(float).mean(axis=2)
        return diff[SIZE // 2 + 5 : SIZE // 2 + 35, SIZE // 2 - 45 : SIZE // 2 - 15].mean()

    assert change_at_new_part(changed_pair) > 3 * change_at_new_part(pair) + 20
    half = np.asarray(blend(pair, 0.5))
    assert half.shape == (SIZE, SIZE, 3)


def test_both_images_of_a_pair_get_the_same_display_size_whatever_their_resolution():
    small, large = Image.new("RGB", (200, 150), "red"), Image.new("RGB", (1024, 1024), "blue")
    assert fit_into_box(small).size == fit_into_box(large).size == (COMPARE_PX, COMPARE_PX)
    boxed = np.asarray(fit_into_box(small))
    assert (boxed[COMPARE_PX // 2, COMPARE_PX // 2] == (255, 0, 0)).all()  # upsampled to fill the width
    assert (boxed[2, COMPARE_PX // 2] != (255, 0, 0)).any()  # letterboxed top and bottom


def _moved_pair():
    earlier = _with_lesion(_skin(seed=2))
    later = _photograph_again(earlier, _similarity(1.1, 5.0, (40.0, -30.0)))
    pair = aligned_pair(Image.fromarray(earlier), Image.fromarray(later))
    assert pair is not None and not pair.valid.all() and pair.valid.any()  # a shift leaves part unshared
    return pair


def test_blend_weights_outside_0_to_1_are_clipped_and_unshared_pixels_stay_the_earlier_image():
    pair = _moved_pair()
    later_only = np.asarray(blend(pair, 1.0))
    assert (np.asarray(blend(pair, 2.0)) == later_only).all()
    assert (np.asarray(blend(pair, -1.0)) == pair.earlier).all()
    assert (later_only[~pair.valid] == pair.earlier[~pair.valid]).all()
    assert (later_only[pair.valid] == pair.later[pair.valid]).all()


def test_the_difference_image_is_the_background_grey_outside_the_shared_area():
    from dashboard.comparison import BACKGROUND

    pair = _moved_pair()
    diff = np.asarray(difference(pair))
    assert (diff[~pair.valid] == BACKGROUND).all()
    assert not (diff[pair.valid] == BACKGROUND).all(axis=-1).all()


def test_the_later_image_is_brought_to_the_earlier_ones_brightness():
    """Two visits' lighting differs: a darker photograph of the same skin is matched, so the difference shows
    the lesion, not the exposure."""
    earlier = _with_lesion(_skin(seed=2))
    darker = (_photograph_again(earlier, _similarity(1.0, 0.0, (10.0, 5.0))) * 0.6).astype(np.uint8)
    pair = aligned_pair(Image.fromarray(earlier), Image.fromarray(darker))
    assert pair is not None
    for c in range(3):
        shared_e, shared_l = pair.earlier[..., c][pair.valid], pair.later[..., c][pair.valid]
        assert abs(float(shared_l.mean()) - float(shared_e.mean())) < 2


def test_outlines_too_different_in_size_are_not_aligned():
    """A lesion outline ten times larger (linear) than the other is more likely a failed outline."""
    skin = _skin(textured=False)
    big, tiny = _with_lesion(skin, (150, 110)), _with_lesion(skin, (14, 10))
    assert align_on_outline(big, tiny) is None


def test_registration_works_on_a_copy_at_most_the_working_size():
    from dashboard.comparison import ALIGN_PX, working_copy

    assert working_copy(Image.new("RGB", (1000, 800))).shape == (round(800 * ALIGN_PX / 1000), ALIGN_PX, 3)
    assert working_copy(Image.new("RGB", (300, 200))).shape == (200, 300, 3)  # never enlarged


def test_the_landmark_note_gives_the_scale_and_turn_applied():
    from dashboard.comparison import Alignment

    angle = math.radians(10)
    matrix = np.array(
        [[1.25 * math.cos(angle), -1.25 * math.sin(angle), 3.0], [1.25 * math.sin(angle), 1.25 * math.cos(angle), -2.0]]
    )
    note = Alignment(matrix=matrix, method="features", approximate=False, matched_points=40).note()
    assert note.startswith("Aligned on 40 matching") and "×1.25 and turned +10°" in note


def test_photographs_larger_than_the_working_size_are_compared():
    """Stored images are read at up to 900 px for the comparison: registration must take them (it raised
    AttributeError on Pillow's missing Resampling.AREA for anything over ALIGN_PX)."""
    earlier = Image.fromarray(_with_lesion(_skin(seed=2))).resize((900, 900), Image.Resampling.LANCZOS)
    later = Image.fromarray(_photograph_again(_with_lesion(_skin(seed=2)), _similarity(1.1, 5.0, (12.0, -9.0))))
    pair = aligned_pair(earlier, later.resize((1200, 1200), Image.Resampling.LANCZOS))
    assert pair is not None and pair.earlier.shape == (640, 640, 3) and not pair.alignment.approximate
