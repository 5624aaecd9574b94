"""The idle sign-out applies to the store too (SQLite and PostgreSQL): widget callbacks and deferred downloads run
before the page script (or without it), so a store bound to a session idle past the limit refuses every call with
the page's sign-out message, and follows the session's activity as the pages record it."""

from __future__ import annotations

import dataclasses
import time

import pytest

from dashboard import auth_ui, session
from dashboard.accounts import Accounts
from dashboard.auth import AccessDenied, idle_limit_s
from dashboard.user_store import UserStore

PASSWORD = "correct horse battery staple"


def _signed_in(store) -> Accounts:
    accounts = Accounts(store)
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    return accounts


def test_a_store_idle_past_the_limit_refuses_reads_and_writes(store):
    from dashboard.auth import IdleClock, idle_sign_out_message

    accounts = _signed_in(store)
    clock = IdleClock(time.time())
    as_ada = UserStore(store, dataclasses.replace(accounts.authenticate("dr.ada", PASSWORD), idle=clock))
    # Within the limit: reads and writes work, and the account check keeps the session's clock.
    clock.last_active = time.time() - idle_limit_s() + 30
    assert as_ada.search_patients("IP_") == []
    as_ada.record_view("patient.search", None, {"results": 0})
    assert as_ada.delete_draft() is False
    assert as_ada.user.idle is clock
    # Past it: every call is refused with the page's sign-out message, and nothing is written.
    clock.last_active = time.time() - idle_limit_s() - 1
    events = len(store.audit_events())
    for call in (
        lambda: as_ada.search_patients("IP_"),
        lambda: as_ada.record_view("patient.search", None, {"results": 0}),
        as_ada.delete_draft,
    ):
        with pytest.raises(AccessDenied, match=idle_sign_out_message()):
            call()
    assert len(store.audit_events()) == events
    assert "minutes without activity" in idle_sign_out_message()


def test_a_store_without_a_session_clock_has_no_idle_limit(store):
    """The users CLI and scripts use the store with no browser session: nothing to time out."""
    accounts = _signed_in(store)
    as_ada = UserStore(store, accounts.authenticate("dr.ada", PASSWORD))
    assert as_ada.user.idle is None
    assert as_ada.search_patients("IP_") == []


def test_a_store_made_earlier_follows_the_sessions_activity(store):
    """A callback's store was made during an earlier run: it sees the session's clock as the pages keep it (only
    runs the user causes renew it, in auth_ui.current_user), not a copy from when it was made."""
    accounts = _signed_in(store)
    signed = session.SignedIn(accounts.authenticate("dr.ada", PASSWORD), time.time())
    held_by_a_callback = UserStore(store, signed.user)
    signed.last_active -= idle_limit_s() + 60  # what test_access_pages does for "16 minutes without a click"
    with pytest.raises(AccessDenied, match="minutes without activity"):
        held_by_a_callback.delete_draft()
    signed.last_active = time.time()  # a run the user caused
    assert held_by_a_callback.delete_draft() is False
    # A renewed user (password change, the page's account check) keeps the session's clock.
    signed.user = accounts.current(signed.user)
    assert signed.user.idle is signed.idle
    signed.last_active -= idle_limit_s() + 60
    with pytest.raises(AccessDenied, match="minutes without activity"):
        UserStore(store, signed.user).search_patients("IP_")


def test_the_pages_idle_check_and_the_stores_agree(store, monkeypatch):
    """auth_ui's idle check and the store's are one clock and one limit."""
    accounts = _signed_in(store)
    signed = session.SignedIn(accounts.authenticate("dr.ada", PASSWORD), time.time())
    monkeypatch.setitem(auth_ui.st.session_state, session.SESSION_KEY, signed)
    as_ada = UserStore(store, session.signed_in())
    assert not auth_ui.idle_expired()
    assert as_ada.search_patients("IP_") == []
    signed.last_active -= idle_limit_s() + 1
    assert auth_ui.idle_expired()
    with pytest.raises(AccessDenied, match="minutes without activity"):
        as_ada.search_patients("IP_")
