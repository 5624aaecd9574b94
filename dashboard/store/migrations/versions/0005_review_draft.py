"""Review drafts: a user's unsaved review, kept on the server so that a page reload does not lose it.

Revision ID: 0005_review_draft
Revises: 0004_prediction_uncertainty
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_review_draft"
down_revision: str | Sequence[str] | None = "0004_prediction_uncertainty"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_draft")),
        sa.UniqueConstraint("owner", name=op.f("uq_review_draft_owner")),
    )
    op.create_table(
        "review_draft_image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=False),
        sa.Column("upload_sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["review_draft.id"],
            name=op.f("fk_review_draft_image_draft_id_review_draft"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_draft_image")),
    )
    op.create_index("ix_review_draft_image_draft_sha", "review_draft_image", ["draft_id", "upload_sha256"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_review_draft_image_draft_sha", table_name="review_draft_image")
    op.drop_table("review_draft_image")
    op.drop_table("review_draft")
