"""Whole-patient triage on real dermoscopy (ISIC 2020 patients, HAM10000 lesions) with the fresh checkpoint."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from model.predictor import Predictor
from model.triage import LesionInput, PatientInfo, triage_patient
from model.triage_scoring import blend
from model.triage_settings import TRIAGE_DEFAULTS, triage_settings
from model.triage_table import output_table
from model.ugly_duckling import (
    NEAR_COPY_DISTANCE,
    copy_groups,
    embedding_map,
    loo_cosine_distance,
    rank_descending,
    robust_z,
    ugly_duckling,
)

# The ISIC 2020 patient with the most images here (9: 8 melanoma + 1 benign).
PATIENT = "IP_7373371"
# The predict CLI's contract when the input has patient ids (Kaggle columns first).
CLI_COLUMNS_WITH_PATIENTS = [
    "image_name",
    "target",
    "patient_id",
    "ugly_duckling",
    "triage_score",
    "patient_rank",
    "tta_spread",
]
# One HAM10000 nevus photographed 5 times (a dark, compact nevus), used as "this patient's nevi".
NEVUS_GROUP = "HAM_0007367"


@pytest.fixture(scope="module")
def isic2020(datasets_dir):
    return pd.read_csv(datasets_dir / "isic2020" / "train.csv")


@pytest.fixture(scope="module")
def ham(datasets_dir):
    return pd.read_csv(datasets_dir / "ham10000" / "HAM10000_metadata.csv")


def patient_lesions(datasets_dir, isic2020, patient=PATIENT):
    rows = isic2020[isic2020.patient_id == patient].sort_values("image_name")
    return [
        LesionInput(
            r.image_name,
            datasets_dir / "isic2020" / "train" / f"{r.image_name}.jpg",
            site=r.anatom_site_general_challenge if isinstance(r.anatom_site_general_challenge, str) else "unknown",
        )
        for r in rows.itertuples()
    ]


def with_triage(predictor, **triage) -> Predictor:
    return Predictor(predictor.model, {**predictor.config, "triage": triage}, device="cpu")


def test_patient_table_contract(predictor, datasets_dir, isic2020):
    lesions = patient_lesions(datasets_dir, isic2020)
    calls = []
    result = triage_patient(
        predictor,
        lesions,
        PatientInfo(age=55, sex="female"),
        tta=2,
        progress=lambda done, total: calls.append((done, total)),
    )
    t = result.table
    n = len(lesions)
    expected = [
        "image_id",
        "p_melanoma",
        "p_spread",
        "percentile",
        "ugly_duckling",
        "triage_score",
        "rank",
        "suspicious",
        "outlier",
        "reasons",
        "x",
        "y",
    ]
    assert set(expected) <= set(t.columns)
    assert len(t) == n and list(t.image_id) == [les.image_id for les in lesions]
    assert sorted(t["rank"]) == list(range(1, n + 1))
    assert t.loc[t["rank"].idxmin(), "triage_score"] == t.triage_score.max()
    assert ((t.p_melanoma >= 0) & (t.p_melanoma <= 1)).all() and (t.p_spread >= 0).all()
    assert (t.p_spread > 0).any()  # two TTA views really differ
    assert ((t.percentile > 0) & (t.percentile <= 100)).all()
    assert t.suspicious.tolist() == (t.p_melanoma >= result.threshold).tolist()
    assert t.outlier.tolist() == (t.ugly_duckling >= TRIAGE_DEFAULTS["ud_outlier_z"]).tolist()
    assert t.ugly_duckling.notna().all()
    assert np.isfinite(t[["x", "y"]].to_numpy()).all() and t[["x", "y"]].std().min() > 0
    assert all(isinstance(r, str) and r for r in t.reasons)
    for row in t.itertuples():
        assert ("above the operating threshold" in row.reasons) == bool(row.suspicious)
        assert ("unlike this patient's other 8 lesions" in row.reasons) == bool(row.outlier)
    # No "triage" key in this checkpoint: the default ranks by P(melanoma) alone, and says so.
    np.testing.assert_allclose(t.triage_score, t.p_melanoma)
    assert any("no evaluated triage settings" in note for note in result.notes)
    assert result.embeddings.shape == (n, predictor.model.embedding_dim)
    assert result.errors.empty and list(result.errors.columns) == ["image_id", "filename", "reason"]
    assert result.model_id == "fresh-imagenet-lite0-128" and result.threshold == 0.5
    assert calls[-1] == (n, n)
    assert list(result.ranked["rank"]) == list(range(1, n + 1))


def test_triage_matches_batch_predictor(predictor, datasets_dir, isic2020):
    """Dashboard (triage) and CLI (predict_records) give the same P(melanoma) for the same images."""
    from data.readers import read_kaggle

    lesions = patient_lesions(datasets_dir, isic2020, "IP_7279968")
    result = triage_patient(predictor, lesions, PatientInfo(age=45, sex="male"), tta=2)
    records = read_kaggle(datasets_dir / "isic2020" / "train.csv", datasets_dir / "isic2020" / "train", "isic2020")
    records = records[records.group_id == "IP_7279968"].sort_values("image_id")
    scored = predictor.predict_records(records, tta=2)
    from model.fast_cpu import inference_predictor

    assert inference_predictor(predictor).fused_pairs > 40  # the triage scores with the folded CPU twin
    np.testing.assert_allclose(result.table.p_melanoma, scored.scores.p_melanoma, atol=1e-5)
    np.testing.assert_allclose(result.embeddings, scored.embeddings, atol=1e-4)


def test_planted_melanoma_is_the_ugly_duckling(predictor, datasets_dir, ham):
    """One real melanoma among one real nevus's 5 dermoscopic images stands out in embedding space.

    Honest scope: with the untrained (ImageNet) checkpoint this holds for this dark nevus and the first 4
    melanomas by image id (8 of 8 checked), and for most same-lesion nevus groups, but NOT for every group:
    among a pale pink nevus's images (HAM_0005263) a planted melanoma was the top outlier only ~6 times in 20.
    """
    images = datasets_dir / "ham10000" / "images"
    nevi = sorted(ham[ham.lesion_id == NEVUS_GROUP].image_id)
    melanomas = sorted(ham[ham.dx == "mel"].drop_duplicates("lesion_id").image_id)[:4]
    for mel in melanomas:
        lesions = [LesionInput(i, images / f"{i}.jpg", site="torso") for i in [*nevi, mel]]
        t = triage_patient(predictor, lesions, PatientInfo(age=45, sex="male"), tta=1).table
        ud = t.set_index("image_id").ugly_duckling
        assert ud.idxmax() == mel, f"{mel}: {ud.round(2).to_dict()}"
        assert ud[mel] >= TRIAGE_DEFAULTS["ud_outlier_z"] > ud.drop(mel).max()
        assert t.set_index("image_id").outlier.to_dict() == {i: i == mel for i in ud.index}
        assert "unlike this patient's other 5 lesions" in t.set_index("image_id").reasons[mel]


def test_ud_weight_from_checkpoint_changes_the_ranking(predictor, datasets_dir, ham):
    images = datasets_dir / "ham10000" / "images"
    nevi = sorted(ham[ham.lesion_id == NEVUS_GROUP].image_id)
    mel = sorted(ham[ham.dx == "mel"].drop_duplicates("lesion_id").image_id)[0]
    lesions = [LesionInput(i, images / f"{i}.jpg") for i in [*nevi, mel]]
    heavy = with_triage(predictor, weight_ud=3.0, chosen_by="test")
    t = triage_patient(heavy, lesions, PatientInfo(), tta=1).table.set_index("image_id")
    assert t.loc[mel, "rank"] == 1  # the ugly duckling goes first whatever its P(melanoma)
    assert t.loc[mel, "triage_score"] > t.loc[mel, "p_melanoma"]
    assert not any("no evaluated triage settings" in n for n in triage_patient(heavy, lesions[:2]).notes)


def test_earlier_lesions_like_this_one_make_it_no_ugly_duckling(predictor, datasets_dir, ham):
    """At a follow-up the comparison includes the patient's earlier lesions (references, not ranked): a
    melanoma that stood out among one nevus's images does not once earlier melanomas are known."""
    images = datasets_dir / "ham10000" / "images"
    nevi = sorted(ham[ham.lesion_id == NEVUS_GROUP].image_id)
    mel, *earlier_mel = sorted(ham[ham.dx == "mel"].drop_duplicates("lesion_id").image_id)[:5]
    lesions = [LesionInput(i, images / f"{i}.jpg", site="torso") for i in [*nevi, mel]]
    patient = PatientInfo(age=45, sex="male")
    alone = triage_patient(predictor, lesions, patient, tta=1).table.set_index("image_id")
    assert alone.loc[mel, "outlier"]
    earlier = triage_patient(predictor, [LesionInput(i, images / f"{i}.jpg") for i in earlier_mel], tta=1)
    result = triage_patient(predictor, lesions, patient, tta=1, references=earlier.embeddings)
    t = result.table.set_index("image_id")
    assert list(t.index) == [*nevi, mel] and sorted(t["rank"]) == list(range(1, 7))  # references are not ranked
    assert not t.loc[mel, "outlier"] and t.loc[mel, "ugly_duckling"] < alone.loc[mel, "ugly_duckling"]
    np.testing.assert_allclose(t.p_melanoma, alone.p_melanoma)  # scores do not depend on the references
    assert any("includes 4 lesions known from earlier visits" in n for n in result.notes)
    assert result.reference_xy.shape == (4, 2)
    with pytest.raises(ValueError, match="same model"):
        triage_patient(predictor, lesions[:2], tta=1, references=np.zeros((2, 3)))


