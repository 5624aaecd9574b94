"""Local accounts and role checks on the store (SQLite and PostgreSQL): argon2 hashes, no default account,
rate-limited and audited sign-in, disabled accounts, every patient-data call checked and attributed."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlalchemy import select, update

from dashboard.accounts import Accounts
from dashboard.auth import AccessDenied, LoginFailed
from dashboard.store import CaseStore
from dashboard.store.models import AppUser, AuditEvent
from dashboard.user_store import UserStore

PASSWORD = "correct horse battery staple"


def test_fresh_store_has_no_account(store):
    accounts = Accounts(store)
    assert not accounts.has_users()
    with pytest.raises(LoginFailed):
        accounts.authenticate("admin", "admin")


def test_password_is_hashed_with_argon2_and_checked(store):
    accounts = Accounts(store)
    user = accounts.add("Dr.Ada", PASSWORD, "clinician", "Dr Ada", actor="test")
    assert (user.username, user.role, user.display_name) == ("dr.ada", "clinician", "Dr Ada")
    with store.read_session() as session:
        stored = session.get(AppUser, user.id).password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert accounts.authenticate("dr.ada", PASSWORD) == user
    assert accounts.authenticate(" DR.ADA ", PASSWORD) == user  # usernames are case-insensitive
    with pytest.raises(LoginFailed, match="Wrong username or password"):
        accounts.authenticate("dr.ada", PASSWORD.upper())
    with pytest.raises(ValueError, match="at least 12"):
        accounts.add("short", "tiny", "viewer", actor="test")
    with pytest.raises(ValueError, match="already exists"):
        accounts.add("dr.ada", PASSWORD, "viewer", actor="test")
    with pytest.raises(ValueError, match="unknown role"):
        accounts.add("dr.bea", PASSWORD, "superuser", actor="test")
    events = [(e.actor, e.action) for e in store.audit_events()]
    assert events == [
        ("test", "user.add"),
        ("dr.ada", "auth.login"),
        ("dr.ada", "auth.login"),
        ("dr.ada", "auth.login_failed"),
    ]


def test_failed_logins_are_audited_and_rate_limited(store):
    accounts = Accounts(store, max_failures=3, failure_window=timedelta(minutes=15))
    accounts.add("dr.ada", PASSWORD, "clinician", actor="test")
    for _ in range(3):
        with pytest.raises(LoginFailed):
            accounts.authenticate("dr.ada", "wrong password!!")
    # Locked: even the right password is refused until the window has passed, and that is audited too.
    with pytest.raises(LoginFailed, match="Too many failed sign-ins"):
        accounts.authenticate("dr.ada", PASSWORD)
    with pytest.raises(LoginFailed, match="Too many"):  # another spelling of the name shares the budget
        accounts.authenticate("  DR.Ada ", PASSWORD)
    # Unknown names are limited the same way (no hint whether an account exists).
    for _ in range(3):
        with pytest.raises(LoginFailed, match="Wrong username or password"):
            accounts.authenticate("nobody", "whatever password")
    with pytest.raises(LoginFailed, match="Too many"):
        accounts.authenticate("nobody", "whatever password")
    actions = [(e.actor, e.action) for e in store.audit_events(action="auth.")]
    assert actions == [("dr.ada", "auth.login_failed")] * 3 + [("dr.ada", "auth.login_locked")] * 2 + [
        ("nobody", "auth.login_failed")
    ] * 3 + [("nobody", "auth.login_locked")]
    # Once the window has passed the account works again.
    assert Accounts(store, max_failures=3, failure_window=timedelta(0)).authenticate("dr.ada", PASSWORD)


def _failures_made(store, ago: timedelta) -> None:
    """Back-date every recorded failed sign-in to ``ago`` before now."""
    with store.write_transaction() as session:
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.action == "auth.login_failed")
            .values(occurred_at=datetime.now(UTC) - ago)
        )


def test_only_failures_inside_the_lockout_window_count(store):
    window = timedelta(minutes=15)
    accounts = Accounts(store, max_failures=3, failure_window=window)
    accounts.add("dr.ada", PASSWORD, "clinician", actor="test")
    for _ in range(3):
        with pytest.raises(LoginFailed, match="Wrong username or password"):
            accounts.authenticate("dr.ada", "wrong password!!")
    _failures_made(store, window - timedelta(minutes=1))  # still inside the window: locked
    with pytest.raises(LoginFailed, match="Too many failed sign-ins"):
        accounts.authenticate("dr.ada", PASSWORD)
    _failures_made(store, window + timedelta(minutes=1))  # older than the window: they no longer count
    assert accounts.authenticate("dr.ada", PASSWORD).username == "dr.ada"


def test_disabled_account_cannot_sign_in_and_loses_its_session(store):
    accounts = Accounts(store)
    user = accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    assert accounts.current(user.id) == user
    accounts.set_active("dr.ada", False, actor="admin")
    assert accounts.current(user.id) is None
    with pytest.raises(LoginFailed):
        accounts.authenticate("dr.ada", PASSWORD)
    accounts.set_active("dr.ada", True, actor="admin")
    accounts.set_role("dr.ada", "viewer", actor="admin")
    assert accounts.current(user.id).role == "viewer"
    accounts.reset_password("dr.ada", "another long passphrase", actor="admin")
    assert accounts.authenticate("dr.ada", "another long passphrase").role == "viewer"
    assert [e.action for e in store.audit_events(action="user.")] == [
        "user.add",
        "user.disable",
        "user.enable",
        "user.role",
        "user.reset_password",
    ]


def test_roles_are_checked_on_every_patient_data_call(store, sample_images, make_lesion, make_review):
    accounts = Accounts(store)
    viewer = accounts.add("viewer1", PASSWORD, "viewer", actor="t")
    clinician = accounts.add("dr.ada", PASSWORD, "clinician", actor="t")
    admin = accounts.add("boss", PASSWORD, "admin", actor="t")
    review = make_review([make_lesion(sample_images[0], decision_action="biopsy")], clinician="typed in a box")

    with pytest.raises(AccessDenied):
        UserStore(store, viewer).save_review(review)
    visit_id = UserStore(store, clinician).save_review(review)
    visit = store.load_visit(visit_id)
    assert visit.clinician == "dr.ada"  # the signed-in user, not what a form said
    assert visit.lesions[0].decision.clinician == "dr.ada"

    as_viewer = UserStore(store, viewer)
    [patient] = as_viewer.search_patients("PSEUDO")
    assert as_viewer.patient_timeline(patient.id).visits[0].id == visit_id
    with pytest.raises(AccessDenied):
        as_viewer.export_patient_history(patient.id)
    with pytest.raises(AccessDenied):
        as_viewer.audit_events()
    assert "biopsy" in UserStore(store, clinician).export_patient_history(patient.id, "csv")
    with pytest.raises(AccessDenied):
        UserStore(store, clinician).audit_events()

    as_viewer.record_view("patient.view", patient.id, {"page": "test"})
    trail = UserStore(store, admin).audit_events(patient_id=patient.id)
    assert [(e.actor, e.action) for e in trail] == [
        ("dr.ada", "patient.create"),
        ("dr.ada", "review.save"),
        ("dr.ada", "decision.record"),
        ("dr.ada", "patient.export"),
        ("viewer1", "patient.view"),
    ]
    save, decision = trail[1], trail[2]
    assert save.detail["model_id"] == decision.detail["model_id"] == "effnet-lite0-v1"
    assert decision.detail["action"] == "biopsy" and decision.detail["lesion_id"] == visit.lesions[0].lesion_id
    assert [e.action for e in UserStore(store, admin).audit_events(actor="viewer1")] == ["patient.view"]


def test_users_cli(sqlite_url, subprocess_env, tmp_path, monkeypatch, capsys):
    """One command in a process of its own (the module runs, exit code, hashing as shipped); the rest through
    main(), as that process would call it, without importing the store and argon2 again each time (~2 s)."""
    from dashboard.users import main

    data_dir = str(tmp_path / "images")
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TRIAGE_DATA_DIR", data_dir)

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["dashboard.users", *args], code, out, err)

    assert "no accounts yet" in cli("list").stdout
    add_boss = ["add", "Boss", "--role", "admin", "--name", "The Boss", "--password-stdin"]
    made = subprocess.run(
        [sys.executable, "-m", "dashboard.users", *add_boss],
        env={**subprocess_env, "DATABASE_URL": sqlite_url, "TRIAGE_DATA_DIR": data_dir},
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert "created admin account 'boss'" in made.stdout
    with CaseStore.from_url(sqlite_url, data_dir) as store, store.read_session() as session:
        stored = session.scalar(select(AppUser.password_hash).where(AppUser.username == "boss"))
    assert extract_parameters(stored) == RFC_9106_LOW_MEMORY  # the CLI's own process hashes as shipped
    weak = cli("add", "x", "--role", "viewer", "--password-stdin", stdin="short\n")
    assert weak.returncode == 1 and "at least 12" in weak.stderr
    last = cli("disable", "boss")
    assert last.returncode == 1 and "last active administrator" in last.stderr
    deputy = cli("add", "deputy", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert deputy.returncode == 0, deputy.stderr
    assert cli("disable", "boss").returncode == 0
    listing = cli("list").stdout
    assert "boss" in listing and "DISABLED" in listing and "The Boss" in listing
    assert cli("enable", "boss").returncode == 0
    assert cli("reset-password", "boss", "--password-stdin", stdin="a new long passphrase\n").returncode == 0
    assert cli("set-role", "nobody", "--role", "viewer").returncode == 1


def test_the_users_cli_refuses_a_bad_lockout_setting_naming_it(sqlite_url, tmp_path, monkeypatch, capsys):
    from dashboard.users import main

    monkeypatch.setenv("TRIAGE_DATA_DIR", str(tmp_path / "images"))
    monkeypatch.setenv("TRIAGE_LOGIN_LOCK_MINUTES", "abc")
    assert main(["--database-url", sqlite_url, "list"]) == 1
    assert "error: TRIAGE_LOGIN_LOCK_MINUTES must be a number from 1 to 1440, not 'abc'" in capsys.readouterr().err


def test_passwords_are_hashed_with_the_rfc_9106_low_memory_parameters():
    """The other tests here hash with argon2id at its smallest cost (tests/dashboard/conftest.py); the module's
    own hasher made its dummy hash at import, with the parameters every stored password gets."""
    from dashboard import passwords

    assert extract_parameters(passwords._DUMMY_HASH) == RFC_9106_LOW_MEMORY  # argon2id, 64 MiB, 3 passes, 4 lanes


def test_single_sign_on_maps_to_an_active_local_account(store):
    accounts = Accounts(store)
    with pytest.raises(LoginFailed, match="no active local account"):
        accounts.sso_user("ada@clinic.example")
    user = accounts.add("ada@clinic.example", PASSWORD, "viewer", actor="t")
    assert accounts.sso_user("Ada@Clinic.example") == user  # the provider's e-mail, any case
    accounts.set_active("ada@clinic.example", False, actor="t")
    with pytest.raises(LoginFailed):
        accounts.sso_user("ada@clinic.example")
    assert [(e.action, e.detail.get("via")) for e in store.audit_events(action="auth.")] == [
        ("auth.login_failed", "sso"),
        ("auth.login", "sso"),
        ("auth.login_failed", "sso"),
    ]


def test_a_password_change_ends_the_accounts_sessions(store):
    accounts = Accounts(store)
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    laptop = accounts.authenticate("dr.ada", PASSWORD)
    phone = accounts.authenticate("dr.ada", PASSWORD)
    assert accounts.current(laptop) == laptop
    # The user's own change: this session goes on, renewed; every other session ends.
    renewed = accounts.change_own_password(laptop, PASSWORD, "a brand new passphrase")
    assert accounts.current(renewed) == renewed
    assert accounts.current(phone) is None
    # An administrator's reset (after a suspected compromise) ends them all.
    accounts.reset_password("dr.ada", "the administrator's passphrase", actor="admin")
    assert accounts.current(renewed) is None
    assert accounts.current(laptop.id) == laptop  # the account itself is fine: signing in again works
    assert accounts.current(accounts.authenticate("dr.ada", "the administrator's passphrase")) is not None


def test_the_role_checked_store_refuses_an_ended_session(store, sample_images, make_lesion, make_review):
    """Checked at the call, not only when a page starts: widget callbacks run before the page's checks, and a
    deferred download runs without the page."""
    accounts = Accounts(store)
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    as_ada = UserStore(store, accounts.authenticate("dr.ada", PASSWORD))
    visit_id = as_ada.save_review(make_review([make_lesion(sample_images[0])]))
    [patient] = as_ada.search_patients("PSEUDO")
    lesion_id = store.load_visit(visit_id).lesions[0].lesion_id

    accounts.set_role("dr.ada", "viewer", actor="admin")
    with pytest.raises(AccessDenied, match="viewer role"):
        as_ada.set_body_region(lesion_id, None)
    assert as_ada.patient_timeline(patient.id).visits  # a viewer still reads
    accounts.set_active("dr.ada", False, actor="admin")
    with pytest.raises(AccessDenied, match="session has ended"):
        as_ada.patient_timeline(patient.id)
    accounts.set_active("dr.ada", True, actor="admin")
    accounts.set_role("dr.ada", "clinician", actor="admin")
    accounts.reset_password("dr.ada", "the administrator's passphrase", actor="admin")
    with pytest.raises(AccessDenied, match="session has ended"):
        as_ada.export_patient_history(patient.id)
    assert [e.action for e in store.audit_events(patient_id=patient.id)] == [
        "patient.create",
        "review.save",
    ]


def test_the_current_password_check_of_a_change_counts_toward_the_lockout(store):
    accounts = Accounts(store, max_failures=3, failure_window=timedelta(minutes=15))
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    session = accounts.authenticate("dr.ada", PASSWORD)
    for _ in range(3):
        with pytest.raises(LoginFailed, match="current password is wrong"):
            accounts.change_own_password(session, "a wrong guess!!", "a brand new passphrase")
    with pytest.raises(LoginFailed, match="Too many"):  # the right one too, until the window has passed
        accounts.change_own_password(session, PASSWORD, "a brand new passphrase")
    with pytest.raises(LoginFailed, match="Too many"):
        accounts.authenticate("dr.ada", PASSWORD)
    assert accounts.current(session) == session  # nothing changed


def test_parallel_wrong_passwords_check_no_more_than_the_limit(store, monkeypatch):
    """Every browser tab signs in on its own thread: the count of failures and the password check must be one
    step per username, or parallel guesses each see the count below the limit."""
    from dashboard import passwords

    accounts = Accounts(store, max_failures=3, failure_window=timedelta(minutes=15))
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    checked = []

    def slow_verify(password_hash: str, password: object) -> bool:
        checked.append(password)
        time.sleep(0.05)  # about what argon2id with the shipped parameters takes
        return False

    monkeypatch.setattr(passwords, "verify_password", slow_verify)
    start = threading.Barrier(12)

    def guess(i: int) -> str:
        start.wait()
        try:
            accounts.authenticate("dr.ada", f"wrong guess {i:04d}")
        except LoginFailed as exc:
            return "locked" if "Too many" in str(exc) else "checked"
        return "signed in"

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = sorted(pool.map(guess, range(12)))
    assert len(checked) == 3
    assert outcomes == ["checked"] * 3 + ["locked"] * 9


def test_display_names_refuse_control_characters(store):
    with pytest.raises(ValueError, match="control characters"):
        Accounts(store).add("dr.red", PASSWORD, "viewer", "Dr \x1b[31mRed\x1b[0m", actor="admin")


def test_the_last_active_administrator_cannot_be_disabled_or_demoted(store):
    accounts = Accounts(store)
    accounts.add("boss", PASSWORD, "admin", actor="setup")
    with pytest.raises(ValueError, match="last active administrator"):
        accounts.set_active("boss", False, actor="boss")
    with pytest.raises(ValueError, match="last active administrator"):
        accounts.set_role("boss", "clinician", actor="boss")
    accounts.add("deputy", PASSWORD, "admin", actor="boss")
    accounts.set_role("boss", "clinician", actor="deputy")  # another admin remains: allowed
    with pytest.raises(ValueError, match="last active administrator"):
        accounts.set_active("deputy", False, actor="deputy")
    assert {(u.username, u.role, u.active) for u in accounts.list()} == {
        ("boss", "clinician", True),
        ("deputy", "admin", True),
    }


@pytest.mark.parametrize("password", ["aaaaaaaaaaaa", " " * 12, "abababababab", "1234123412341234"])
def test_repetitive_passwords_are_refused(store, password):
    with pytest.raises(ValueError, match="too repetitive"):
        Accounts(store).add("dr.ada", password, "viewer", actor="admin")


def test_two_administrators_adding_one_name_at_once_get_a_clear_message(store, monkeypatch):
    from dashboard import accounts as accounts_module

    accounts = Accounts(store)
    accounts.add("dr.ada", PASSWORD, "viewer", actor="admin")
    real_select = accounts_module.select
    # The other administrator's insert lands between this one's check and its insert: the check sees nothing.
    monkeypatch.setattr(
        accounts_module,
        "select",
        lambda *a: real_select(*a).where(AppUser.id < 0) if a == (AppUser.id,) else real_select(*a),
    )
    with pytest.raises(ValueError, match="already exists"):
        accounts.add("dr.ada", PASSWORD, "viewer", actor="other admin")


def test_a_reset_ends_the_session_whatever_the_hosts_clock_says(store, monkeypatch):
    """Sessions end by the password they signed in with, not by comparing two clock readings: a reset made on a
    host whose clock runs behind still ends the session."""
    from datetime import UTC, datetime

    from dashboard import accounts as accounts_module

    accounts = Accounts(store)
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    session = accounts.authenticate("dr.ada", PASSWORD)
    monkeypatch.setattr(accounts_module, "_now", lambda: datetime(2000, 1, 1, tzinfo=UTC))  # a host an era behind
    accounts.reset_password("dr.ada", "the administrator's passphrase", actor="admin")
    assert accounts.current(session) is None
    assert session.credential and session.credential not in PASSWORD  # a digest of the hash, never the password


# ---------------------------------------------------------------- policy, hashing and account rules, one each


def test_every_way_of_setting_a_password_applies_the_policy(store):
    """Adding an account, an administrator's reset and a user's own change: all refuse a weak password, and one
    that contains the username in any case; a refused password changes nothing."""
    accounts = Accounts(store)
    with pytest.raises(ValueError, match="must not contain the username"):
        accounts.add("dr.ada", "I am DR.ADA, let me in", "viewer", actor="admin")
    with pytest.raises(ValueError, match="must be text"):
        accounts.add("dr.ada", PASSWORD.encode(), "viewer", actor="admin")
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    session = accounts.authenticate("dr.ada", PASSWORD)
    with pytest.raises(ValueError, match="at least 12"):
        accounts.reset_password("dr.ada", "short", actor="admin")
    with pytest.raises(ValueError, match="must not contain the username"):
        accounts.reset_password("dr.ada", "hello dr.ada my friend", actor="admin")
    with pytest.raises(ValueError, match="at least 12"):
        accounts.change_own_password(session, PASSWORD, "short")
    with pytest.raises(ValueError, match="too repetitive"):
        accounts.change_own_password(session, PASSWORD, "abababababab")
    with pytest.raises(ValueError, match="must differ from the current one"):
        accounts.change_own_password(session, PASSWORD, PASSWORD)
    assert accounts.current(session) == session  # nothing changed
    assert [e.action for e in store.audit_events(action="user.")] == ["user.add"]


def test_a_password_check_for_no_account_is_false_even_with_the_dummy_hashs_text():
    """The dummy hash (checked when the username has no account, for equal timing) signs in nobody, whatever
    the password: not even the text it was made from."""
    from dashboard import passwords

    dummy_text = "not a real password, only for equal timing"
    assert passwords._HASHER.verify(passwords._DUMMY_HASH, dummy_text)  # the text it was made from, indeed
    assert passwords.verify_password(None, dummy_text) is False
    assert passwords.verify_password(passwords.hash_password(dummy_text), dummy_text) is True


def test_hashing_a_new_password_waits_its_turn_too(monkeypatch):
    """Adding accounts and resetting passwords run argon2 (64 MiB each) under the same bound as checks."""
    from dashboard import passwords

    real = passwords._HASHER
    lock = threading.Lock()
    running = {"now": 0, "peak": 0}

    class CountingHasher:
        def hash(self, password: str) -> str:
            with lock:
                running["now"] += 1
                running["peak"] = max(running["peak"], running["now"])
            try:
                time.sleep(0.1)
                return real.hash(password)
            finally:
                with lock:
                    running["now"] -= 1

    monkeypatch.setattr(passwords, "_HASHER", CountingHasher())
    start = threading.Barrier(12)

    def hash_one(i: int) -> str:
        start.wait()
        return passwords.hash_password(f"password number {i:04d}")

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert len(set(pool.map(hash_one, range(12)))) == 12
    assert 1 <= running["peak"] <= passwords.MAX_CONCURRENT_HASHES


def test_a_hash_made_with_older_parameters_is_upgraded_at_sign_in(store, monkeypatch):
    """The stored hash follows the hasher's parameters (a cost raised after the account was made): the next
    sign-in rehashes, and the session it returns is valid for the new hash."""
    from argon2 import PasswordHasher

    from dashboard import passwords

    accounts = Accounts(store)
    user = accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")

    def stored() -> str:
        with store.read_session() as session:
            return session.get(AppUser, user.id).password_hash

    old = stored()
    assert extract_parameters(old).time_cost == 1
    monkeypatch.setattr(passwords, "_HASHER", PasswordHasher(time_cost=2, memory_cost=8, parallelism=1))
    session = accounts.authenticate("dr.ada", PASSWORD)
    assert extract_parameters(stored()).time_cost == 2
    assert session.credential == passwords.credential_of(stored()) != passwords.credential_of(old)
    assert accounts.current(session) == session
    assert accounts.authenticate("dr.ada", PASSWORD).credential == session.credential  # upgraded once


def test_a_disabled_administrator_is_not_another_administrator(store):
    accounts = Accounts(store)
    accounts.add("boss", PASSWORD, "admin", actor="setup")
    accounts.add("deputy", PASSWORD, "admin", actor="boss")
    accounts.set_active("deputy", False, actor="boss")  # boss remains: allowed
    with pytest.raises(ValueError, match="last active administrator"):
        accounts.set_active("boss", False, actor="boss")
    with pytest.raises(ValueError, match="last active administrator"):
        accounts.set_role("boss", "viewer", actor="boss")
    assert {(u.username, u.role, u.active) for u in accounts.list()} == {
        ("boss", "admin", True),
        ("deputy", "admin", False),
    }


def test_a_disabled_account_cannot_change_its_password_from_an_open_session(store):
    accounts = Accounts(store)
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    session = accounts.authenticate("dr.ada", PASSWORD)
    accounts.set_active("dr.ada", False, actor="admin")
    with pytest.raises(LoginFailed, match="current password is wrong"):
        accounts.change_own_password(session, PASSWORD, "a brand new passphrase")
    accounts.set_active("dr.ada", True, actor="admin")
    assert accounts.authenticate("dr.ada", PASSWORD).username == "dr.ada"  # the password is as it was
    assert "user.change_password" not in [e.action for e in store.audit_events(action="user.")]


@pytest.mark.parametrize("name", ["dr ada", "dr<ada>", "ada;drop", "dr/ada", "dr\tada", "ádá"])
def test_usernames_outside_the_allowed_characters_are_refused(store, name):
    with pytest.raises(ValueError, match="may contain only"):
        Accounts(store).add(name, PASSWORD, "viewer", actor="admin")


def test_a_username_may_be_as_long_as_the_column_and_no_longer(store):
    from dashboard.store.models import USERNAME_MAX

    accounts = Accounts(store)
    assert accounts.add("a" * USERNAME_MAX, PASSWORD, "viewer", actor="admin").username == "a" * USERNAME_MAX
    with pytest.raises(ValueError, match=f"longer than {USERNAME_MAX}"):
        accounts.add("b" * (USERNAME_MAX + 1), PASSWORD, "viewer", actor="admin")


def test_the_lockout_message_gives_the_window_in_minutes(store):
    accounts = Accounts(store, max_failures=1, failure_window=timedelta(minutes=15))
    with pytest.raises(LoginFailed, match="Wrong username"):
        accounts.authenticate("nobody", "a wrong password")
    with pytest.raises(LoginFailed, match="Try again in 15 minutes"):
        accounts.authenticate("nobody", "a wrong password")


def test_a_typed_username_reaches_the_audit_trail_printable_and_bounded(store):
    """The actor of a failed sign-in is what was typed: without control characters (the trail is shown on
    pages and printed by the CLI) and no longer than a username (the actor column has a length)."""
    from dashboard.store.models import USERNAME_MAX

    accounts = Accounts(store)
    for typed in ("dr\x1b[31mada\x00", "x" * 500, " \t\n"):
        with pytest.raises(LoginFailed):
            accounts.authenticate(typed, "a wrong password")
    assert [e.actor for e in store.audit_events(action="auth.")] == ["dr[31mada", "x" * USERNAME_MAX, "(blank)"]


def test_single_sign_on_records_the_sign_in_time(store):
    accounts = Accounts(store)
    accounts.add("ada@clinic.example", PASSWORD, "viewer", actor="t")
    assert accounts.list()[0].last_login_at is None
    accounts.sso_user("ada@clinic.example")
    assert accounts.list()[0].last_login_at is not None


def test_the_lockout_of_a_password_change_is_audited_as_one(store):
    accounts = Accounts(store, max_failures=1, failure_window=timedelta(minutes=15))
    accounts.add("dr.ada", PASSWORD, "clinician", actor="admin")
    session = accounts.authenticate("dr.ada", PASSWORD)
    for _ in range(2):
        with pytest.raises(LoginFailed):
            accounts.change_own_password(session, "a wrong guess!!", "a brand new passphrase")
    assert [(e.action, e.detail.get("via")) for e in store.audit_events(action="auth.")] == [
        ("auth.login", "password"),
        ("auth.login_failed", "password-change"),
        ("auth.login_locked", "password-change"),
    ]


def test_no_password_hash_reaches_the_audit_trail(store):
    accounts = Accounts(store)
    accounts.add("boss", PASSWORD, "admin", actor="setup")
    accounts.add("dr.ada", PASSWORD, "clinician", actor="boss")
    accounts.reset_password("dr.ada", "the administrator's passphrase", actor="boss")
    session = accounts.authenticate("dr.ada", "the administrator's passphrase")
    accounts.change_own_password(session, "the administrator's passphrase", "a brand new passphrase")
    events = store.audit_events()
    assert {"user.reset_password", "user.change_password"} <= {e.action for e in events}
    details = [repr(e.detail) for e in events]
    assert not any("argon2" in d or "password_hash" in d for d in details), details


# ---------------------------------------------------------------- the users CLI, case by case


@pytest.fixture
def users_cli(sqlite_url, tmp_path, monkeypatch, capsys):
    """The users CLI's main() on a fresh database, as test_users_cli runs it: (args, stdin) -> CompletedProcess."""
    from dashboard.users import main

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TRIAGE_DATA_DIR", str(tmp_path / "images"))

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["dashboard.users", *args], code, out, err)

    return cli


