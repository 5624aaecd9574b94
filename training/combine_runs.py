"""Combine partially fine-tuned runs into one run of their shared-trunk ensemble (model/ensemble.py).

    python -m training.combine_runs --members runs/model3 runs/v22 --out runs/v23

Each member is a run folder as training/train_cpu.sh leaves it (`cv/`, `final/`, `rerun_seed*/`, `loso_*/`,
`baseline.json`), trained from its own cut on the same frozen ImageNet trunk. The output is a run folder of
the same shape, for `training.assemble_default`:

- `final/checkpoint`: the ensemble network (the members' final models; the trunk up to the shallowest cut is
  shared, and refused if the members' weights differ there);
- every evaluation folder all members have (`cv`, `rerun_seed*`, `loso_*`): per image and TTA view, the mean
  of the members' logits, which is exactly what the ensemble computes (each member's prediction of an image is
  held out for that member, so the mean is held out too); `cv` also gets the members' embeddings side by
  side, as the ensemble returns them;
- `final/external_*.csv`: the same mean on the external sets;
- `cv/summary.json`, `final/summary.json`: each member's summary, and the settings all members share.

Nothing is trained or fitted here.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from model.cuts import cut_depth
from model.ensemble import SharedTrunkEnsemble
from training.assemble_default import load_embeddings
from training.calibration import TTA_LOGITS

EVALUATIONS = ("cv", "rerun_seed*", "loso_*")


class CombineError(ValueError):
    pass


def member_cut(run: Path, config: dict) -> str:
    """The cut a member's final model was trained from (`config`: its checkpoint's)."""
    cut = config.get("partial_cut")
    if not cut:
        raise CombineError(f"{run}: its final model was fully fine-tuned (no frozen trunk to share with others)")
    return str(cut)


def mean_of_views(frames: list[pd.DataFrame], what: str) -> pd.DataFrame:
    """Member 0's rows with every TTA view's logit replaced by the members' mean (matched by image_id)."""
    ids = [frozenset(f["image_id"].astype(str)) for f in frames]
    if any(i != ids[0] for i in ids[1:]):
        raise CombineError(f"{what}: the members scored different images; combine runs made on the same data")
    out = frames[0].copy()
    key = out["image_id"].astype(str)
    aligned = [f.set_index(f["image_id"].astype(str)).loc[key, TTA_LOGITS].to_numpy(float) for f in frames]
    out[TTA_LOGITS] = np.mean(aligned, axis=0)
    out["p_raw"] = (1 / (1 + np.exp(-out[TTA_LOGITS].to_numpy(float)))).mean(1)
    return out


def side_by_side(paths: list[Path], ids: pd.Series) -> dict[str, np.ndarray]:
    """The members' embeddings of `ids`, concatenated in member order (the ensemble's embedding)."""
    parts = []
    for path in paths:
        embedding = load_embeddings(path, ids)
        missing = ids[np.isnan(embedding).any(axis=1)]
        if len(missing):
            raise CombineError(f"{path}: no embedding for {len(missing)} image(s), e.g. {missing.iloc[0]}")
        parts.append(embedding.astype(np.float16))  # as train_cached saves them
    return {"image_id": ids.to_numpy(str), "embedding": np.concatenate(parts, axis=1)}


def shared_settings(summaries: list[dict]) -> dict:
    """The training settings every member used alike (e.g. metadata dropout)."""
    configs = [s.get("config", {}) for s in summaries]
    return {k: v for k, v in configs[0].items() if all(c.get(k) == v for c in configs[1:])}


def combined_summary(members: list[Path], folder: str) -> dict:
    summaries = [json.loads((m / folder / "summary.json").read_text()) for m in members]
    return {
        "combined_from": [str(m) for m in members],
        "config": shared_settings(summaries),
        "members": summaries,
    }


def combine_evaluation(members: list[Path], name: str, out: Path) -> None:
    frames = [pd.read_csv(m / name / "oof.csv", dtype={"image_id": str, "group_id": str}) for m in members]
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    combined = mean_of_views(frames, f"{name}/oof.csv")
    combined.to_csv(folder / "oof.csv", index=False)
    embeddings = [m / name / "oof_embeddings.npz" for m in members]
    if all(p.exists() for p in embeddings):
        np.savez_compressed(folder / "oof_embeddings.npz", **side_by_side(embeddings, combined["image_id"]))
    if all((m / name / "summary.json").exists() for m in members):
        (folder / "summary.json").write_text(json.dumps(combined_summary(members, name), indent=2) + "\n")


def combine_final(members: list[Path], out: Path) -> str:
    models, configs = zip(*(load_checkpoint(m / "final" / "checkpoint") for m in members), strict=True)
    cuts = [member_cut(m, config) for m, config in zip(members, configs, strict=True)]
    shared = min(cuts, key=lambda cut: cut_depth(models[0].backbone, cut))
    try:
        ensemble = SharedTrunkEnsemble.from_members(list(models), shared)
    except ValueError as exc:
        raise CombineError(str(exc)) from None
    final = out / "final"
    final.mkdir(parents=True, exist_ok=True)
    summary = combined_summary(members, "final")
    training = {
        **summary,
        "member_cuts": cuts,
        "member_weights_sha256": [c.get("weights_sha256") for c in configs],
    }
    preprocess = [c.get("preprocess") for c in configs]
    if any(p != preprocess[0] for p in preprocess[1:]):
        raise CombineError(f"the members preprocess their images differently ({preprocess}): one trunk, one input")
    extra = {"preprocess": preprocess[0]} if preprocess[0] else {}
    save_checkpoint(final / "checkpoint", ensemble, {"training": training, "partial_cut": shared, **extra})
    (final / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for path in sorted(members[0].glob("final/external_*.csv")):
        others = [m / "final" / path.name for m in members[1:]]
        if all(p.exists() for p in others):
            frames = [pd.read_csv(p, dtype={"image_id": str}) for p in (path, *others)]
            mean_of_views(frames, f"final/{path.name}").to_csv(final / path.name, index=False)
    return shared


def evaluation_folders(members: list[Path]) -> list[str]:
    names = [{p.name for pattern in EVALUATIONS for p in m.glob(pattern) if (p / "oof.csv").exists()} for m in members]
    return sorted(set.intersection(*names))


def combine(members: list[Path], out: Path) -> dict:
    if len(members) < 2:
        raise CombineError("combine at least two runs")
    out.mkdir(parents=True, exist_ok=True)
    shared = combine_final(members, out)
    folders = evaluation_folders(members)
    if "cv" not in folders:
        raise CombineError("every member needs a cross-validation run (cv/oof.csv): the evidence comes from it")
    for name in folders:
        combine_evaluation(members, name, out)
    if (members[0] / "baseline.json").exists():
        shutil.copyfile(members[0] / "baseline.json", out / "baseline.json")
    return {"shared_trunk": shared, "evaluations": folders}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", nargs="+", type=Path, required=True, help="run folders, in member order")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        result = combine(args.members, args.out)
    except (CombineError, CheckpointError, OSError) as exc:
        parser.error(str(exc))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
