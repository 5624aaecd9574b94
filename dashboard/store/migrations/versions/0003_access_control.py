"""Access control: local user accounts, audit lookups by user, and the uploaded image's hash.

``app_user`` holds the dashboard's local accounts (argon2id password hashes, a role, an active flag;
never deleted, so the audit trail can always name who did what). ``ix_audit_event_actor_time`` serves
the admin's audit filter and the failed-login rate limit. ``lesion_image.source_sha256`` remembers the
hash of the bytes as uploaded, since the stored file now has its personal metadata stripped.

Revision ID: 0003_access_control
Revises: 0002_audit_trail
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_access_control"
down_revision: str | Sequence[str] | None = "0002_audit_trail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('viewer', 'clinician', 'admin')", name=op.f("ck_app_user_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("username", name=op.f("uq_app_user_username")),
    )
    op.create_index("ix_audit_event_actor_time", "audit_event", ["actor", "occurred_at"])
    with op.batch_alter_table("lesion_image") as batch:
        batch.add_column(sa.Column("source_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lesion_image") as batch:
        batch.drop_column("source_sha256")
    op.drop_index("ix_audit_event_actor_time", table_name="audit_event")
    op.drop_table("app_user")
