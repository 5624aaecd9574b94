"""A patient search that folds case beyond ASCII.

- ``patient.identifier_key``: the identifier case-folded in Python (models.identifier_search_key), which the
  search compares; SQLite's lower() folds ASCII letters only, so "Ørsted" was not found by "ØRSTED" nor,
  in lower case, by itself. Existing rows are filled here.

Revision ID: 0008_patient_identifier_key
Revises: 0007_prediction_source_caveat
Create Date: 2026-12-07
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_patient_identifier_key"
down_revision: str | Sequence[str] | None = "0007_prediction_source_caveat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IDENTIFIER_KEY_MAX = 3 * 64  # frozen copy: migrations do not follow later edits of models.py


def _search_key(text: str) -> str:  # frozen copy of models.identifier_search_key
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def upgrade() -> None:
    # In place on both engines (other tables refer to patient, so SQLite cannot copy it); the server default
    # only fills the column until the rows below get their keys.
    op.add_column(
        "patient",
        sa.Column("identifier_key", sa.String(IDENTIFIER_KEY_MAX), nullable=False, server_default=""),
    )
    bind = op.get_bind()
    patient = sa.table("patient", sa.column("id", sa.Integer), sa.column("identifier", sa.String))
    key = sa.table("patient", sa.column("id", sa.Integer), sa.column("identifier_key", sa.String))
    for patient_id, identifier in bind.execute(sa.select(patient.c.id, patient.c.identifier)).all():
        bind.execute(key.update().where(key.c.id == patient_id).values(identifier_key=_search_key(identifier)))
    if bind.dialect.name != "sqlite":
        op.alter_column("patient", "identifier_key", server_default=None)


def downgrade() -> None:
    op.drop_column("patient", "identifier_key")
