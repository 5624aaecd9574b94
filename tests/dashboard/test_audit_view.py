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


def _events():
    import datetime as dt

    from dashboard.store.records import AuditRecord

    when = dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.UTC)
    return [
        AuditRecord(1, when, "dr.ada", "decision.record", 7, {"lesion_id": 3, "action": "monitor", "model_id": "m1"}),
        AuditRecord(2, when, "dr.ada", "decision.amend", 7, {"old_action": "monitor", "new_action": "excise"}),
        AuditRecord(3, when, "dr.ada", "histology.amend", 7, {"old": "benign", "new": "other_malignant"}),
        AuditRecord(4, when, "dr.ada", "review.save", 7, {"action": "monitor"}),  # not a decision event: as stored
    ]


def test_the_page_shows_decisions_and_histology_by_their_labels():
    import json

    from dashboard.audit_view import audit_table

    details = [json.loads(d) for d in audit_table(_events())["detail"]]
    assert details[0] == {"lesion_id": 3, "action": "Monitor"}
    assert details[1] == {"old_action": "Monitor", "new_action": "Excise"}
    assert details[2] == {"old": "Benign", "new": "Other malignant"}
    assert details[3] == {"action": "monitor"}


def test_the_csv_keeps_the_stored_codes():
    import csv
    import io
    import json

    from dashboard.audit_view import audit_csv

    rows = list(csv.DictReader(io.StringIO(audit_csv(_events()))))
    details = [json.loads(r["detail"]) for r in rows]
    assert details[0]["action"] == "monitor"
    assert (details[1]["old_action"], details[1]["new_action"]) == ("monitor", "excise")
    assert (details[2]["old"], details[2]["new"]) == ("benign", "other_malignant")
