"""The second stage: its features, its JSON round trip, and the triage method that deploys it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.patient_context import FEATURES, ContextModel, feature_outlier_distance, patient_features
from model.triage_scoring import score_patient
from model.triage_settings import triage_settings


def embeddings(n: int, odd: int | None = None, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(0, 0.6, (n, 16)) + 1.0  # alike, like one patient's naevi (much closer would be copies)
    if odd is not None:
        e[odd] += rng.normal(0, 4.0, 16)
    return e


def test_features_of_one_patient():
    f = patient_features(np.array([-2.0, 0.0, 2.0, 0.0]), embeddings(4, odd=2))
    assert list(f.columns) == list(FEATURES)
    assert f["logit_pct"].tolist() == [0.25, 0.625, 1.0, 0.625]
    assert f["logit_z"].mean() == pytest.approx(0.0, abs=1e-9)
    assert f["feat_dist"].idxmax() == 2 and f["ud_z"].idxmax() == 2
    assert np.allclose(f["log_n"], np.log(4))


def test_fewer_than_three_lesions_give_neutral_context():
    f = patient_features(np.array([1.0, -1.0]), embeddings(2))
    assert f[["logit_z", "ud_z", "feat_dist"]].abs().to_numpy().sum() == 0
    assert len(patient_features(np.zeros(0), np.zeros((0, 16)))) == 0
    assert np.all(feature_outlier_distance(embeddings(2)) == 0)


def context_dict(coef=None) -> dict:
    coef = coef or [1.0, 0.0, 0.0, 0.0, 2.0, 0.0]
    return {"features": list(FEATURES), "mean": [0.0] * 6, "scale": [1.0] * 6, "coef": coef, "intercept": -1.0}


def test_context_model_round_trip_and_validation():
    model = ContextModel.from_dict(context_dict())
    assert ContextModel.from_dict(model.to_dict()) == model
    with pytest.raises(ValueError, match="unknown patient-context features"):
        ContextModel.from_dict({**context_dict(), "features": ["logit", "zodiac", *FEATURES[2:]]})
    with pytest.raises(ValueError, match="differ in length"):
        ContextModel.from_dict({**context_dict(), "coef": [1.0]})


def test_patient_context_method_ranks_by_the_second_stage():
    settings = triage_settings({"triage": {"method": "patient_context", "context_model": context_dict()}})
    p = np.array([0.30, 0.31, 0.29, 0.30, 0.30])
    emb = embeddings(5, odd=3)
    out = score_patient(p, emb, settings)
    # feat_dist has weight 2: the odd lesion (index 3) goes first although its P(melanoma) is not the highest
    assert out["rank"][3] == 1
    assert set(out["rank"]) == {1, 2, 3, 4, 5}
    assert np.all((out["triage_score"] > 0) & (out["triage_score"] < 1))
    plain = score_patient(p, emb, triage_settings({"triage": {"method": "logit_blend"}}))
    assert plain["rank"][1] == 1


def test_patient_context_without_a_fitted_model_is_refused():
    with pytest.raises(ValueError, match="context_model"):
        triage_settings({"triage": {"method": "patient_context"}})
    with pytest.raises(ValueError, match="unknown triage method"):
        triage_settings({"triage": {"method": "astrology"}})


def test_features_by_patient_keeps_patients_apart():
    from model.patient_context import features_by_patient

    logit = np.array([0.0, 1.0, 2.0, 5.0, 6.0, 7.0])
    groups = pd.Series(["a", "a", "a", "b", "b", "b"])
    f = features_by_patient(logit, embeddings(6), groups)
    assert f["logit_pct"].tolist() == pytest.approx([1 / 3, 2 / 3, 1.0, 1 / 3, 2 / 3, 1.0])
