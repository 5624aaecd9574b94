"""Indexes for the Audit page's reads across the whole trail.

The trail gains a row for every page that shows patient data, so it is the store's largest table. The Audit
page's default read (a date range, newest first) and its action filter scanned and sorted all of it; at a
busy clinic's three years (378,030 events, scale audit) the default read took 260 ms and grew with the table.

- ``ix_audit_event_time``: (occurred_at, id), the date range in order;
- ``ix_audit_event_action_time``: (action, occurred_at), one action or an action prefix ("auth.").

Revision ID: 0010_audit_event_time_indexes
Revises: 0009_decision_review_interval
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_audit_event_time_indexes"
down_revision: str | Sequence[str] | None = "0009_decision_review_interval"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_event_time", "audit_event", ["occurred_at", "id"])
    op.create_index("ix_audit_event_action_time", "audit_event", ["action", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_event_action_time", table_name="audit_event")
    op.drop_index("ix_audit_event_time", table_name="audit_event")