def _open(sqlite_url, tmp_path) -> CaseStore:
    return CaseStore.from_url(sqlite_url, str(tmp_path / "images"))


def test_users_cli_asks_for_the_password_twice(users_cli, sqlite_url, tmp_path, monkeypatch):
    import getpass

    typed = iter([PASSWORD, PASSWORD + "!"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(typed))
    differ = users_cli("add", "boss", "--role", "admin")
    assert differ.returncode == 1 and "the two passwords differ" in differ.stderr
    assert "no accounts yet" in users_cli("list").stdout
    typed = iter([PASSWORD, PASSWORD])
    assert users_cli("add", "boss", "--role", "admin").returncode == 0
    with _open(sqlite_url, tmp_path) as store:
        assert Accounts(store).authenticate("boss", PASSWORD).role == "admin"


def test_users_cli_end_of_input_at_the_prompt_cancels(users_cli, monkeypatch):
    import getpass

    def closed(prompt=""):
        raise EOFError

    monkeypatch.setattr(getpass, "getpass", closed)
    result = users_cli("add", "boss", "--role", "admin")
    assert result.returncode == 1 and "cancelled" in result.stderr and "Traceback" not in result.stderr


def test_users_cli_keeps_spaces_at_the_ends_of_a_password_from_stdin(users_cli, sqlite_url, tmp_path):
    """Only the line ending is taken off: the password is what was typed, spaces and all."""
    spaced = "  " + PASSWORD + "  "
    assert users_cli("add", "boss", "--role", "admin", "--password-stdin", stdin=spaced + "\r\n").returncode == 0
    with _open(sqlite_url, tmp_path) as store:
        accounts = Accounts(store)
        assert accounts.authenticate("boss", spaced).username == "boss"
        with pytest.raises(LoginFailed):
            accounts.authenticate("boss", PASSWORD)


def test_users_cli_records_the_operating_system_user(users_cli, sqlite_url, tmp_path, monkeypatch):
    import getpass

    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    assert users_cli("add", "boss", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0

    def no_login_name():
        raise OSError("no login name")

    monkeypatch.setattr(getpass, "getuser", no_login_name)
    assert users_cli("add", "deputy", "--role", "viewer", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    with _open(sqlite_url, tmp_path) as store:
        assert [(e.actor, e.detail["user"]) for e in store.audit_events(action="user.")] == [
            ("cli:alice", "boss"),
            ("cli", "deputy"),
        ]


def test_users_cli_lists_each_accounts_own_role_and_state(users_cli):
    for name, role in (("boss", "admin"), ("deputy", "admin"), ("dr.ada", "clinician")):
        made = users_cli("add", name, "--role", role, "--password-stdin", stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
    assert users_cli("disable", "deputy").returncode == 0
    assert users_cli("set-role", "dr.ada", "--role", "admin").stdout.strip() == "'dr.ada' is now admin"
    rows = {line.split()[0]: line.split()[1:3] for line in users_cli("list").stdout.splitlines()}
    assert rows == {"boss": ["admin", "active"], "deputy": ["admin", "DISABLED"], "dr.ada": ["admin", "active"]}


def test_users_cli_that_cannot_open_the_database_exits_2(tmp_path, monkeypatch, capsys):
    from dashboard.users import main

    (tmp_path / "file.txt").write_text("x")
    monkeypatch.setenv("TRIAGE_DATA_DIR", str(tmp_path / "images"))
    url = f"sqlite:///{tmp_path / 'file.txt' / 'cases.db'}"
    assert main(["--database-url", url, "list"]) == 2
    assert "error: could not open the case database" in capsys.readouterr().err
