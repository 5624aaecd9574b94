"""Sign-in under contention (SQLite and PostgreSQL): the argon2 password check runs with no transaction open, so a
stream of failed sign-ins cannot hold SQLite's write lock against saves and audit writes, while the per-username
failure budget stays exact for parallel attempts and a right password is not counted as a failure."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select

from dashboard import passwords
from dashboard.accounts import Accounts
from dashboard.auth import LoginFailed
from dashboard.store.models import AppUser

PASSWORD = "correct horse battery staple"
WAIT_S = 10  # generous upper bound for things that take milliseconds


class _BlockingVerify:
    """Stands in for ``passwords.verify_password``: says when a check has started, then waits to be released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.real = passwords.verify_password

    def __call__(self, password_hash: str, password: object) -> bool:
        self.entered.set()
        assert self.release.wait(30), "the test never released the password check"
        return self.real(password_hash, password)


def _in_thread(fn, *args) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = fn(*args)
        except BaseException as exc:  # handed to the test's thread
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


@pytest.mark.parametrize(
    ("username", "password", "signs_in"),
    [("x-made-up-7f3a", "wrong-password-123", False), ("dr.ada", PASSWORD, True)],
    ids=["unknown-name", "right-password"],
)
def test_a_password_check_in_progress_does_not_hold_the_write_lock(store, monkeypatch, username, password, signs_in):
    """The auditor's reproduction: while one sign-in's argon2 check runs, an audit write must not wait for it (on
    SQLite the old code held BEGIN IMMEDIATE across the check: the write waited, or failed after the 30 s busy
    timeout under a stream of attempts)."""
    accounts = Accounts(store)
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    blocking = _BlockingVerify()
    monkeypatch.setattr(passwords, "verify_password", blocking)
    signing_in, outcome = _in_thread(accounts.authenticate, username, password)
    try:
        assert blocking.entered.wait(WAIT_S), "the sign-in never reached its password check"
        started = time.monotonic()
        writer, written = _in_thread(store.record_event, "dr.bea", "patient.search", None, {"results": 0})
        writer.join(WAIT_S / 2)
        assert not writer.is_alive(), "an audit write waited for another session's password check"
        assert "error" not in written, written.get("error")
        assert time.monotonic() - started < WAIT_S / 2
    finally:
        blocking.release.set()
        signing_in.join(WAIT_S)
    assert not signing_in.is_alive()
    if signs_in:
        assert outcome["value"].username == "dr.ada"
    else:
        assert isinstance(outcome.get("error"), LoginFailed)
    actions = [(e.actor, e.action) for e in store.audit_events()]
    expected = ("dr.ada", "auth.login") if signs_in else (username, "auth.login_failed")
    assert expected in actions and ("dr.bea", "patient.search") in actions


def test_parallel_wrong_passwords_for_one_name_stop_at_the_budget(store):
    """With the check outside the transaction, each attempt is recorded before its check: parallel attempts see
    those before them, so no more than the budget are checked and every attempt is audited once."""
    accounts = Accounts(store, max_failures=3, failure_window=timedelta(minutes=15))
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    start = threading.Barrier(10)

    def guess(i: int) -> str:
        start.wait()
        try:
            accounts.authenticate("DR.ADA" if i % 2 else "dr.ada", f"wrong guess {i:04d}")
        except LoginFailed as exc:
            return "locked" if "Too many" in str(exc) else "wrong"
        return "signed in"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = sorted(pool.map(guess, range(10)))
    assert outcomes == ["locked"] * 7 + ["wrong"] * 3
    actions = sorted(e.action for e in store.audit_events(action="auth."))
    assert actions == ["auth.login_failed"] * 3 + ["auth.login_locked"] * 7
    with pytest.raises(LoginFailed, match="Too many"):  # the right password too, until the window has passed
        accounts.authenticate("dr.ada", PASSWORD)


def test_a_right_password_is_not_counted_as_a_failure(store):
    """An attempt is recorded as a failure before its check; a right password turns that row into the sign-in."""
    accounts = Accounts(store, max_failures=2, failure_window=timedelta(minutes=15))
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    for _ in range(4):
        accounts.authenticate("dr.ada", PASSWORD)
    with pytest.raises(LoginFailed, match="Wrong username or password"):
        accounts.authenticate("dr.ada", "wrong password!!")
    assert accounts.authenticate("dr.ada", PASSWORD).username == "dr.ada"
    events = [(e.actor, e.action, e.detail) for e in store.audit_events(action="auth.")]
    assert events == [("dr.ada", "auth.login", {"via": "password"})] * 4 + [
        ("dr.ada", "auth.login_failed", {"via": "password", "reason": "bad credentials"}),
        ("dr.ada", "auth.login", {"via": "password"}),
    ]
    with store.read_session() as session:
        assert session.scalars(select(AppUser)).one().last_login_at is not None


def test_a_disabled_account_with_the_right_password_is_refused_with_the_same_message(store):
    accounts = Accounts(store)
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    accounts.set_active("dr.ada", False, actor="admin")
    with pytest.raises(LoginFailed, match="Wrong username or password, or the account is disabled"):
        accounts.authenticate("dr.ada", PASSWORD)
    (event,) = store.audit_events(action="auth.")
    assert (event.actor, event.action, event.detail) == (
        "dr.ada",
        "auth.login_failed",
        {"via": "password", "reason": "disabled"},
    )


