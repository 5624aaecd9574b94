"""The follow-up picker's "most alike first" order (dashboard/lesion_likeness.py), without Streamlit: a fake
predictor whose embedding is an image's mean colour, so which stored photo is alike is known."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from dashboard import lesion_likeness
from dashboard.follow_up import LesionHistory, LesionVisit
from dashboard.lesion_likeness import Likeness, evidence_text, likeness
from dashboard.store.records import ImageView


class ColourPredictor:
    """predict_images -> embedding = the images' mean RGB plus a constant (never a zero vector); counts images."""

    device = SimpleNamespace(type="cuda")  # model.fast_cpu.inference_predictor leaves it as it is

    def __init__(self, model_id: str = "colour-1", config: dict | None = None):
        self.model_id = model_id
        self.config = config or {}
        self.embedded = 0

    def predict_images(self, images, tta=None):
        assert tta == 1
        self.embedded += len(images)
        for image in images:
            if min(image.size) < 4:
                raise ValueError("image too small to score")
        rows = [np.append(np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(0), 30.0) for image in images]
        return SimpleNamespace(embedding=np.stack(rows))


@pytest.fixture(autouse=True)
def empty_cache():
    lesion_likeness._cache.clear()
    yield
    lesion_likeness._cache.clear()


def _photo(folder: Path, name: str, rgb: tuple[int, int, int], size: int = 32) -> Path:
    path = folder / f"{name}.png"
    Image.new("RGB", (size, size), rgb).save(path)
    return path


def _lesion(lesion_id: int, path: Path | None, kind: str = "dermoscopic") -> LesionHistory:
    view = None
    if path is not None:
        view = ImageView(lesion_id, f"sha-{path.name}", path.name, path, "png", 32, 32, 100, path.name, kind=kind)
    visit = LesionVisit(lesion_id, 1, datetime(2026, 3, 2, 9, tzinfo=UTC), view, 0.02, 0.01, None, "m")
    return LesionHistory(lesion_id, lesion_id, f"mole {lesion_id}", "torso", (visit,))


def _new(rgb):
    return lambda: Image.new("RGB", (48, 48), rgb)


def test_the_lesion_whose_photo_looks_like_the_new_image_comes_first(tmp_path):
    red = _lesion(1, _photo(tmp_path, "red", (200, 30, 30)))
    brown = _lesion(2, _photo(tmp_path, "brown", (120, 80, 50)))
    blue = _lesion(3, _photo(tmp_path, "blue", (30, 30, 200)))
    alike = likeness(ColourPredictor(), "new-sha", _new((125, 78, 52)), [red, brown, blue])
    assert alike.order([red, brown, blue])[0] is brown
    assert alike.places([red, brown, blue])[2] == 1 and alike.distances[2] < 1e-3
    assert sorted(alike.places([red, brown, blue]).values()) == [1, 2, 3]


def test_places_rank_only_the_lesions_shown(tmp_path):
    lesions = [_lesion(i, _photo(tmp_path, f"p{i}", (40 * i, 100, 100))) for i in range(1, 5)]
    alike = likeness(ColourPredictor(), "new", _new((160, 100, 100)), lesions)  # lesion 4 is the same colour
    shown = [lesions[0], lesions[1]]  # a site filter hid lesions 3 and 4 (or they are linked to other images)
    assert [h.lesion_id for h in alike.order(shown)] == [2, 1]
    assert alike.places(shown) == {2: 1, 1: 2}  # the badges go to tiles one can pick
    assert alike.places(lesions) == {4: 1, 3: 2, 2: 3, 1: 4}


def test_lesions_without_a_comparable_photo_keep_their_order_after_the_others(tmp_path):
    no_image = _lesion(1, None)
    overview = _lesion(2, _photo(tmp_path, "overview", (120, 80, 50)), kind="overview")
    unreadable_path = tmp_path / "broken.png"
    unreadable_path.write_bytes(b"not an image")
    unreadable = _lesion(3, unreadable_path)
    photo = _lesion(4, _photo(tmp_path, "photo", (10, 10, 10)))
    lesions = [no_image, overview, unreadable, photo]
    alike = likeness(ColourPredictor(), "new", _new((120, 80, 50)), lesions)
    assert set(alike.distances) == {4}  # the overview photo is a body area, never compared
    assert alike.unreadable == 1
    assert [h.lesion_id for h in alike.order(lesions)] == [4, 1, 2, 3]
    assert 2 not in alike.places(lesions)


