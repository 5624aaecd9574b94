"""Initial schema: patients, visits, lesions, images, predictions, decisions.

Revision ID: 0001_initial_schema
Revises:
Create Date: 2025-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial_schema"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the vocabularies as of this revision: a migration must not
# change meaning when models.py evolves.
SEXES = "('male', 'female', 'unknown')"
SITES = "('torso', 'lower extremity', 'upper extremity', 'head/neck', 'palms/soles', 'oral/genital', 'unknown')"
ACTIONS = "('biopsy', 'excise', 'monitor', 'reassure', 'refer')"


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "patient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(64), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("sex", sa.String(16), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint(f"sex IN {SEXES}", name=op.f("ck_patient_sex")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient")),
        sa.UniqueConstraint("identifier", name=op.f("uq_patient_identifier")),
    )
    op.create_table(
        "visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        _ts("visit_time"),
        sa.Column("clinician", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_visit_patient_id_patient"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit")),
    )
    op.create_table(
        "lesion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(32), nullable=False),
        sa.Column("label", sa.String(120), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint(f"site IN {SITES}", name=op.f("ck_lesion_site")),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_lesion_patient_id_patient"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lesion")),
    )
    op.create_index(op.f("ix_lesion_patient_id"), "lesion", ["patient_id"])
    op.create_table(
        "lesion_image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lesion_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("relpath", sa.String(200), nullable=False),
        sa.Column("image_format", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("original_filename", sa.String(255), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["lesion_id"], ["lesion.id"], name=op.f("fk_lesion_image_lesion_id_lesion"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visit.id"], name=op.f("fk_lesion_image_visit_id_visit"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lesion_image")),
    )
    op.create_index(op.f("ix_lesion_image_lesion_id"), "lesion_image", ["lesion_id"])
    op.create_index(op.f("ix_lesion_image_visit_id"), "lesion_image", ["visit_id"])
    op.create_index(op.f("ix_lesion_image_sha256"), "lesion_image", ["sha256"])
    op.create_table(
        "prediction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("model_checksum", sa.String(128), nullable=False),
        sa.Column("p_melanoma", sa.Float(), nullable=False),
        sa.Column("ugly_duckling", sa.Float(), nullable=True),
        sa.Column("triage_score", sa.Float(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("p_melanoma >= 0 AND p_melanoma <= 1", name=op.f("ck_prediction_p_melanoma_range")),
        sa.CheckConstraint("rank >= 1", name=op.f("ck_prediction_rank_positive")),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["lesion_image.id"],
            name=op.f("fk_prediction_image_id_lesion_image"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction")),
    )
    op.create_index(op.f("ix_prediction_image_id"), "prediction", ["image_id"])
    op.create_table(
        "decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lesion_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("clinician", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        _ts("decided_at"),
        sa.CheckConstraint(f"action IN {ACTIONS}", name=op.f("ck_decision_action")),
        sa.ForeignKeyConstraint(
            ["lesion_id"], ["lesion.id"], name=op.f("fk_decision_lesion_id_lesion"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visit.id"], name=op.f("fk_decision_visit_id_visit"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision")),
    )
    op.create_index(op.f("ix_decision_lesion_id"), "decision", ["lesion_id"])
    op.create_index(op.f("ix_decision_visit_id"), "decision", ["visit_id"])


def downgrade() -> None:
    for table in ("decision", "prediction", "lesion_image", "lesion", "visit", "patient"):
        op.drop_table(table)
