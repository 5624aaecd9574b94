"""The image-source caveat a review showed beside a score, kept with the score.

- ``prediction.source_caveat``: the review's warning that this image's source (camera, resolution) differs
  from the patient's other images, so its ugly-duckling comparison may reflect the camera; '' when none was
  shown, and on every existing row (the caveat was not stored before).

Revision ID: 0007_prediction_source_caveat
Revises: 0006_follow_up_outcomes
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_prediction_source_caveat"
down_revision: str | Sequence[str] | None = "0006_follow_up_outcomes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ADD COLUMN in place on both engines: nothing to copy (SQLite accepts a NOT NULL column with a default).
    op.add_column("prediction", sa.Column("source_caveat", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("prediction", "source_caveat")