def test_reference_lesions_make_two_lesions_comparable(predictor, datasets_dir, isic2020):
    lesions = patient_lesions(datasets_dir, isic2020)
    earlier = triage_patient(predictor, lesions[2:4], tta=1).embeddings
    result = triage_patient(predictor, lesions[:2], tta=1, references=earlier)
    assert len(result.table) == 2 and result.table.ugly_duckling.notna().all()
    assert not any("needs at least 3" in n for n in result.notes)


@pytest.mark.parametrize("n", [1, 2])
def test_fewer_than_three_lesions(predictor, datasets_dir, isic2020, n):
    lesions = patient_lesions(datasets_dir, isic2020)[:n]
    result = triage_patient(predictor, lesions, PatientInfo(), tta=1)
    t = result.table
    assert len(t) == n and sorted(t["rank"]) == list(range(1, n + 1))
    assert t.ugly_duckling.isna().all() and not t.outlier.any()
    plural = "s" if n > 1 else ""
    note = f"Only {n} lesion{plural}: the ugly-duckling comparison needs at least 3, so it was not computed."
    assert note in result.notes
    np.testing.assert_allclose(t.triage_score, t.p_melanoma)
    assert not any("robust z" in r for r in t.reasons)


def test_broken_images_are_reported_and_the_rest_ranked(predictor, datasets_dir, isic2020, tmp_path):
    good = patient_lesions(datasets_dir, isic2020)[:4]
    jpeg = good[0].image.read_bytes()
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    broken = [
        LesionInput("zero", empty),
        LesionInput("truncated", jpeg[: len(jpeg) // 3], filename="cut.jpg"),
        LesionInput("text", b"patient notes, not an image\n", filename="notes.txt"),
        LesionInput("missing", tmp_path / "nowhere.jpg"),
    ]
    lesions = [broken[0], good[0], broken[1], good[1], broken[2], good[2], broken[3], good[3]]
    result = triage_patient(predictor, lesions, PatientInfo(), tta=1)
    assert list(result.table.image_id) == [les.image_id for les in good]
    assert sorted(result.table["rank"]) == [1, 2, 3, 4]
    errors = result.errors.set_index("image_id")
    assert list(errors.index) == ["zero", "truncated", "text", "missing"]
    assert list(errors.filename) == ["empty.jpg", "cut.jpg", "notes.txt", "nowhere.jpg"]
    assert "empty" in errors.reason["zero"]
    assert "truncated" in errors.reason["truncated"]
    assert "not a recognised image" in errors.reason["text"]
    assert "not found" in errors.reason["missing"]
    assert any("4 of 8 image(s) could not be read" in n for n in result.notes)
    assert result.table.ugly_duckling.notna().all()  # 4 good lesions: UD still computed


def test_nothing_readable(predictor):
    result = triage_patient(predictor, [LesionInput("a", b""), LesionInput("b", b"xx")], PatientInfo())
    assert result.table.empty and len(result.errors) == 2
    assert result.embeddings.shape == (0, predictor.model.embedding_dim)
    assert any("No image could be read" in n for n in result.notes)


def test_bytes_pil_and_path_inputs_agree(predictor, datasets_dir, isic2020):
    path = patient_lesions(datasets_dir, isic2020)[0].image
    data = path.read_bytes()
    rgba = Image.open(io.BytesIO(data)).convert("RGBA")  # alpha is flattened like an upload would be
    lesions = [
        LesionInput("path", path),
        LesionInput("bytes", data),
        LesionInput("pil", Image.open(io.BytesIO(data))),
        LesionInput("rgba", rgba),
        LesionInput("path", path),
    ]
    result = triage_patient(predictor, lesions, PatientInfo(), tta=1)
    t = result.table
    assert list(t.image_id) == ["path", "bytes", "pil", "rgba", "path (2)"]  # duplicate ids made unique
    assert any("Duplicate image ids" in n for n in result.notes)
    np.testing.assert_allclose(t.p_melanoma, t.p_melanoma[0], atol=1e-6)
    # five copies of one photo are one lesion: no ugly-duckling comparison, and the notes say why
    assert t.ugly_duckling.isna().all()
    assert any(n.startswith("Only 1 lesion: the ugly-duckling comparison needs at least 3") for n in result.notes)
    [copies] = [n for n in result.notes if "same photo" in n]
    assert "“path”, “bytes”, “pil”, “rgba” and “path (2)”" in copies


# ---------------------------------------------------------------- the pure functions


def test_robust_z_and_ugly_duckling_math():
    rng = np.random.default_rng(0)
    base = rng.normal(size=64)
    # seven lesions alike (cosine distance ~0.3 apart, like one patient's naevi; closer would be copies of one
    # photo) and one unlike them
    emb = np.stack([base + 0.7 * rng.normal(size=64) for _ in range(7)] + [rng.normal(size=64)])
    z = ugly_duckling(emb)
    assert np.argmax(z) == 7 and z[7] > 2.5 and np.all(z[:7] < 2.5)
    assert np.isnan(ugly_duckling(emb[:2])).all() and len(ugly_duckling(emb[:0])) == 0
    # four lesions all equally far apart: MAD 0, the floor keeps z finite (0), no division by zero
    np.testing.assert_allclose(ugly_duckling(np.eye(4, 8)), 0.0)
    # four copies of one photo are one lesion: nothing to compare it with
    assert np.isnan(ugly_duckling(np.ones((4, 8)))).all()
    np.testing.assert_allclose(robust_z(np.array([1.0, 1.0, 1.0, 2.0]), 0.25), [0, 0, 0, 4])
    lof = ugly_duckling(emb, method="lof")
    assert np.argmax(lof) == 7


def test_reasons_count_the_earlier_lesions():
    from model.triage import _reasons

    similar = _reasons(0.01, 0.0, 0.3, 6, 0.5, 2.5, 2, earlier=4)
    assert "similar to this patient's other 9 lesions (4 from earlier visits)" in similar
    unlike = _reasons(0.01, 0.0, 3.0, 6, 0.5, 2.5, 1, earlier=4)
    assert "unlike this patient's other 9 lesions (4 from earlier visits)" in unlike
    assert "ranked first of 6 lesions" in unlike  # only this visit's lesions are ranked
    assert "other 5 lesions (robust z" in _reasons(0.01, 0.0, 0.3, 6, 0.5, 2.5, 2)


def test_references_are_compared_against_but_not_scored():
    rng = np.random.default_rng(1)
    kind_a, kind_b = rng.normal(size=64), rng.normal(size=64)
    like = lambda base, k: np.stack([base + 0.7 * rng.normal(size=64) for _ in range(k)])  # noqa: E731
    visit = np.vstack([like(kind_b, 5), like(kind_a, 1)])  # this visit: five of one kind, one of another
    earlier = like(kind_a, 6)  # the patient's earlier lesions: six of the other kind
    alone = ugly_duckling(visit)
    assert np.argmax(alone) == 5 and alone[5] > 2.5
    with_earlier = ugly_duckling(visit, references=earlier)
    assert with_earlier.shape == (6,) and with_earlier[5] < 2.5  # typical of the earlier lesions: no outlier
    lof = ugly_duckling(visit, method="lof", references=earlier)
    assert lof.shape == (6,) and np.all(np.isfinite(lof))
    # Too few lesions alone, enough with the references; none at all stays empty.
    assert np.isnan(ugly_duckling(visit[:2])).all() and np.isfinite(ugly_duckling(visit[:2], references=earlier)).all()
    assert ugly_duckling(visit[:0], references=earlier).shape == (0,)


def test_an_earlier_outlier_lends_its_score_to_no_lesion_of_this_visit():
    # The visit's own rows come first in the comparison; the references' scores are dropped, not the visit's.
    rng = np.random.default_rng(2)
    base = rng.normal(size=64)
    visit = np.stack([base + 0.7 * rng.normal(size=64) for _ in range(6)])
    earlier = np.stack([base + 0.7 * rng.normal(size=64) for _ in range(3)] + [-base + 0.3 * rng.normal(size=64)])
    everyone = np.vstack([visit, earlier])
    assert list(copy_groups(everyone)) == list(range(10))  # no copies: every row is its own lesion
    full = robust_z(loo_cosine_distance(everyone))
    assert np.argmax(full) == 9 and full[9] > 2.5  # the last earlier lesion is the patient's odd one out
    z = ugly_duckling(visit, references=earlier)
    np.testing.assert_allclose(z, full[:6])
    assert not np.isclose(z, full[9]).any()


def _at_degrees(*angles: float) -> np.ndarray:
    radians = np.deg2rad(angles)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


def test_copies_of_copies_form_one_group_in_any_order():
    # 20 degrees apart is a copy (cosine distance 0.06), 40 is not (0.23): a~b and b~c, but not a~c.
    assert 1 - np.cos(np.deg2rad(20)) < NEAR_COPY_DISTANCE < 1 - np.cos(np.deg2rad(40))
    assert list(copy_groups(_at_degrees(-20, 0, 20))) == [0, 0, 0]
    assert list(copy_groups(_at_degrees(-20, 20, 0))) == [0, 0, 0]  # the link between the two comes last
    assert list(copy_groups(_at_degrees(0, 90))) == [0, 1]


def test_a_copy_that_joins_two_groups_relabels_every_member():
    # rows 1 and 2 are one photo (group 1) before row 3 links them to row 0: all four become group 0; the
    # unrelated row 4 stays its own group
    assert list(copy_groups(_at_degrees(0, 40, 41, 20, 90))) == [0, 0, 0, 0, 4]


def test_robust_z_scales_the_mad_to_a_standard_deviation():
    # median 3, MAD 1: the scale is 1.4826 (a normal sample's SD), above the floor 0.25 * 3
    np.testing.assert_allclose(
        robust_z(np.array([1.0, 2.0, 3.0, 4.0, 10.0]), 0.25), [-2 / 1.4826, -1 / 1.4826, 0, 1 / 1.4826, 7 / 1.4826]
    )
    assert robust_z(np.array([1.0, 2.0, 3.0, 4.0, 10.0]), 0.25)[-1] == pytest.approx(4.7214, abs=1e-4)
    # a floor above 1.4826 * MAD wins: 0.6 * 3 = 1.8
    np.testing.assert_allclose(
        robust_z(np.array([1.0, 2.0, 3.0, 4.0, 10.0]), 0.6), [-2 / 1.8, -1 / 1.8, 0, 1 / 1.8, 7 / 1.8]
    )


def test_blend_and_rank():
    p = np.array([0.2, 0.5, 0.5, 0.9])
    ud = np.array([4.0, np.nan, -3.0, 0.0])
    np.testing.assert_allclose(blend(p, ud, 0.0), p)
    b = blend(p, ud, 0.5, (0.0, 4.0))
    assert b[0] > p[0] and b[1] == pytest.approx(0.5) and b[2] == pytest.approx(0.5) and b[3] == pytest.approx(0.9)
    assert list(rank_descending(np.array([0.3, 0.9, 0.3, np.nan]))) == [2, 1, 3, 4]
    assert list(rank_descending(np.array([0.5, 0.5]), tiebreak=np.array([0.1, 0.2]))) == [2, 1]


def test_embedding_map_shapes():
    assert embedding_map(np.zeros((0, 4))).shape == (0, 2)
    np.testing.assert_array_equal(embedding_map(np.ones((1, 4))), [[0, 0]])
    two = embedding_map(np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    assert two.shape == (2, 2) and two[0, 0] != two[1, 0] and np.all(two[:, 1] == 0)


def test_settings():
    assert triage_settings(None)["weight_ud"] == TRIAGE_DEFAULTS["weight_ud"]
    s = triage_settings({"triage": {"weight_ud": 0.3, "ud_method": "lof", "evaluation": {}, "chosen_by": "x"}})
    assert s["weight_ud"] == 0.3 and s["ud_method"] == "lof" and s["from_checkpoint"]
    assert triage_settings({"weight_ud": 0.2})["weight_ud"] == 0.2  # the bare JSON evaluate_triage writes
    with pytest.raises(ValueError, match="unknown ud_method"):
        triage_settings({"ud_method": "magic"})
    with pytest.raises(ValueError, match="unknown triage method"):
        triage_settings({"method": "vote"})
    json.dumps(triage_settings({"weight_ud": 0.1}))


def test_output_table_columns(predictor):
    from model.predictor import ScoredRecords

    scores = pd.DataFrame(
        {
            "image_id": list("abcde"),
            "group_id": ["P1", "P1", "P1", "P2", "P2"],
            "p_melanoma": [0.1, 0.7, 0.4, 0.2, 0.3],
            "p_spread": 0.0,
        }
    )
    emb = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)
    scored = ScoredRecords(scores=scores, embeddings=emb, errors=pd.DataFrame())
    table = output_table(scores, scored, predictor)
    assert list(table.columns) == CLI_COLUMNS_WITH_PATIENTS
    assert table.patient_rank.tolist() == [3, 1, 2, 2, 1]
    assert table.ugly_duckling[:3].notna().all() and table.ugly_duckling[3:].isna().all()
    no_patients = scores.assign(group_id=scores.image_id)
    assert list(output_table(no_patients, scored, predictor).columns) == ["image_name", "target", "tta_spread"]


def test_predict_cli_adds_patient_columns(fresh_checkpoint, datasets_dir, isic2020, tmp_path):
    from model.predict import main

    rows = isic2020[isic2020.patient_id.isin(["IP_7279968", "IP_2412574"])]
    rows = pd.concat([rows, isic2020[isic2020.patient_id.map(isic2020.patient_id.value_counts()) == 1].head(1)])
    csv = tmp_path / "patients.csv"
    rows.drop(columns=["target", "benign_malignant", "diagnosis"]).to_csv(csv, index=False)
    out = tmp_path / "predictions.csv"
    code = main(
        [
            "--checkpoint",
            str(fresh_checkpoint),
            "--input",
            str(csv),
            "--images",
            str(datasets_dir / "isic2020" / "train"),
            "--out",
            str(out),
            "--tta",
            "2",
        ]
    )
    assert code == 0
    table = pd.read_csv(out)
    assert list(table.columns) == [*CLI_COLUMNS_WITH_PATIENTS, "tta_views"]  # the CLI records its TTA last
    assert (table.tta_views == 2).all()
    assert list(table.image_name) == list(rows.image_name)
    for patient, part in table.groupby("patient_id"):
        assert sorted(part.patient_rank) == list(range(1, len(part) + 1)), patient
        assert part.ugly_duckling.notna().all() == (len(part) >= 3)
    single = table[table.patient_id == rows.patient_id.iloc[-1]]
    assert single.patient_rank.tolist() == [1] and single.ugly_duckling.isna().all()

    folder = tmp_path / "folder"
    folder.mkdir()
    for name in rows.image_name[:2]:
        (folder / f"{name}.jpg").write_bytes((datasets_dir / "isic2020" / "train" / f"{name}.jpg").read_bytes())
    assert main(["--checkpoint", str(fresh_checkpoint), "--input", str(folder), "--out", str(out)]) == 0
    assert list(pd.read_csv(out).columns) == ["image_name", "target", "tta_spread", "tta_views"]


def test_a_photo_uploaded_twice_counts_once_in_the_comparison(predictor, datasets_dir, isic2020):
    """The same lesion as a JPEG and as its PNG export (two files, two hashes): the model sees one photo, so the
    other lesions' ugly-duckling scores are as without the copy, and the note asks to remove it."""
    lesions = patient_lesions(datasets_dir, isic2020)
    assert len(lesions) >= 4
    png = io.BytesIO()
    Image.open(lesions[1].image).save(png, "PNG")
    copy = LesionInput("copy.png", png.getvalue(), site=lesions[1].site)
    alone = triage_patient(predictor, lesions, PatientInfo(), tta=1).table.set_index("image_id")
    with_copy = triage_patient(predictor, [*lesions, copy], PatientInfo(), tta=1)
    table = with_copy.table.set_index("image_id")
    np.testing.assert_allclose(table.loc[alone.index, "ugly_duckling"], alone["ugly_duckling"], atol=1e-5)
    assert table.loc["copy.png", "ugly_duckling"] == pytest.approx(alone.loc[lesions[1].image_id, "ugly_duckling"])
    [note] = [n for n in with_copy.notes if "same photo" in n]
    assert with_copy.compared == len(lesions)  # the copy is not a lesion of its own
    from model.triage import _reasons

    # a reason counts the other lesions compared, not the uploads: a lesion's own copy is not one of them
    assert "unlike this patient's other 4 lesions" in _reasons(0.01, 0.0, 3.0, 6, 0.5, 2.5, 1, others_compared=4)
    assert note.startswith(f"“{lesions[1].image_id}” and “copy.png” look like the same photo uploaded 2 times")
    assert not [n for n in triage_patient(predictor, lesions, PatientInfo(), tta=1).notes if "same photo" in n]


def test_the_copy_note_names_the_files_not_the_ids(predictor, datasets_dir, isic2020):
    """The dashboard's image ids are SHA-256 hashes: a note naming them tells the clinician nothing."""
    lesions = patient_lesions(datasets_dir, isic2020)[:3]
    data = lesions[0].image.read_bytes()
    uploads = [
        LesionInput("a" * 64, data, filename="back.jpg"),
        LesionInput("b" * 64, data, filename="back-again.jpg"),
        *lesions[1:],
    ]
    notes = triage_patient(predictor, uploads, PatientInfo(), tta=1).notes
    [note] = [n for n in notes if "same photo" in n]
    assert note.startswith("“back.jpg” and “back-again.jpg” look like the same photo") and "aaaa" not in note
    # four uploads, three lesions: the comparison's notes count the lesions it compared
    assert any(n.startswith("Only 3 lesions: the ugly-duckling comparison is weak") for n in notes), notes


def test_the_reasons_word_a_score_as_the_score_bar_does():
    # The bar said "73%" where the reasons said "72.9%" for the same score (and "1.60%" for a 1.6% threshold).
    from model.score_text import pct
    from model.triage import _reasons

    above = _reasons(0.729, 0.0, 0.3, 6, 0.016, 2.5, 1)
    assert above.startswith(f"P(melanoma) {pct(0.729)} is above the operating threshold {pct(0.016)}")
    assert above.startswith("P(melanoma) 73% is above the operating threshold 1.6%")
    assert _reasons(0.024, 0.0, 0.3, 6, 0.016, 2.5, 2).startswith("P(melanoma) 2.4% is above")
    below = _reasons(0.0123, 0.0, 0.3, 6, 0.016, 2.5, 2)
    assert below.startswith("no flag: P(melanoma) 1.2% is below the operating threshold 1.6%")


def test_a_lesion_scored_exactly_at_the_threshold_is_flagged_as_above_it(predictor, datasets_dir, isic2020):
    # The metrics count P >= threshold as flagged: so do the table and the reasons.
    lesions = patient_lesions(datasets_dir, isic2020)[:3]
    p = triage_patient(predictor, lesions, tta=1).table.set_index("image_id")["p_melanoma"]
    at = float(p.sort_values().iloc[1])  # the middle score becomes the threshold
    config = {**predictor.config, "operating_point": {**predictor.config.get("operating_point", {}), "threshold": at}}
    table = triage_patient(Predictor(predictor.model, config, device="cpu"), lesions, tta=1).table.set_index("image_id")
    np.testing.assert_array_equal(table["p_melanoma"], p)
    assert list(table["suspicious"]) == list(p >= at) and table["suspicious"].sum() == 2
    middle = table.loc[p.sort_values().index[1]]
    assert middle["p_melanoma"] == at and middle["suspicious"]
    assert middle["reasons"].startswith("P(melanoma) ") and " is above the operating threshold " in middle["reasons"]


def test_the_reasons_call_a_score_equal_to_the_threshold_above_it():
    assert _reasons_at(0.016, 0.016).startswith("P(melanoma) 1.600% is above the operating threshold 1.600%")
    assert _reasons_at(0.01599, 0.016).startswith("no flag: P(melanoma) 1.599% is below the operating threshold")


def _reasons_at(p: float, threshold: float) -> str:
    from model.triage import _reasons

    return _reasons(p, 0.0, 0.3, 6, threshold, 2.5, 1)


def test_a_score_that_would_read_as_its_threshold_gets_the_decimals_that_tell_them_apart():
    from model.triage import _reasons

    assert _reasons(0.01604, 0.0, 0.3, 6, 0.016, 2.5, 1).startswith(
        "P(melanoma) 1.604% is above the operating threshold 1.600%"
    )
    assert "P(melanoma) 16.4% is above the operating threshold 16.0%" in _reasons(0.164, 0.0, 0.3, 6, 0.16, 2.5, 1)
