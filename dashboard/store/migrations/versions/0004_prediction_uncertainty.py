"""Prediction uncertainty: the TTA spread, the number of TTA views and the ugly-duckling flag.

A saved visit shows a score with its ± spread (across the model's fixed test-time augmentation views)
and the "ugly duckling" flag, as the live review did; exports carry them. Nullable: rows saved before
this revision have none of them, and are shown as "no uncertainty recorded".

Revision ID: 0004_prediction_uncertainty
Revises: 0003_access_control
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_prediction_uncertainty"
down_revision: str | Sequence[str] | None = "0003_access_control"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("prediction") as batch:
        batch.add_column(sa.Column("p_spread", sa.Float(), nullable=True))
        batch.add_column(sa.Column("tta_views", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("outlier", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prediction") as batch:
        batch.drop_column("outlier")
        batch.drop_column("tta_views")
        batch.drop_column("p_spread")
