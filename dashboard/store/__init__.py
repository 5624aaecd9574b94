"""The case store: patients, visits, lesions, images, scores and decisions that survive.

Importable without Streamlit or torch. Typical use::

    from dashboard.store import CaseStore, LesionReview, ReviewToSave

    store = CaseStore.from_url()          # $DATABASE_URL / $TRIAGE_DATA_DIR or var/
    visit_id = store.save_review(ReviewToSave(...))
    timeline = store.patient_timeline(patient_id)
"""

from dashboard.store.api import CaseStore, NotFoundError
from dashboard.store.config import DATA_DIR_ENV, DATABASE_URL_ENV
from dashboard.store.integrity import IntegrityReport, check_integrity
from dashboard.store.migrate import upgrade_to_head
from dashboard.store.models import ACTIONS, ANATOMIC_SITES, SEXES
from dashboard.store.records import (
    AuditRecord,
    DecisionView,
    ImageView,
    LesionReview,
    LesionSummary,
    PatientRecord,
    PatientSummary,
    PatientTimeline,
    PredictionView,
    ReviewToSave,
    TrendPoint,
    VisitLesion,
    VisitView,
)

__all__ = [
    "ACTIONS",
    "ANATOMIC_SITES",
    "DATABASE_URL_ENV",
    "DATA_DIR_ENV",
    "SEXES",
    "AuditRecord",
    "CaseStore",
    "DecisionView",
    "ImageView",
    "IntegrityReport",
    "LesionReview",
    "LesionSummary",
    "NotFoundError",
    "PatientRecord",
    "PatientSummary",
    "PatientTimeline",
    "PredictionView",
    "ReviewToSave",
    "TrendPoint",
    "VisitLesion",
    "VisitView",
    "check_integrity",
    "upgrade_to_head",
]
