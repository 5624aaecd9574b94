"""How well the model's image embedding finds a known lesion again: the evidence behind the follow-up picker's
"most alike first" order (dashboard/lesion_likeness.py).

    python -m training.lesion_matching --checkpoint model/weights/default

HAM10000 photographs many lesions more than once (its lesion_id). For each such lesion, one photo is the new
image of a follow-up, turned by a random quarter turn and mirrored half of the time (a dermatoscope is not held
the same way twice), and the lesion's other photo is its stored image among ``--candidates - 1`` other lesions
of the same site (one photo each, drawn at random): the picker's site filter shows that set. The cosine distance
between embeddings orders the candidates; the figures are how often the right lesion comes first and among the
first three, with 95% Wilson intervals, against a random order.

Pairs closer than model.ugly_duckling.NEAR_COPY_DISTANCE before the turn are copies of one photo, not two
photos: they are counted and left out. The result goes under ``lesion_matching`` in the checkpoint's
validation.json, and the model card is rendered again.

What this does not measure: photos of one lesion months apart (HAM10000's were mostly taken at one visit), and
a patient's own other moles as the distractors (they tend to look more alike than strangers' lesions). Treat
the figures as an upper bound for a real follow-up.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from model.metrics import proportion_ci
from model.ugly_duckling import NEAR_COPY_DISTANCE, unit_rows

CANDIDATES = 40  # a patient with many moles; the picker's site filter narrows that further
LESIONS = 600
DISTRACTORS_PER_SITE = 250
SEED = 0
BATCH = 64


def matching_sets(
    records: pd.DataFrame, lesions: int = LESIONS, per_site: int = DISTRACTORS_PER_SITE, seed: int = SEED
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairs, distractors) from records with image_id, image_path, group_id and site.

    pairs: one row per lesion photographed at least twice (at most ``lesions``): ``new`` and ``stored`` image
    paths, site and group_id. distractors: one photo of each other lesion (at most ``per_site`` per site)."""
    rng = np.random.default_rng(seed)
    records = records.sort_values("image_id", kind="stable")
    sizes = records.groupby("group_id")["image_id"].transform("size")
    twice = records[sizes >= 2].groupby("group_id", sort=True).head(2)
    groups = twice["group_id"].unique()
    chosen = set(rng.choice(groups, size=min(lesions, len(groups)), replace=False))
    pairs = [
        {
            "group_id": g,
            "site": rows["site"].iloc[0],
            "new": rows["image_path"].iloc[0],
            "stored": rows["image_path"].iloc[1],
        }
        for g, rows in twice[twice["group_id"].isin(chosen)].groupby("group_id", sort=True)
    ]
    others = records[~records["group_id"].isin(chosen)].drop_duplicates("group_id")
    others = others.sample(frac=1.0, random_state=seed)
    distractors = others[others.groupby("site").cumcount() < per_site]
    return pd.DataFrame(pairs), distractors[["group_id", "site", "image_path"]].reset_index(drop=True)


def turned(image: Image.Image, quarter_turns: int, mirror: bool) -> Image.Image:
    """The photo as a dermatoscope held another way would take it."""
    if mirror:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image.rotate(90 * quarter_turns, expand=True) if quarter_turns % 4 else image


def rank_of_match(new: np.ndarray, stored: np.ndarray, distractors: np.ndarray) -> int:
    """1 + how many distractors are strictly closer to ``new`` than its own stored photo (unit vectors)."""
    return 1 + int(np.sum(distractors @ new > stored @ new))


