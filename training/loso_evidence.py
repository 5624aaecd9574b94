"""Leave-one-source-out evidence: one held-out source's figures from its run(s), and a figure run after a
checkpoint was assembled written into its evidence and card.

    python -m training.loso_evidence --checkpoint model/weights/default --source isic2020_patients \
        --members runs/loso_pop/tail_blocks52/loso_isic2020_patients \
                  runs/loso_pop/tail_blocks52_pairs_long/loso_isic2020_patients

Each member is a ``train_cached --fold source:...`` output folder (``oof.csv``, ``summary.json``) of one
tail of the checkpoint's network; their per-view logits are averaged, as the shared-trunk ensemble averages
its tails. ``held_out`` lists every training source the runs never saw: the ones they left out, and the ones
they were not given (``--datasets``). For the complete patients the whole-patient ranking figures come too.
The entry replaces the source's earlier one, which is kept under ``replaces``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from model.metrics import summarize
from training.calibration import TTA_LOGITS, mean_logit
from training.trunk_cache import TRAIN_SOURCES
from training.whole_patient import WHOLE_PATIENT_SOURCE, bootstrap, patient_table, random_order_share


def member_mean(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The members' out-of-fold tables as one: per image and TTA view, the mean of the members' logits."""
    first = frames[0]
    for other in frames[1:]:
        if not np.array_equal(other["image_id"].to_numpy(str), first["image_id"].to_numpy(str)):
            raise ValueError("the members scored different images (or in another order)")
    views = [c for c in TTA_LOGITS if c in first.columns]
    out = first.copy()
    out[views] = np.mean([f[views].to_numpy(float) for f in frames], axis=0)
    return out


def never_seen(summaries: list[dict], held: str) -> list[str]:
    """The training sources none of the runs trained on: what they left out and what they were not given."""
    unseen = set()
    for summary in summaries:
        given = set(summary.get("config", {}).get("datasets") or TRAIN_SOURCES)
        unseen |= set(summary.get("held_out", [held])) | (set(TRAIN_SOURCES) - given)
    return sorted(unseen)


def loso_entry(frame: pd.DataFrame, held_out: list[str], n_boot: int) -> dict:
    """A held-out source's AUC (patient-bootstrap interval) and, for the complete patients, how the ranking
    put their melanomas first."""
    y = frame["target"].to_numpy(int)
    score = mean_logit(frame)
    lesion = summarize(y, score, frame["group_id"].to_numpy(), n_boot=n_boot)
    entry = {
        "auc": lesion["auc"],
        "n": len(y),
        "n_melanoma": int(y.sum()),
        "auc_ci": lesion["auc_ci"],
        "held_out": held_out,
    }
    if set(frame["dataset"]) == {WHOLE_PATIENT_SOURCE}:
        table = patient_table(frame, score)
        entry["whole_patient"] = {
            **{k: v for k, v in bootstrap(table, n_boot=n_boot).items() if k in ("share_before", "top5", "within_auc")},
            "random_order_share": random_order_share(table),
        }
    return entry


def update_checkpoint(checkpoint: Path, source: str, members: list[Path], n_boot: int = 1000) -> dict:
    from training.evidence import update_evidence

    frames = [pd.read_csv(m / "oof.csv", dtype={"image_id": str, "group_id": str}) for m in members]
    summaries = [json.loads((m / "summary.json").read_text()) for m in members]
    entry = loso_entry(member_mean(frames), never_seen(summaries, source), n_boot)

    def replace_entry(validation: dict) -> dict:
        loso = validation.setdefault("leave_one_source_out", {})
        earlier = loso.get(source)
        if earlier is not None:
            if sorted(earlier.get("held_out", [source])) == entry["held_out"]:
                # a rerun of the same design: the run it replaced is still the one worth naming
                if "replaces" in earlier:
                    entry["replaces"] = earlier["replaces"]
            else:
                entry["replaces"] = {k: earlier[k] for k in ("auc", "auc_ci", "held_out") if k in earlier}
                entry["replaces"].setdefault("held_out", [source])
        loso[source] = entry
        return entry

    return update_evidence(checkpoint, replace_entry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--source", required=True, help="the held-out source the runs were scored on")
    parser.add_argument("--members", type=Path, nargs="+", required=True, help="one run folder per tail")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args(argv)
    missing = [str(m) for m in args.members if not (m / "oof.csv").is_file() or not (m / "summary.json").is_file()]
    if missing:
        print(f"no oof.csv or summary.json in: {', '.join(missing)}", file=sys.stderr)
        return 2
    print(json.dumps(update_checkpoint(args.checkpoint, args.source, args.members, args.n_boot), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
