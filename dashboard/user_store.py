"""The case store as one signed-in user sees it: ``UserStore``, role-checked, every access attributed.

Every call that reads or writes patient data checks the account as it is now (active, role, password unchanged
since sign-in, accounts.py) first, and records who did it. Checking at the call, not only at the page's start,
covers widget callbacks (they run before the page script) and deferred downloads (they run without it). A browser
session's user carries its idle clock (``IdleClock``, kept up to date by auth_ui): past the idle limit, the store
refuses every call with the sign-out message the page gives.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from dashboard.accounts import account_now
from dashboard.auth import AccessDenied, AuthUser, idle_sign_out_message
from dashboard.store.api import CaseStore, ExportFormat
from dashboard.store.records import AuditRecord, ReviewToSave
from data import settings


class UserStore:
    """The case store as one signed-in user may use it: role checked, every access attributed."""

    def __init__(self, store: CaseStore, user: AuthUser) -> None:
        self._store = store
        self.user = user

    @property
    def data_dir(self) -> Any:
        return self._store.data_dir

    def _require(self, permission: str) -> None:
        """The account as it is now may do this: a session ended since the page started (idle past the limit,
        account disabled, password changed) does nothing."""
        if self.user.idle is not None and self.user.idle.expired():
            raise AccessDenied(idle_sign_out_message())
        fresh = account_now(self._store, self.user)
        if fresh is None:
            raise AccessDenied("this session has ended (account disabled or password changed): sign in again")
        self.user = fresh
        fresh.require(permission)

    def _read(self) -> None:
        self._require("patient.read")

    # reads
    def search_patients(self, partial_identifier: str, limit: int = 50) -> Any:
        self._read()
        return self._store.search_patients(partial_identifier, limit)

    def find_patient_id(self, identifier: str) -> int | None:
        self._read()
        return self._store.find_patient_id(identifier)

    def get_patient(self, patient_id: int) -> Any:
        self._read()
        return self._store.get_patient(patient_id)

    def patient_timeline(self, patient_id: int) -> Any:
        self._read()
        return self._store.patient_timeline(patient_id)

    def load_visit(self, visit_id: int) -> Any:
        self._read()
        return self._store.load_visit(visit_id)

    def list_lesions(self, patient_id: int) -> Any:
        self._read()
        return self._store.list_lesions(patient_id)

    def lesion_score_trend(self, lesion_id: int) -> Any:
        self._read()
        return self._store.lesion_score_trend(lesion_id)

    def decision_history(self, patient_id: int) -> Any:
        self._read()
        return self._store.decision_history(patient_id)

    def images_saved_for_other_patients(self, hashes: Any, patient_id: int | None) -> set[str]:
        """Which of an upload's images are saved for another patient (hashes only: no patient is named)."""
        self._read()
        return self._store.images_saved_for_other_patients(hashes, patient_id)

    def image_path(self, sha256: str) -> Any:
        self._read()
        return self._store.image_path(sha256)

    def record_view(self, action: str, patient_id: int | None, detail: dict[str, Any] | None = None) -> None:
        """Audit a read (``patient.view``, ``image.view``, ``patient.search``); ids only in ``detail``."""
        self._read()
        self._store.record_event(self.user.username, action, patient_id, detail)

    # writes
    def save_review(self, review: ReviewToSave) -> int:
        self._require("patient.write")
        # The reviewing clinician is whoever is signed in, whatever the form said.
        return self._store.save_review(dataclasses.replace(review, clinician=self.user.username))

    # the signed-in user's own review in progress, kept so that a reload does not lose it
    def save_draft(self, state: dict[str, Any], images: Any) -> None:
        self._require("patient.write")
        self._store.save_draft(self.user.username, state, images)

    def load_draft(self, *, with_images: bool = True) -> Any:
        """The user's unsaved review, unless unused for TRIAGE_DRAFT_KEEP_DAYS; every such draft is deleted
        first, at most hourly (the review page asks on every run)."""
        self._require("patient.write")
        keep = timedelta(days=settings.dashboard_settings().draft_keep_days)
        self._store.prune_drafts_when_due(keep)
        return self._store.load_draft(self.user.username, with_images=with_images, keep=keep)

    def delete_draft(self) -> bool:
        self._require("patient.write")
        return self._store.delete_draft(self.user.username)

    def export_patient_history(self, patient_id: int, format: ExportFormat = "csv") -> str:
        self._require("patient.export")
        return self._store.export_patient_history(patient_id, format, actor=self.user.username)

    # after saving: amendments, histology, outcomes (the signed-in user is the one who amends or records)
    def amend_decision(
        self, decision_id: int, action: str, comment: str = "", *, reason: str, review_in_months: int | None = None
    ) -> int:
        self._require("patient.write")
        return self._store.amend_decision(
            decision_id, action, comment, reason=reason, actor=self.user.username, review_in_months=review_in_months
        )

    def record_decision(
        self, visit_id: int, lesion_id: int, action: str, comment: str = "", *, review_in_months: int | None = None
    ) -> int:
        self._require("patient.write")
        return self._store.record_decision(
            visit_id, lesion_id, action, comment, actor=self.user.username, review_in_months=review_in_months
        )

    def record_histology(self, lesion_id: int, result: str, *, reported_on: Any = None, note: str = "") -> Any:
        self._require("patient.write")
        return self._store.record_histology(
            lesion_id, result, actor=self.user.username, reported_on=reported_on, note=note
        )

    def set_body_region(self, lesion_id: int, region: str | None) -> str | None:
        self._require("patient.write")
        return self._store.set_body_region(lesion_id, region, actor=self.user.username)

    def histology_history(self, lesion_id: int) -> Any:
        self._read()
        return self._store.histology_history(lesion_id)

    def outcomes(self, patient_id: int | None = None, *, include_not_done: bool = False) -> Any:
        self._read()
        return self._store.outcomes(patient_id, include_not_done=include_not_done)

    def worklist(self) -> Any:
        """Across patients: lesions due for repeat imaging and results outstanding (audited by the page)."""
        self._read()
        return self._store.worklist()

    def export_outcomes(self, patient_id: int | None = None, *, include_not_done: bool = False) -> str:
        self._require("patient.export")
        return self._store.export_outcomes(patient_id, actor=self.user.username, include_not_done=include_not_done)

    # administration
    def audit_events(self, **filters: Any) -> list[AuditRecord]:
        self._require("audit.read")
        return self._store.audit_events(**filters)

    def record_audit_export(self, rows: int) -> None:
        self._require("audit.read")
        self._store.record_event(self.user.username, "audit.export", None, {"rows": rows})
