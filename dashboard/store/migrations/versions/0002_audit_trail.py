"""Audit trail, and an index for per-patient timelines.

The first schema recorded reviews but not who looked at or exported a
record; ``audit_event`` adds that (patient by DB id only, never identifier).
Timelines list a patient's visits by time, hence ix_visit_patient_time.

Revision ID: 0002_audit_trail
Revises: 0001_initial_schema
Create Date: 2025-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_audit_trail"
down_revision: str | Sequence[str] | None = "0001_initial_schema"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
            name=op.f("fk_audit_event_patient_id_patient"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index("ix_audit_event_patient_time", "audit_event", ["patient_id", "occurred_at"])
    op.create_index("ix_visit_patient_time", "visit", ["patient_id", "visit_time"])

    # Reviews saved before the audit trail existed get a synthetic event each,
    # so "who saved this visit" has an answer for old records too. Lightweight
    # table objects (not the ORM models) keep this revision frozen in time.
    visit = sa.table(
        "visit",
        sa.column("id", sa.Integer()),
        sa.column("patient_id", sa.Integer()),
        sa.column("clinician", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    audit_event = sa.table(
        "audit_event",
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("patient_id", sa.Integer()),
        sa.column("detail", sa.JSON()),
    )
    rows = op.get_bind().execute(sa.select(visit).order_by(visit.c.id)).all()
    if rows:
        op.bulk_insert(
            audit_event,
            [
                {
                    "occurred_at": row.created_at,
                    "actor": row.clinician,
                    "action": "review.save",
                    "patient_id": row.patient_id,
                    "detail": {"visit_id": row.id, "backfilled": True},
                }
                for row in rows
            ],
        )


def downgrade() -> None:
    op.drop_index("ix_visit_patient_time", table_name="visit")
    op.drop_index("ix_audit_event_patient_time", table_name="audit_event")
    op.drop_table("audit_event")
