"""A monitor decision's repeat-imaging interval, for the worklist of lesions due.

- ``decision.review_in_months``: months from the decision's visit to the repeat imaging (1-24), only on a
  ``monitor`` decision (checked); NULL on every existing row (no interval was recorded before).

Revision ID: 0009_decision_review_interval
Revises: 0008_patient_identifier_key
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_decision_review_interval"
down_revision: str | Sequence[str] | None = "0008_patient_identifier_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVIEW_MONTHS_MAX = 24  # frozen copy: migrations do not follow later edits of models.py


def upgrade() -> None:
    # ADD COLUMN in place on both engines, its CHECK inline (SQLite cannot add a table constraint in place;
    # a decision refers to the decision it amends, so copying the table is not an option either).
    op.add_column(
        "decision",
        sa.Column(
            "review_in_months",
            sa.Integer(),
            sa.CheckConstraint(
                "review_in_months IS NULL OR "
                f"(review_in_months BETWEEN 1 AND {REVIEW_MONTHS_MAX} AND action = 'monitor')",
                name=op.f("ck_decision_review_in_months"),
            ),
            nullable=True,
        ),
    )


def downgrade() -> None:
    op.drop_column("decision", "review_in_months")
