"""The Audit page's reads of the whole trail (the store's largest table: a row per page that shows patient
data) use an index instead of scanning and sorting every event (migration 0010)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.dialects import sqlite

from dashboard.store.models import AuditEvent


def _plan(store, stmt) -> str:
    compiled = stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    with store.engine.connect() as conn:
        return " | ".join(row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))


def test_a_date_range_and_an_action_are_read_through_an_index(sqlite_store):
    since = datetime(2026, 1, 1, tzinfo=UTC)
    newest = (
        select(AuditEvent)
        .where(AuditEvent.occurred_at >= since, AuditEvent.occurred_at < since + timedelta(days=30))
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(5000)
    )
    plan = _plan(sqlite_store, newest)
    assert "ix_audit_event_time" in plan and "TEMP B-TREE" not in plan, plan
    one_action = select(AuditEvent).where(AuditEvent.action == "auth.login").order_by(AuditEvent.occurred_at)
    assert "ix_audit_event_action_time" in _plan(sqlite_store, one_action)