def test_a_photo_the_model_refuses_is_left_out_and_the_rest_still_ordered(tmp_path):
    tiny = _lesion(1, _photo(tmp_path, "tiny", (120, 80, 50), size=2))
    fine = _lesion(2, _photo(tmp_path, "fine", (120, 80, 50)))
    alike = likeness(ColourPredictor(), "new", _new((120, 80, 50)), [tiny, fine])
    assert set(alike.distances) == {2} and alike.unreadable == 1


def test_embeddings_are_kept_per_model_and_image(tmp_path):
    lesions = [_lesion(i, _photo(tmp_path, f"p{i}", (20 * i, 50, 50))) for i in range(1, 4)]
    predictor = ColourPredictor()
    first = likeness(predictor, "new-1", _new((40, 50, 50)), lesions)
    assert predictor.embedded == 4
    loads = []
    again = likeness(predictor, "new-1", lambda: loads.append(1) or Image.new("RGB", (8, 8)), lesions)
    assert predictor.embedded == 4 and not loads  # nothing decoded or embedded again
    assert again.distances == first.distances
    likeness(predictor, "new-2", _new((60, 50, 50)), lesions)  # the next image: only it is embedded
    assert predictor.embedded == 5
    other_model = ColourPredictor("colour-2")
    likeness(other_model, "new-1", _new((40, 50, 50)), lesions)
    assert other_model.embedded == 4


def test_embeddings_are_kept_per_weights_not_per_model_id_alone(tmp_path):
    """A retrained checkpoint that kept its model id (or the same id in another folder) has other weights: its
    embeddings are its own, told apart by the checkpoint's version and weights digest."""
    lesions = [_lesion(i, _photo(tmp_path, f"p{i}", (20 * i, 50, 50))) for i in range(1, 4)]

    def embedded_by(config: dict) -> int:
        predictor = ColourPredictor("colour-1", config)
        likeness(predictor, "new-1", _new((40, 50, 50)), lesions)
        return predictor.embedded

    assert embedded_by({"version": "1.0.0", "weights_sha256": "aa11"}) == 4
    assert embedded_by({"version": "1.0.0", "weights_sha256": "aa11"}) == 0  # the same weights: cached
    assert embedded_by({"version": "1.0.0", "weights_sha256": "bb22"}) == 4  # another digest misses the cache
    assert embedded_by({"version": "1.0.0", "weights_sha256_actual": "cc33", "weights_sha256": "aa11"}) == 4
    assert embedded_by({"version": "1.1.0", "weights_sha256": "aa11"}) == 4  # another version misses too
    assert embedded_by({"version": "1.0.0", "weights_sha256": "aa11"}) == 0


def test_an_undecodable_new_image_gives_no_order(tmp_path):
    lesions = [_lesion(1, _photo(tmp_path, "p", (1, 2, 3)))]

    def broken():
        raise OSError("truncated")

    alike = likeness(ColourPredictor(), "new", broken, lesions)
    assert alike == Likeness()
    assert [h.lesion_id for h in alike.order(lesions)] == [1]


def test_no_known_lesion_with_a_photo_embeds_nothing():
    predictor = ColourPredictor()
    assert likeness(predictor, "new", _new((1, 1, 1)), [_lesion(1, None)]) == Likeness()
    assert predictor.embedded == 0


def test_evidence_text_quotes_the_checkpoints_measurement_or_says_it_is_missing():
    assert "was not measured" in evidence_text(None)
    assert "was not measured" in evidence_text({"lesion_matching": {"lesions": 0}})
    text = evidence_text(
        {
            "lesion_matching": {
                "lesions": 480,
                "candidates": 40,
                "first": {"value": 0.6, "ci": [0.55, 0.65]},
                "top3": {"value": 0.75, "ci": [0.7, 0.79]},
                "random_first": 0.025,
                "random_top3": 0.075,
            }
        }
    )
    assert "480 lesions" in text and "among 40 lesions of one site" in text
    assert "first in 60% (55%–65%)" in text and "first three in 75% (70%–79%)" in text
    assert "a random order: 2% and 8%" in text
