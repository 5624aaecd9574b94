"""Follow-up and outcomes: body-map region, the date images were taken, image kind, decision amendments,
histology results.

- ``lesion.body_region``: a finer body-map region (data.body_sites key) that maps onto the lesion's site.
- ``visit.taken_on``: the day the images were taken, for images entered later than they were taken.
- ``lesion_image.kind``: 'dermoscopic' (scored; every existing row) or 'overview' (a locating photo).
- ``decision.amends_id`` / ``amend_reason``: an amendment after saving is a new decision row that
  replaces an earlier one, which is kept.
- ``histology``: per lesion, append-only (the latest row is the result), who recorded it and when.

Revision ID: 0006_follow_up_outcomes
Revises: 0005_review_draft
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_follow_up_outcomes"
down_revision: str | Sequence[str] | None = "0005_review_draft"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HISTOLOGY_RESULTS = ("melanoma", "other_malignant", "benign", "not_done")  # frozen copy: migrations do not
IMAGE_KINDS = ("dermoscopic", "overview")  # follow later edits of models.py


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


# SQLite alters a table by copying it (batch mode), which its foreign-key check refuses for a table that
# others refer to (lesion, visit, lesion_image); so on SQLite the columns of those tables are added and
# dropped in place (ALTER TABLE … ADD/DROP COLUMN, SQLite ≥ 3.35), with the CHECK on the column itself.


def upgrade() -> None:
    op.add_column("lesion", sa.Column("body_region", sa.String(48), nullable=True))
    op.add_column("visit", sa.Column("taken_on", sa.Date(), nullable=True))
    kinds = f"kind IN {_in(IMAGE_KINDS)}"
    if _sqlite():
        op.execute(
            "ALTER TABLE lesion_image ADD COLUMN kind VARCHAR(16) DEFAULT 'dermoscopic' NOT NULL "
            f"CONSTRAINT ck_lesion_image_kind CHECK ({kinds})"
        )
    else:
        op.add_column("lesion_image", sa.Column("kind", sa.String(16), nullable=False, server_default="dermoscopic"))
        op.create_check_constraint(op.f("ck_lesion_image_kind"), "lesion_image", kinds)
    with op.batch_alter_table("decision") as batch:  # nothing refers to decision: copying it is safe
        batch.add_column(sa.Column("amends_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("amend_reason", sa.Text(), nullable=False, server_default=""))
        batch.create_foreign_key(
            op.f("fk_decision_amends_id_decision"), "decision", ["amends_id"], ["id"], ondelete="RESTRICT"
        )
        batch.create_unique_constraint(op.f("uq_decision_amends_id"), ["amends_id"])
    op.create_table(
        "histology",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lesion_id", sa.Integer(), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("reported_on", sa.Date(), nullable=True),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint(f"result IN {_in(HISTOLOGY_RESULTS)}", name=op.f("ck_histology_result")),
        sa.ForeignKeyConstraint(
            ["lesion_id"], ["lesion.id"], name=op.f("fk_histology_lesion_id_lesion"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_histology")),
    )
    op.create_index("ix_histology_lesion", "histology", ["lesion_id", "id"])


def _drop_column(table: str, column: str) -> None:
    if _sqlite():
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)  # PostgreSQL drops the column's constraints with it


def downgrade() -> None:
    op.drop_index("ix_histology_lesion", table_name="histology")
    op.drop_table("histology")
    # The amendments stay, as plain decisions; their link goes first so that SQLite can copy the table.
    op.execute("UPDATE decision SET amends_id = NULL")
    with op.batch_alter_table("decision") as batch:
        batch.drop_constraint(op.f("uq_decision_amends_id"), type_="unique")
        batch.drop_constraint(op.f("fk_decision_amends_id_decision"), type_="foreignkey")
        batch.drop_column("amend_reason")
        batch.drop_column("amends_id")
    _drop_column("lesion_image", "kind")
    _drop_column("visit", "taken_on")
    _drop_column("lesion", "body_region")
