"""CaseStore: the dashboard's one entry point to saved reviews.

One class, assembled from one part per idea; each part is a module of this package:

- core.py: opening the store, sessions, the audit trail;
- reviews.py: saving a review (patient, visit, lesions, images, scores, decisions);
- patients.py: reading a patient's record (timeline, lesions, trends, decisions) and exporting it;
- outcomes.py: after saving: amending decisions, recording histology, the labelled outcomes;
- drafts.py: one unsaved review per user;
- worklist.py: across patients, the lesions due for repeat imaging and the results outstanding.

Every public write is one transaction: a user action is saved completely or not at all.
"""

from __future__ import annotations

from dashboard.store.core import DEFAULT_MAX_IMAGE_PIXELS, ExportFormat, NotFoundError
from dashboard.store.drafts import ReviewDrafts
from dashboard.store.outcomes import Outcomes
from dashboard.store.patients import PatientRecords
from dashboard.store.reviews import ReviewWrites
from dashboard.store.worklist import Worklists

__all__ = ["DEFAULT_MAX_IMAGE_PIXELS", "CaseStore", "ExportFormat", "NotFoundError"]


class CaseStore(ReviewWrites, PatientRecords, Outcomes, ReviewDrafts, Worklists):
    """Patients, visits, lesions, images, scores, decisions, outcomes and drafts that survive."""
