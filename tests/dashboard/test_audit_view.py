"""The audit log page's action filter reaches every kind of event the dashboard records."""

from __future__ import annotations

import pytest

from dashboard.audit_view import AUDIT_ACTIONS


@pytest.mark.parametrize(
    "action",
    [
        "outcomes.summary",  # the Model page's "In this clinic" read every outcome
        "outcomes.export",
        "histology.record",
        "histology.amend",
        "decision.record",
        "decision.amend",
        "lesion.region",
        "review.save",
        "patient.report",
        "auth.login_failed",
    ],
)
def test_each_recorded_action_can_be_picked(action):
    chosen = [key for key in AUDIT_ACTIONS if key and (action == key or (key.endswith(".") and action.startswith(key)))]
    assert chosen, f"no filter shows {action}"
