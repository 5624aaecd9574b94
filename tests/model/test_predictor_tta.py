"""What the Predictor does with its test-time augmentation views, on a tiny random network: the 8 views are the 8
distinct orientations, each view's logit is calibrated once, and P(melanoma), its spread and the embedding are the
views' mean, standard deviation and mean."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from model.predictor import MAX_TTA, TTA_VIEWS, Predictor


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint) -> Predictor:
    return Predictor.from_checkpoint(tiny_checkpoint, device="cpu")


def inputs(predictor: Predictor, n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    size = predictor.network.image_size
    images = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))
    meta = torch.from_numpy(predictor.encoder.encode(pd.DataFrame(index=range(n))))
    return images, meta


def test_the_eight_views_are_the_eight_orientations_identity_first():
    square = torch.arange(9).reshape(3, 3)  # no symmetry: every orientation of it differs
    seen = [tuple(view(square).flatten().tolist()) for view in TTA_VIEWS]
    board = square.numpy()
    dihedral = {tuple(np.rot90(m, k).flatten().tolist()) for m in (board, board.T) for k in range(4)}
    assert len(TTA_VIEWS) == MAX_TTA == 8
    assert len(set(seen)) == 8 and set(seen) == dihedral  # a repeated view would halve what TTA averages
    assert seen[0] == tuple(range(9))  # one view (tta=1) is the image as given


def test_probability_spread_and_embedding_are_the_mean_and_spread_over_the_views(tiny):
    images, meta = inputs(tiny)
    got = tiny.predict_tensors(images, meta, tta=MAX_TTA)
    with torch.inference_mode():
        outs = [tiny.model(view(images), meta) for view in TTA_VIEWS]
    logits = torch.stack([o["logit"] for o in outs], 1).numpy()  # (n, views)
    p = 1 / (1 + np.exp(-logits))
    assert p.std(1).min() > 1e-4  # the views really differ, so mean, max and first view tell apart
    np.testing.assert_allclose(got.view_logits, logits, atol=1e-6)
    np.testing.assert_allclose(got.p_melanoma, p.mean(1), atol=1e-6)
    np.testing.assert_allclose(got.p_spread, p.std(1), atol=1e-6)
    embeddings = torch.stack([o["embedding"] for o in outs]).mean(0).numpy()
    np.testing.assert_allclose(got.embedding, embeddings, atol=1e-6)


def test_each_views_logit_is_calibrated_exactly_once(tiny):
    scale, bias = 1.7, -0.6
    model = copy.deepcopy(tiny.model)
    model.config = dataclasses.replace(model.config, logit_scale=scale, logit_bias=bias)
    calibrated = Predictor(model, tiny.config, device="cpu")
    images, meta = inputs(tiny)
    raw = tiny.predict_tensors(images, meta, tta=4).view_logits
    got = calibrated.predict_tensors(images, meta, tta=4)
    np.testing.assert_allclose(got.view_logits, scale * raw + bias, atol=1e-5)
    np.testing.assert_allclose(got.p_melanoma, (1 / (1 + np.exp(-(scale * raw + bias)))).mean(1), atol=1e-6)


def test_an_odd_number_of_images_in_small_batches_scores_every_image_in_order(tiny):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)) for _ in range(5)]
    loaders = [lambda image=image: image for image in images]
    whole = tiny.score_stream(loaders, tta=2, batch_size=32, workers=1)
    in_twos = tiny.score_stream(loaders, tta=2, batch_size=2, workers=1)
    assert in_twos.indices == whole.indices == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(in_twos.predictions.p_melanoma, whole.predictions.p_melanoma, atol=1e-6)
    np.testing.assert_allclose(in_twos.predictions.embedding, whole.predictions.embedding, atol=1e-5)
