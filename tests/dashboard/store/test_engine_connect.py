"""PostgreSQL connections give up after a bounded wait instead of the operating system's minutes."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from dashboard.store.engine import POSTGRES_CONNECT_TIMEOUT_S, make_engine


class _Stop(Exception):
    pass


def _connect_params(url: str, **kwargs) -> dict:
    """What the engine would hand the driver to connect (nothing is contacted)."""
    engine = make_engine(url, **kwargs)
    seen: dict = {}

    @event.listens_for(engine, "do_connect")
    def _capture(_dialect, _record, _cargs, cparams):
        seen.update(cparams)
        raise _Stop

    with pytest.raises(_Stop):
        engine.connect()
    engine.dispose()
    return seen


def test_postgresql_connections_have_a_connect_timeout():
    assert POSTGRES_CONNECT_TIMEOUT_S == 10
    params = _connect_params("postgresql+psycopg://triage:pw@db.clinic.invalid:5432/triage")
    assert params["connect_timeout"] == POSTGRES_CONNECT_TIMEOUT_S


def test_a_timeout_in_the_url_or_the_caller_wins():
    assert _connect_params("postgresql+psycopg://u:p@db.invalid/t?connect_timeout=3")["connect_timeout"] == "3"
    given = _connect_params("postgresql+psycopg://u:p@db.invalid/t", connect_args={"connect_timeout": 2})
    assert given["connect_timeout"] == 2
