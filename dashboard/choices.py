"""What a clinician picks from on the review page: anatomic sites, sexes, decisions (with their help text).

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
