"""How the model did on this clinic's own patients, from the histology results recorded in the case store.

The model card's figures come from public archives, and its never-seen-source run shows that the ranking
falls towards chance on a population the model never saw. This is the check a clinic makes on its own
patients as results come in. For the lesions with a histology result, scored by the model loaded now:

- melanomas flagged at the operating threshold: sensitivity among excised melanomas;
- excised lesions that were not melanoma, flagged. These are the lesions a clinician already found
  suspicious, not the false-alarm rate of all moles;
- for each visit that led to a melanoma, its rank among the lesions the visit ranked: the share of the
  visit's other lesions listed before it, and whether it was in the top 5. These are the model card's
  complete-patient figures, measured here, next to what a random order would give;
- the AUC among the excised lesions (melanoma against not).

Only the image the result labels counts: the lesion's last scored image up to the visit that decided its biopsy
or excision, else up to the result's day (``CaseStore.outcomes``' latest_image; a later photo shows the wound).
Lesions never excised carry no label: they count only as the other lesions of their visit, assumed not melanoma.
Proportions carry 95% Wilson intervals, and until a clinic has about ``ENOUGH_MELANOMAS`` melanomas the
page says the figures cannot yet be judged.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dashboard.model_evidence import (
    complete_patient_stats,
    deployed_ranking,
    unseen_source_ranking,
    whole_patient,
)
from dashboard.store.records import OutcomeRow
from dashboard.wording import counted
from model import metrics
from model.score_text import ci_text

ENOUGH_MELANOMAS = 10  # below this, a sensitivity's 95% interval spans ~50 points: shown, not judged
TOP_K = 5
MIN_EACH_FOR_AUC = 5  # melanomas and non-melanomas each: an AUC on fewer is one or two orderings
AUDIT_ACTION = "outcomes.summary"  # the page records once per session that it read every outcome


@dataclass(frozen=True)
class Proportion:
    hits: int
    total: int

    @property
    def value(self) -> float:
        return self.hits / self.total if self.total else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        return metrics.proportion_ci(self.hits, self.total)

    def text(self) -> str:
        """ "52% (13 of 25; 33–70%)": the share, the counts, the 95% interval; "–" for nothing to count."""
        if not self.total:
            return "–"
        low, high = self.interval
        return f"{self.value:.0%} ({self.hits} of {self.total}; {100 * low:.0f}–{high:.0%})"


@dataclass(frozen=True)
class MelanomaVisit:
    """A visit whose lesions included an excised melanoma: where its first melanoma was ranked."""

    first_rank: int
    ranked: int  # the lesions the visit ranked
    melanomas: int

    @property
    def share_before(self) -> float:
        return metrics.share_before(self.first_rank, self.ranked)


@dataclass(frozen=True)
class LocalResults:
    lesions: int  # lesions with a histology result whose labelled image (see above) this model scored
    melanomas: int
    other_models: int  # lesions with a result whose last image another model scored: left out
    melanomas_flagged: Proportion | None  # None: the model has no threshold
    others_flagged: Proportion | None
    visits: tuple[MelanomaVisit, ...]
    auc: float  # NaN unless both kinds were excised

    @property
    def enough(self) -> bool:
        return self.melanomas >= ENOUGH_MELANOMAS

    @property
    def top_k(self) -> Proportion:
        return Proportion(sum(v.first_rank <= TOP_K for v in self.visits), len(self.visits))

    @property
    def share_before(self) -> float:
        return sum(v.share_before for v in self.visits) / len(self.visits) if self.visits else math.nan

    @property
    def random_share_before(self) -> float:
        return metrics.random_order_share([v.ranked for v in self.visits], [v.melanomas for v in self.visits])

    @property
    def random_top_k(self) -> float:
        return metrics.random_order_top([v.ranked for v in self.visits], [v.melanomas for v in self.visits], TOP_K)


def local_results(
    rows: Sequence[OutcomeRow], scored_by_model: Callable[[str, str], bool], threshold: float | None
) -> LocalResults:
    """The figures above from the store's outcome rows (``CaseStore.outcomes``). ``scored_by_model(model_id,
    checksum)`` says whether a stored score is the loaded model's (``report.ModelFacts.scored``): another
    version's scores, made with its own threshold, are counted apart, never mixed in."""
    last = [r for r in rows if r.latest_image and r.histology != "not_done"]
    mine = [r for r in last if scored_by_model(r.model_id, r.model_checksum)]
    is_melanoma = [r.histology == "melanoma" for r in mine]
    melanomas = sum(is_melanoma)

    def flagged(rows_of_kind: list[OutcomeRow]) -> Proportion | None:
        if threshold is None:
            return None
        return Proportion(sum(r.p_melanoma >= threshold for r in rows_of_kind), len(rows_of_kind))

    by_visit: dict[int, list[OutcomeRow]] = defaultdict(list)
    for row in mine:
        if row.histology == "melanoma":
            by_visit[row.visit_id].append(row)
    visits = tuple(
        MelanomaVisit(
            first_rank=min(r.rank for r in found),
            ranked=max(max(r.ranked_in_visit, r.rank) for r in found),
            melanomas=len(found),
        )
        for _, found in sorted(by_visit.items())
    )
    return LocalResults(
        lesions=len(mine),
        melanomas=melanomas,
        other_models=len(last) - len(mine),
        melanomas_flagged=flagged([r for r, m in zip(mine, is_melanoma, strict=True) if m]),
        others_flagged=flagged([r for r, m in zip(mine, is_melanoma, strict=True) if not m]),
        visits=visits,
        auc=metrics.roc_auc(is_melanoma, [r.p_melanoma for r in mine]) if mine else math.nan,
    )


