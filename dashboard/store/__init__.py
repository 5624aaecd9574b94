"""The case store: patients, visits, lesions, images, scores and decisions that survive.

Importable without Streamlit or torch. Typical use::

    from dashboard.store import CaseStore, LesionReview, ReviewToSave

    store = CaseStore.from_url()          # $DATABASE_URL / $TRIAGE_DATA_DIR or var/
    visit_id = store.save_review(ReviewToSave(...))
    timeline = store.patient_timeline(patient_id)

The names below are imported from their modules on first use (PEP 562), so that running a module of this
package (``python -m dashboard.store.integrity``, ``… .migrate``) does not import it twice: importing the
package must not import the module that is about to run.
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports at the end exist for type checkers only)
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "CaseStore": "api",
    "NotFoundError": "api",
    "DATA_DIR_ENV": "config",
    "DATABASE_URL_ENV": "config",
    "IntegrityReport": "integrity",
    "check_integrity": "integrity",
    "upgrade_to_head": "migrate",
    "ACTIONS": "models",
    "ANATOMIC_SITES": "models",
    "HISTOLOGY_RESULTS": "models",
    "IMAGE_KINDS": "models",
    "SEXES": "models",
    **{
        name: "records"
        for name in (
            "AuditRecord",
            "DecisionView",
            "HistologyView",
            "ImageView",
            "LesionReview",
            "LesionSummary",
            "OutcomeRow",
            "OverviewImage",
            "PatientRecord",
            "PatientSummary",
            "PatientTimeline",
            "PredictionView",
            "ReviewToSave",
            "TrendPoint",
            "VisitLesion",
            "VisitView",
        )
    },
}

# One list: the public names are the keys above.
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # the same names, spelled out for type checkers and editors (unused at run time)
    from dashboard.store.api import CaseStore, NotFoundError
    from dashboard.store.config import DATA_DIR_ENV, DATABASE_URL_ENV
    from dashboard.store.integrity import IntegrityReport, check_integrity
    from dashboard.store.migrate import upgrade_to_head
    from dashboard.store.models import ACTIONS, ANATOMIC_SITES, HISTOLOGY_RESULTS, IMAGE_KINDS, SEXES
    from dashboard.store.records import (
        AuditRecord,
        DecisionView,
        HistologyView,
        ImageView,
        LesionReview,
        LesionSummary,
        OutcomeRow,
        OverviewImage,
        PatientRecord,
        PatientSummary,
        PatientTimeline,
        PredictionView,
        ReviewToSave,
        TrendPoint,
        VisitLesion,
        VisitView,
    )
