"""training/score_images.py scores through the predictor's own loop and keeps each TTA view's logit."""

from __future__ import annotations

import numpy as np
import pytest

from data.readers import read_kaggle
from training.score_images import score_dataset


@pytest.fixture(scope="module")
def records(datasets_dir):
    isic = datasets_dir / "isic2020"
    return read_kaggle(isic / "train.csv", isic / "train", "isic2020").head(3).reset_index(drop=True)


def test_view_logits_and_embeddings_agree_with_the_predictor(predictor, records):
    scored = score_dataset(predictor.model, predictor.config, records, views=2, batch=2)
    assert list(scored["image_id"]) == list(records["image_id"])
    assert scored["logit"].shape == (3, 2)
    assert scored["embedding"].dtype == np.float32
    same = predictor.predict_records(records, tta=2)
    # P(melanoma) is the mean of the views' probabilities: the logits are the deployed views' logits
    probabilities = 1 / (1 + np.exp(-scored["logit"]))
    np.testing.assert_allclose(probabilities.mean(1), same.scores["p_melanoma"], atol=1e-6)
    np.testing.assert_allclose(scored["embedding"], same.embeddings, atol=1e-5)
    one_view = score_dataset(predictor.model, predictor.config, records, views=1)
    np.testing.assert_allclose(one_view["logit"][:, 0], scored["logit"][:, 0], atol=1e-5)


def test_an_unreadable_image_stops_the_run_and_is_named(predictor, records, tmp_path):
    broken = records.copy()
    broken.loc[1, "image_path"] = str(tmp_path / "gone.jpg")
    with pytest.raises(SystemExit, match="gone.jpg"):
        score_dataset(predictor.model, predictor.config, broken)