CLINIC, RANDOM = "this clinic", "random order"
COMPLETE, UNSEEN = "validation: complete patients", "validation: unseen source"


def comparison_table(
    results: LocalResults, validation: dict[str, Any] | None, config: dict[str, Any] | None
) -> pd.DataFrame:
    """This clinic's figures beside what a random order would give and the model card's: its complete patients
    (scored out of fold), and a run that never saw their source (what a clinic unlike the training data may
    expect). Intervals are 95%."""
    rankings = whole_patient(validation).get("rankings") or {}
    card = rankings.get(deployed_ranking(config)) or {}
    complete = complete_patient_stats(validation)
    unseen = unseen_source_ranking(validation)
    unseen_wp = unseen[2] if unseen else {}
    mel, others = results.melanomas_flagged, results.others_flagged
    visits = bool(results.visits)
    enough_for_auc = min(results.melanomas, results.lesions - results.melanomas) >= MIN_EACH_FOR_AUC
    rows = [
        {
            "measure": "melanomas flagged at the threshold",
            CLINIC: mel.text() if mel else "no threshold",
            RANDOM: "–",
            COMPLETE: _card_proportion(complete.get("sensitivity"), complete.get("n_melanoma")),
            UNSEEN: "–",
        },
        {
            "measure": "excised non-melanomas flagged",
            CLINIC: others.text() if others else "no threshold",
            RANDOM: "–",
            COMPLETE: "–",
            UNSEEN: "–",
        },
        {
            "measure": f"melanoma in the visit's top {TOP_K}",
            CLINIC: results.top_k.text(),
            RANDOM: f"{results.random_top_k:.0%}" if visits else "–",
            COMPLETE: ci_text(card.get(f"top{TOP_K}"), ".0%"),
            UNSEEN: ci_text(unseen_wp.get(f"top{TOP_K}"), ".0%"),
        },
        {
            "measure": "share of the visit's other lesions listed before the melanoma",
            CLINIC: f"{results.share_before:.2f} ({counted(len(results.visits), 'visit')})" if visits else "–",
            RANDOM: f"{results.random_share_before:.2f}" if visits else "–",
            COMPLETE: ci_text(card.get("share_before")),
            UNSEEN: ci_text(unseen_wp.get("share_before")),
        },
        {
            "measure": "AUC, excised lesions (melanoma against not)",
            CLINIC: f"{results.auc:.2f}" if enough_for_auc and not math.isnan(results.auc) else "–",
            RANDOM: "0.50",
            COMPLETE: ci_text(complete.get("auc")) + " (all lesions)",
            UNSEEN: "–",
        },
    ]
    return pd.DataFrame(rows)


def _card_proportion(share: Any, n: Any) -> str:
    """A card's sensitivity with its count and 95% interval, as this clinic's are shown."""
    try:
        total = int(n)
        hits = round(float(share) * total)
    except (TypeError, ValueError):
        return ci_text(share, ".0%")
    return Proportion(hits, total).text() if total else "–"


def summary_sentence(results: LocalResults) -> str:
    """What the figures rest on, and whether they can be judged yet."""
    text = (
        f"{counted(results.lesions, 'lesion')} with a histology result scored by this model, "
        f"{results.melanomas} of them melanoma, in {counted(len(results.visits), 'visit')} that led to a melanoma."
    )
    if results.other_models:
        text += (
            f" {counted(results.other_models, 'result')} of lesions scored by another model version "
            f"{'is' if results.other_models == 1 else 'are'} left out."
        )
    if not results.enough:
        text += (
            f" Fewer than {ENOUGH_MELANOMAS} melanomas: too few to judge the model here yet (see the intervals);"
            " record every histology result to build this up."
        )
    return text
