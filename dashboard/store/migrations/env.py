"""Alembic environment: always driven from dashboard.store.migrate with a live connection."""

from alembic import context

from dashboard.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations through dashboard.store.migrate (python -m dashboard.store.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite can only alter tables by copying them; batch mode does that.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