def evaluate(
    new: np.ndarray,
    new_turned: np.ndarray,
    stored: np.ndarray,
    pair_sites: Sequence[str],
    distractors: np.ndarray,
    distractor_sites: Sequence[str],
    candidates: int = CANDIDATES,
    seed: int = SEED,
) -> dict:
    """The figures from embeddings: rows of new/new_turned/stored are aligned with pair_sites."""
    rng = np.random.default_rng(seed + 1)
    new, new_turned, stored, distractors = (unit_rows(e) for e in (new, new_turned, stored, distractors))
    copies = 1.0 - np.sum(new * stored, axis=1) < NEAR_COPY_DISTANCE
    dsites = np.asarray(distractor_sites)
    ranks, plain_ranks, pools = [], [], []
    for i, site in enumerate(pair_sites):
        if copies[i]:
            continue
        pool = np.flatnonzero(dsites == site)
        if len(pool) > candidates - 1:
            pool = rng.choice(pool, candidates - 1, replace=False)
        if not len(pool):
            continue
        ranks.append(rank_of_match(new_turned[i], stored[i], distractors[pool]))
        plain_ranks.append(rank_of_match(new[i], stored[i], distractors[pool]))
        pools.append(len(pool) + 1)
    ranks_a, plain_a, pools_a = np.array(ranks), np.array(plain_ranks), np.array(pools)

    def share(hits: np.ndarray) -> dict:
        low, high = proportion_ci(int(hits.sum()), len(hits))
        return {"value": float(hits.mean()) if len(hits) else float("nan"), "ci": [low, high]}

    return {
        "lesions": len(ranks_a),
        "copies_left_out": int(copies.sum()),
        "candidates": int(np.median(pools_a)) if len(pools_a) else 0,
        "first": share(ranks_a == 1),
        "top3": share(ranks_a <= 3),
        "first_same_orientation": share(plain_a == 1),
        "random_first": float(np.mean(1.0 / pools_a)) if len(pools_a) else float("nan"),
        "random_top3": float(np.mean(np.minimum(3, pools_a) / pools_a)) if len(pools_a) else float("nan"),
        "median_distance_same_lesion": float(np.median(1.0 - np.sum(new_turned * stored, axis=1)[~copies])),
    }


def embed(predictor, images: Sequence[Callable[[], Image.Image]], what: str) -> np.ndarray:
    """The predictor's pooled embeddings of decoded images, one view each (as the picker embeds)."""
    parts = []
    for start in tqdm(range(0, len(images), BATCH), desc=what, unit="batch"):
        batch = [load() for load in images[start : start + BATCH]]
        parts.append(predictor.predict_images(batch, tta=1).embedding)
    return np.concatenate(parts) if parts else np.zeros((0, predictor.model.embedding_dim), dtype=np.float32)


def measure(
    predictor,
    records: pd.DataFrame,
    lesions: int,
    candidates: int,
    per_site: int = DISTRACTORS_PER_SITE,
    seed: int = SEED,
) -> dict:
    from data.images import decode_image

    pairs, distractors = matching_sets(records, lesions, per_site, seed)
    rng = np.random.default_rng(seed + 2)
    turns = rng.integers(0, 4, len(pairs))
    mirrors = rng.random(len(pairs)) < 0.5

    def load(path: str) -> Callable[[], Image.Image]:
        return lambda: decode_image(Path(path))

    def load_turned(path: str, q: int, m: bool) -> Callable[[], Image.Image]:
        return lambda: turned(decode_image(Path(path)), int(q), bool(m))

    new = embed(predictor, [load(p) for p in pairs["new"]], "new photos")
    new_turned = embed(
        predictor, [load_turned(p, q, m) for p, q, m in zip(pairs["new"], turns, mirrors, strict=True)], "turned"
    )
    stored = embed(predictor, [load(p) for p in pairs["stored"]], "stored photos")
    others = embed(predictor, [load(p) for p in distractors["image_path"]], "other lesions")
    result = evaluate(new, new_turned, stored, pairs["site"], others, distractors["site"], candidates, seed)
    result.update({"data": "HAM10000 lesions photographed twice (lesion_id)", "seed": seed, "tta": 1})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--lesions", type=int, default=LESIONS, help="lesions photographed twice to test")
    parser.add_argument("--candidates", type=int, default=CANDIDATES, help="lesions shown, the right one included")
    parser.add_argument("--per-site", type=int, default=DISTRACTORS_PER_SITE, help="other lesions drawn per site")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--dry-run", action="store_true", help="print the figures; leave the checkpoint as it is")
    args = parser.parse_args(argv)
    if args.lesions < 1 or args.candidates < 2 or args.per_site < 1:
        parser.error("--lesions and --per-site must be at least 1, --candidates at least 2")
    from data.datasets import load_datasets
    from model.predictor import Predictor

    predictor = Predictor.from_checkpoint(args.checkpoint)
    result = measure(predictor, load_datasets(["ham10000"]), args.lesions, args.candidates, args.per_site, args.seed)
    result["model_id"] = predictor.model_id
    print(json.dumps(result, indent=1))
    if not args.dry_run:
        from training.evidence import update_evidence

        def add(validation: dict) -> None:
            validation["lesion_matching"] = result

        update_evidence(args.checkpoint, add)
        print(f"{args.checkpoint / 'validation.json'}: lesion_matching written; model card rendered", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
