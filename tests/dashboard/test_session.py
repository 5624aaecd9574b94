"""dashboard.session: the one accessor for this browser session's signed-in session."""

from __future__ import annotations

from types import SimpleNamespace

from dashboard import session


def test_current_session_is_none_without_a_session(monkeypatch):
    monkeypatch.delitem(session.st.session_state, session.SESSION_KEY, raising=False)
    assert session.current_session() is None
    assert session.signed_in() is None


def test_current_session_ignores_something_else_under_the_key(monkeypatch):
    monkeypatch.setitem(session.st.session_state, session.SESSION_KEY, "not a session")
    assert session.current_session() is None
    assert session.signed_in() is None


def test_current_session_is_the_signed_in_session(monkeypatch):
    user = SimpleNamespace(username="dr.a")
    signed = session.SignedIn(user, 0.0, via="sso")
    monkeypatch.setitem(session.st.session_state, session.SESSION_KEY, signed)
    assert session.current_session() is signed
    assert session.signed_in() is user