@pytest.mark.parametrize("change", ["disable", "reset"])
def test_an_account_changed_during_the_password_check_does_not_sign_in(store, monkeypatch, change):
    """The check runs outside the transaction: an administrator disabling the account or resetting its password
    meanwhile wins, as it did when the check held the lock."""
    accounts = Accounts(store)
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    blocking = _BlockingVerify()
    monkeypatch.setattr(passwords, "verify_password", blocking)
    signing_in, outcome = _in_thread(accounts.authenticate, "dr.ada", PASSWORD)
    try:
        assert blocking.entered.wait(WAIT_S)
        if change == "disable":
            accounts.set_active("dr.ada", False, actor="admin")
        else:
            accounts.reset_password("dr.ada", "another long passphrase", actor="admin")
    finally:
        blocking.release.set()
        signing_in.join(WAIT_S)
    assert isinstance(outcome.get("error"), LoginFailed)
    assert [e.action for e in store.audit_events(action="auth.")] == ["auth.login_failed"]


def test_a_password_change_checks_the_current_password_outside_the_transaction(store, monkeypatch):
    accounts = Accounts(store, max_failures=3, failure_window=timedelta(minutes=15))
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    session = accounts.authenticate("dr.ada", PASSWORD)
    blocking = _BlockingVerify()
    monkeypatch.setattr(passwords, "verify_password", blocking)
    changing, outcome = _in_thread(accounts.change_own_password, session, PASSWORD, "a brand new passphrase")
    try:
        assert blocking.entered.wait(WAIT_S)
        writer, written = _in_thread(store.record_event, "dr.bea", "patient.search", None, None)
        writer.join(WAIT_S / 2)
        assert not writer.is_alive(), "an audit write waited for a password change's check"
        assert "error" not in written, written.get("error")
    finally:
        blocking.release.set()
        changing.join(WAIT_S)
    assert "error" not in outcome, outcome.get("error")
    # A right current password is no failed sign-in: the budget is untouched.
    assert [e.action for e in store.audit_events(action="auth.")] == ["auth.login"]
    assert accounts.authenticate("dr.ada", "a brand new passphrase").username == "dr.ada"


def test_no_more_than_a_few_argon2_checks_run_at_once(store, monkeypatch):
    """A flood of sign-ins (each a session thread) queues for argon2 (64 MiB each) instead of running them all."""
    accounts = Accounts(store)
    real = passwords._HASHER
    lock = threading.Lock()
    running = {"now": 0, "peak": 0}

    class CountingHasher:
        def verify(self, password_hash: str, password: str) -> bool:
            with lock:
                running["now"] += 1
                running["peak"] = max(running["peak"], running["now"])
            try:
                time.sleep(0.2)
                return real.verify(password_hash, password)
            finally:
                with lock:
                    running["now"] -= 1

        def __getattr__(self, name: str):
            return getattr(real, name)

    monkeypatch.setattr(passwords, "_HASHER", CountingHasher())
    start = threading.Barrier(12)

    def attempt(i: int) -> None:
        start.wait()
        with pytest.raises(LoginFailed):
            accounts.authenticate(f"made-up-{i}", "wrong-password-123")

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(attempt, range(12)))
    assert 1 <= running["peak"] <= passwords.MAX_CONCURRENT_HASHES
    assert len(store.audit_events(action="auth.login_failed")) == 12


def test_sign_ins_and_password_checks_only_append_to_the_audit_trail(store, monkeypatch):
    """Every attempt is one row, written after its check; no row is written before and changed or deleted
    afterwards (the trail's rows are the record of what happened, in the order it happened)."""
    from dashboard.store.models import AuditEvent

    accounts = Accounts(store)
    accounts.add("dr.ada", PASSWORD, "clinician", "", actor="test")

    def rows() -> list[tuple]:
        with store.write_transaction() as session:
            return [
                (e.id, e.actor, e.action, dict(e.detail))
                for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
            ]

    def checked(fn, *args):
        """Run ``fn`` with its password check held; the trail must not change while it is."""
        blocking = _BlockingVerify()
        monkeypatch.setattr(passwords, "verify_password", blocking)
        before = rows()
        thread, result = _in_thread(fn, *args)
        assert blocking.entered.wait(WAIT_S)
        assert rows() == before  # nothing written before the check's result is known
        blocking.release.set()
        thread.join(WAIT_S)
        monkeypatch.setattr(passwords, "verify_password", blocking.real)
        after = rows()
        assert after[: len(before)] == before  # nothing earlier changed or deleted
        return result, [
            (actor, action, detail.get("via"), detail.get("reason"))
            for _, actor, action, detail in after[len(before) :]
        ]

    result, added = checked(accounts.authenticate, "dr.ada", "wrong-password-123")
    assert isinstance(result["error"], LoginFailed)
    assert added == [("dr.ada", "auth.login_failed", "password", "bad credentials")]
    result, added = checked(accounts.authenticate, "dr.ada", PASSWORD)
    assert added == [("dr.ada", "auth.login", "password", None)]
    signed_in = result["value"]
    result, added = checked(accounts.change_own_password, signed_in, PASSWORD, "another long passphrase 42")
    assert added == [("dr.ada", "user.change_password", None, None)]  # a right current password: no failure row
