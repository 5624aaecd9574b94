"""Combining partially fine-tuned runs: the combined evidence is the mean of the members' logits, view by view
and image by image, the combined checkpoint is the shared-trunk ensemble, and runs that cannot be combined
are refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from model.checkpoint import load_checkpoint, save_checkpoint
from model.ensemble import SharedTrunkEnsemble
from model.network import MelanomaNet, NetworkConfig
from training import combine_runs
from training.combine_runs import CombineError, combine

CONFIG = NetworkConfig(backbone="test_efficientnet", image_size=64)


def fake_run(
    root: Path,
    name: str,
    cut: str | None,
    net: MelanomaNet,
    seed: int,
    images: list[str],
    preprocess: dict | None = None,
) -> Path:
    """A run folder as train_cached leaves it: final checkpoint, cv and loso evidence, external scores."""
    run = root / name
    rng = np.random.default_rng(seed)
    extra = {"training": {"config": {"cut": cut, "meta_dropout": 0.3, "seed": seed}}}
    if preprocess:
        extra["preprocess"] = preprocess
    if cut:
        extra["partial_cut"] = cut
    save_checkpoint(run / "final" / "checkpoint", net, extra)
    (run / "final" / "summary.json").write_text(json.dumps({"config": {"seed": seed, "meta_dropout": 0.3}}))

    def frame(ids: list[str]) -> pd.DataFrame:
        logits = rng.normal(size=(len(ids), 2))
        return pd.DataFrame(
            {
                "image_id": ids,
                "group_id": [f"p{i % 3}" for i in range(len(ids))],
                "dataset": "ham10000",
                "target": [i % 2 for i in range(len(ids))],
                "logit_v0": logits[:, 0],
                "logit_v1": logits[:, 1],
                "p_raw": 0.5,
                "fold": [f"fold{i % 2}" for i in range(len(ids))],
            }
        )

    for folder in ("cv", "loso_ham10000", f"only_{name}"):
        (run / folder).mkdir(parents=True)
    cv = frame(images).sample(frac=1.0, random_state=seed)  # members may list images in another order
    cv.to_csv(run / "cv" / "oof.csv", index=False)
    embedding = rng.normal(size=(len(cv), 4)).astype(np.float16)
    np.savez_compressed(run / "cv" / "oof_embeddings.npz", image_id=cv["image_id"].to_numpy(str), embedding=embedding)
    (run / "cv" / "summary.json").write_text(json.dumps({"config": {"seed": seed, "meta_dropout": 0.3}}))
    frame(images[:4]).to_csv(run / "loso_ham10000" / "oof.csv", index=False)
    frame(images[:2]).drop(columns="fold").to_csv(run / "final" / "external_derm7pt.csv", index=False)
    (run / f"rerun_seed{seed}").mkdir()
    frame(images).to_csv(run / f"rerun_seed{seed}" / "oof.csv", index=False)  # only this member has it
    return run


def two_members(seed: int = 0) -> list[MelanomaNet]:
    torch.manual_seed(seed)
    first = MelanomaNet(CONFIG).eval()
    second = MelanomaNet(CONFIG).eval()
    second.load_state_dict(first.state_dict())
    with torch.no_grad():
        for p in second.backbone.blocks[3:].parameters():
            p.add_(0.1 * torch.randn_like(p))
    return [first, second]


IMAGES = [f"img{i}" for i in range(8)]


def test_the_combined_run_holds_the_mean_of_the_members_logits_and_their_ensemble(tmp_path):
    nets = two_members()
    a = fake_run(tmp_path, "deep", "blocks.3.0", nets[0], 1, IMAGES)
    b = fake_run(tmp_path, "shallow", "blocks.2.0", nets[1], 2, IMAGES)
    result = combine([a, b], tmp_path / "combined")
    assert result == {"shared_trunk": "blocks.2.0", "evaluations": ["cv", "loso_ham10000"]}  # shallower cut
    out = tmp_path / "combined"
    combined = pd.read_csv(out / "cv" / "oof.csv").set_index("image_id")
    ra = pd.read_csv(a / "cv" / "oof.csv").set_index("image_id")
    rb = pd.read_csv(b / "cv" / "oof.csv").set_index("image_id")
    for view in ("logit_v0", "logit_v1"):
        expected = (ra.loc[combined.index, view] + rb.loc[combined.index, view]) / 2
        np.testing.assert_allclose(combined[view], expected, rtol=1e-6)
    assert (combined["fold"] == ra.loc[combined.index, "fold"]).all()
    p = 1 / (1 + np.exp(-combined[["logit_v0", "logit_v1"]].to_numpy()))
    np.testing.assert_allclose(combined["p_raw"], p.mean(1), rtol=1e-6)
    emb = np.load(out / "cv" / "oof_embeddings.npz")
    ea, eb = np.load(a / "cv" / "oof_embeddings.npz"), np.load(b / "cv" / "oof_embeddings.npz")
    first = emb["image_id"][0]
    side = np.concatenate([e["embedding"][list(e["image_id"]).index(first)] for e in (ea, eb)])
    np.testing.assert_array_equal(emb["embedding"][0], side)
    assert len(pd.read_csv(out / "final" / "external_derm7pt.csv")) == 2
    assert json.loads((out / "final" / "summary.json").read_text())["config"] == {"meta_dropout": 0.3}
    model, config = load_checkpoint(out / "final" / "checkpoint")
    assert isinstance(model, SharedTrunkEnsemble) and config["partial_cut"] == "blocks.2.0"
    assert config["training"]["member_cuts"] == ["blocks.3.0", "blocks.2.0"]
    x = torch.randn(2, 3, 64, 64)
    meta = torch.from_numpy(CONFIG.encoder.encode(pd.DataFrame(index=range(2))))
    with torch.no_grad():
        members = [load_checkpoint(r / "final" / "checkpoint")[0](x, meta)["logit"] for r in (a, b)]
        assert torch.allclose(model(x, meta)["logit"], (members[0] + members[1]) / 2, atol=1e-5)


def test_runs_that_cannot_be_combined_are_refused_with_the_reason(tmp_path, capsys):
    nets = two_members()
    a = fake_run(tmp_path, "a", "blocks.3.0", nets[0], 1, IMAGES)
    fewer = fake_run(tmp_path, "fewer", "blocks.3.0", nets[1], 2, IMAGES[:-1])
    with pytest.raises(CombineError, match="cv/oof.csv: the members scored different images"):
        combine([a, fewer], tmp_path / "x")
    full = fake_run(tmp_path, "full", None, nets[1], 3, IMAGES)
    with pytest.raises(CombineError, match="fully fine-tuned"):
        combine([a, full], tmp_path / "y")
    other = MelanomaNet(CONFIG).eval()  # another initialisation: the trunks differ
    stranger = fake_run(tmp_path, "stranger", "blocks.3.0", other, 4, IMAGES)
    with pytest.raises(SystemExit) as stop:
        combine_runs.main(["--members", str(a), str(stranger), "--out", str(tmp_path / "z")])
    assert stop.value.code == 2
    assert "member 1 differs from member 0 in the shared trunk" in capsys.readouterr().err
    with pytest.raises(CombineError, match="at least two"):
        combine([a], tmp_path / "w")
    constancy = fake_run(tmp_path, "cc", "blocks.3.0", nets[1], 5, IMAGES, {"colour_constancy": {"power": 6.0}})
    with pytest.raises(CombineError, match="preprocess their images differently"):
        combine([a, constancy], tmp_path / "v")


@pytest.mark.slow
def test_two_tiny_cached_runs_combine_into_a_shippable_ensemble_that_scores_as_evaluated(
    datasets_dir, tmp_path, capsys
):
    """Real images: two tails trained from different cuts of one trunk cache, combined and assembled; the
    shipped ensemble, loaded like any checkpoint, scores an external image as the combined evidence says."""
    from data.images import decode_image
    from model.predictor import Predictor
    from training import assemble_default, train_cached, trunk_cache

    cache = tmp_path / "cache"
    args = ["--out", str(cache), "--limit-per-dataset", "12", "--image-size", "96", "--views", "3"]
    assert trunk_cache.main([*args, "--datasets", "ham10000", "isic2020", "isic2020_patients", "derm7pt"]) == 0
    common = ["--cache", str(cache), "--datasets", "ham10000", "isic2020", "isic2020_patients"]
    common += ["--epochs", "1", "--samples-per-epoch", "64", "--batch-size", "16", "--n-folds", "2"]
    runs = []
    for name, cut in (("deep", "blocks.6.0"), ("shallow", "blocks.5.2")):
        run = tmp_path / name
        for fold in ("all", "none"):
            train_cached.main(
                [*common, "--cut", cut, "--out", str(run / ("cv" if fold == "all" else "final")), "--fold", fold]
            )
        runs.append(run)
    combined = tmp_path / "combined"
    assert combine_runs.main(["--members", *map(str, runs), "--out", str(combined)]) == 0
    shipped = tmp_path / "shipped"
    args = ["--run", str(combined), "--baselines", str(tmp_path / "none"), "--out", str(shipped), "--n-boot", "20"]
    assert assemble_default.main(args) == 0  # the trunk cache for the metadata check: the one recorded
    missing = capsys.readouterr().err  # no baselines given: the card's comparison rows it leaves out are named
    assert "v1_derm7pt.npz: not found" in missing and "v1_isic2020_patients.npz: not found" in missing
    model, config = load_checkpoint(shipped)
    assert isinstance(model, SharedTrunkEnsemble) and config["network"]["shared_trunk"] == "blocks.5.2"
    validation = json.loads((shipped / "validation.json").read_text())
    assert validation["metadata_sensitivity"]["auc_with_metadata"] == pytest.approx(
        validation["external"]["derm7pt"]["auc"], abs=0.05
    )
    card = (shipped / "MODEL_CARD.md").read_text()
    assert "2 trained tails on one frozen" in card and "- Tail 2: trained on the CPU" in card
    external = pd.read_csv(combined / "final" / "external_derm7pt.csv")
    row = pd.read_csv(cache / "derm7pt.csv").iloc[0]
    predictor = Predictor(model, config, device="cpu")
    records = pd.DataFrame([{"site": row["site"], "sex": row["sex"], "age": np.nan}])
    logits = predictor.predict_images([decode_image(row["image_path"])], records, tta=2).view_logits[0]
    expected = external.loc[external["image_id"] == row["image_id"], ["logit_v0", "logit_v1"]].to_numpy()[0]
    scale, bias = config["network"]["logit_scale"], config["network"]["logit_bias"]
    # the deployed logits are the calibrated mean of the tails' logits; the cache is float16 (~1e-2 in logit)
    np.testing.assert_allclose(logits, scale * expected + bias, atol=0.05)
