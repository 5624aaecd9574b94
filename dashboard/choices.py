"""What a clinician picks from on the review page: anatomic sites, sexes, decisions (with their help text and
the one way each reads on screen and in the report).

The vocabularies are the case store's (dashboard/store/models.py), so a choice offered is a value it accepts.
"""

from __future__ import annotations

from dashboard.store.models import ACTIONS, ANATOMIC_SITES, SEXES

SITES: tuple[str, ...] = ANATOMIC_SITES
SEX_OPTIONS: tuple[str, ...] = SEXES
DECISIONS: tuple[str, ...] = ACTIONS
DECISION_HELP = {
    "biopsy": "Take a biopsy for histology",
    "excise": "Excise the lesion",
    "monitor": "Follow up with repeat imaging",
    "reassure": "Benign-appearing; no follow-up needed",
    "refer": "Refer to a colleague or specialist clinic",
}


def decision_label(action: str) -> str:
    """How a decision reads on every page, in every table and in the report ("Monitor"); the store keeps the
    lower-case value ("monitor"), and so do the CSV exports (``EXPORT_CODES_NOTE``)."""
    return action.capitalize()


# Said beside every download (patient history, outcomes, audit log): coded values stay as the store keeps them.
EXPORT_CODES_NOTE = (
    'Downloads keep the stored codes (e.g. "monitor", "other_malignant"), not the labels shown on screen, '
    "so spreadsheets and scripts read them the same when the wording changes."
)


# A monitor decision's repeat-imaging interval, in months: short-term digital monitoring (3) and the usual
# longer recalls. The store accepts 1-24 (an amendment may set another); the review offers these.
REVIEW_MONTHS: tuple[int, ...] = (3, 6, 12)
DEFAULT_REVIEW_MONTHS = 3
