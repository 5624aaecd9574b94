"""One base exception, and failures the pages swallow still leave a log line (without personal data)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from data.errors import TriageError

SECRET = "PT-Jane-Doe-1961"  # stands for a patient identifier quoted in a database error message


def _database_down() -> OperationalError:
    return OperationalError("INSERT INTO audit_event ...", {"identifier": SECRET}, Exception("database is locked"))


def test_the_project_s_exceptions_share_one_base():
    from dashboard.auth import AccessDenied, LoginFailed
    from dashboard.history_data import StoredImageError
    from dashboard.review_record import ReviewNotReady
    from dashboard.store.core import NotFoundError
    from dashboard.store.privacy import MetadataError
    from data.errors import DatasetError
    from data.images import ImageDecodeError
    from model.cam import CamError
    from model.checkpoint import CheckpointError
    from model.pretrained import PretrainedWeightsError
    from training.evaluate_triage import EvaluationError
    from training.recipe import RecipeError

    for error in (AccessDenied, LoginFailed, StoredImageError, ReviewNotReady, NotFoundError, MetadataError):
        assert issubclass(error, TriageError), error
    for error in (ImageDecodeError, DatasetError, CamError, CheckpointError, PretrainedWeightsError):
        assert issubclass(error, TriageError), error
    for error in (RecipeError, EvaluationError):  # training's own
        assert issubclass(error, TriageError), error
    # Callers that catch the built-in they refine still catch them.
    assert issubclass(ImageDecodeError, ValueError) and issubclass(NotFoundError, LookupError)
    assert issubclass(RecipeError, ValueError) and issubclass(EvaluationError, ValueError)


def test_a_swallowed_audit_failure_on_sign_out_is_logged_without_personal_data(caplog):
    from dashboard import auth_ui, session

    class Accounts:
        def record(self, user, action):
            raise _database_down()

    auth_ui.st.session_state[session.SESSION_KEY] = session.SignedIn(SimpleNamespace(username="dr.a"), 0.0)
    with caplog.at_level(logging.ERROR, logger="dashboard.auth_ui"):
        auth_ui.sign_out(Accounts())  # signing out still works
    assert session.SESSION_KEY not in auth_ui.st.session_state
    (record,) = [r for r in caplog.records if r.name == "dashboard.auth_ui"]
    assert "auth.logout" in record.getMessage() and "OperationalError" in record.getMessage()
    assert SECRET not in caplog.text


def _scored_review(identifier: str, patient_lesions):
    """A one-lesion review, scored (stand-in triage), ready to save."""
    from dashboard.patient_form import PatientContext
    from dashboard.review_state import ReviewState
    from tests.dashboard.test_review_state import _fake_result

    state = ReviewState(patient=PatientContext(identifier=identifier))
    state.add_files([(patient_lesions[0].name, patient_lesions[0].data)])
    state.run_triage(None, triage_fn=lambda *a, **k: _fake_result(state, [0.3], [float("nan")]))
    return state


class _StoreThatCannotReadBack:
    """Saves visit 9, then fails to read it back with `error`."""

    def __init__(self, error: Exception):
        self.error = error

    def save_review(self, review):
        return 9

    def load_visit(self, visit_id):
        raise self.error


def test_a_saved_visit_that_cannot_be_read_back_is_logged_and_the_save_stands(caplog, patient_lesions):
    state = _scored_review(SECRET, patient_lesions)
    with caplog.at_level(logging.ERROR, logger="dashboard.review_state"):
        assert state.save(_StoreThatCannotReadBack(_database_down()), "Dr A", "m1", "abc") == 9
    assert state.is_saved and state.saved_visit_label() == "visit 9"
    assert "reading back the saved visit failed (OperationalError)" in caplog.text and SECRET not in caplog.text


def test_an_unexpected_error_is_not_swallowed_as_a_store_failure(patient_lesions):
    state = _scored_review("PT-1", patient_lesions)
    with pytest.raises(AttributeError):
        state.save(_StoreThatCannotReadBack(AttributeError("a bug, not a database failure")), "Dr A", "m1", "abc")
