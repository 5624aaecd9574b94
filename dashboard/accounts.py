"""Local accounts in the case store: account rows, management, sign-in with throttling and lockout.

Accounts live in the case store (``app_user``), with argon2id password hashes (passwords.py). There is no
default account and no default password: the first administrator is created on the server with
``python -m dashboard.users add``.

Failed sign-ins are audited (``auth.login_failed``) and rate-limited per username: after
``TRIAGE_LOGIN_MAX_FAILURES`` failures within ``TRIAGE_LOGIN_LOCK_MINUTES`` (read when ``Accounts`` is made) the
account refuses every password, the right one too, until the window has passed (``auth.login_locked``). One
check at a time per username in a process: it counts the failures in one short transaction, checks the password
with no transaction open (argon2id takes ~0.3 s: held inside SQLite's write lock, a stream of made-up usernames
would stall every save and audit write), then writes its result once (``auth.login`` or ``auth.login_failed``);
the audit trail is only appended to. The current-password check of a password change counts too.

A session ends when the account is disabled or its password is changed after the session began (the step an
administrator takes after a suspected compromise): ``AuthUser.credential`` is a digest of the password hash
the session signed in with, compared with the account's current one (``account_now``). A digest, not a time, so
that hosts with skewed clocks cannot keep a session alive past a reset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dashboard import passwords
from dashboard.auth import AuthUser, IdleClock, LoginFailed
from dashboard.store import validation
from dashboard.store.api import CaseStore
from dashboard.store.models import ROLES, USERNAME_MAX, AppUser, AuditEvent, ReviewDraft
from data import settings

_USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-@")

# One password check at a time per username in this process: the failure count a check starts from includes
# every earlier check's result, while argon2 runs with no database transaction open (the audit trail is written
# once per attempt, after its check, never changed). Separate server processes on one database could each run
# one check past the budget at the same moment.
_NAME_LOCKS: dict[str, list] = {}  # username -> [lock, users]
_NAME_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def _one_check_per_name(name: str) -> Iterator[None]:
    with _NAME_LOCKS_GUARD:
        entry = _NAME_LOCKS.setdefault(name, [threading.Lock(), 0])
        entry[1] += 1
    try:
        with entry[0]:
            yield
    finally:
        with _NAME_LOCKS_GUARD:
            entry[1] -= 1
            if not entry[1]:
                _NAME_LOCKS.pop(name, None)


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None


def normalise_username(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("username must be text")
    name = value.strip().lower()
    if not name:
        raise ValueError("username must not be empty")
    if len(name) > USERNAME_MAX:
        raise ValueError(f"username is longer than {USERNAME_MAX} characters")
    if not set(name) <= _USERNAME_CHARS:
        raise ValueError("username may contain only letters a-z, digits and . _ - @")
    return name


def _role(value: object) -> str:
    return validation.choice(value, "role", ROLES)


def _attempted_name(username: object) -> str:
    """The username typed at a failed sign-in, fit for the audit trail's actor column."""
    text = username if isinstance(username, str) else ""
    text = "".join(ch for ch in text.strip() if ch.isprintable())[:USERNAME_MAX]
    return text or "(blank)"


def _now() -> datetime:
    return datetime.now(UTC)


class Accounts:
    """Local accounts in the case store: create, disable, reset passwords, sign in."""

    def __init__(
        self, store: CaseStore, *, max_failures: int | None = None, failure_window: timedelta | None = None
    ) -> None:
        """``max_failures`` and ``failure_window`` (the lockout): by default TRIAGE_LOGIN_MAX_FAILURES and
        TRIAGE_LOGIN_LOCK_MINUTES as the environment gives them now."""
        self.store = store
        if max_failures is None or failure_window is None:
            dashboard = settings.dashboard_settings()
            if max_failures is None:
                max_failures = dashboard.login_max_failures
            if failure_window is None:
                failure_window = timedelta(minutes=dashboard.login_lock_minutes)
        self.max_failures = max_failures
        self.failure_window = failure_window

    # ------------------------------------------------------------ management

    def has_users(self) -> bool:
        with self.store.read_session() as session:
            return bool(session.scalar(select(func.count(AppUser.id))))

    def list(self) -> list[UserRecord]:
        with self.store.read_session() as session:
            return [
                UserRecord(u.id, u.username, u.display_name, u.role, u.active, u.created_at, u.last_login_at)
                for u in session.scalars(select(AppUser).order_by(AppUser.username))
            ]

    def add(self, username: str, password: str, role: str, display_name: str = "", *, actor: str) -> AuthUser:
        username = normalise_username(username)
        role = _role(role)
        # validation.name: no control characters (a display name is printed by the users CLI, on a terminal)
        display_name = validation.name(display_name, "display name") if str(display_name or "").strip() else ""
        passwords.check_password_policy(password, username)
        password_hash = passwords.hash_password(password)
        exists = ValueError(f"a user named {username!r} already exists")
        try:
            with self.store.write_transaction() as session:
                if session.scalar(select(AppUser.id).where(AppUser.username == username)) is not None:
                    raise exists
                user = AppUser(username=username, display_name=display_name, role=role, password_hash=password_hash)
                session.add(user)
                session.flush()
                session.add(AuditEvent(actor=actor, action="user.add", detail={"user": username, "role": role}))
                return AuthUser(user.id, user.username, user.display_name, user.role)
        except IntegrityError:  # another administrator added the same name at the same moment
            raise exists from None

    def set_active(self, username: str, active: bool, *, actor: str) -> None:
        self._update(username, actor, "user.enable" if active else "user.disable", active=bool(active))

    def set_role(self, username: str, role: str, *, actor: str) -> None:
        role = _role(role)
        self._update(username, actor, "user.role", role=role)

    def reset_password(self, username: str, password: str, *, actor: str) -> None:
        username = normalise_username(username)
        passwords.check_password_policy(password, username)
        self._update(username, actor, "user.reset_password", password_hash=passwords.hash_password(password))

    def change_own_password(self, user: AuthUser, current: str, new: str) -> AuthUser:
        """A signed-in user's own change: the current password first (a wrong one counts as a failed sign-in,
        and a locked username checks none). Returns the user's session renewed from now: the change ends
        every other session of the account."""
        passwords.check_password_policy(new, user.username)
        with _one_check_per_name(user.username):
            attempt = self._begin_attempt(user.username, user.username, via="password-change")
            ok = (
                attempt.user_id == user.id
                and attempt.active
                and passwords.verify_password(attempt.password_hash, current)
            )
            if not ok:
                self._record_failure(user.username, "password-change", "bad credentials")
                raise LoginFailed("The current password is wrong.")
        if new == current:
            raise ValueError("the new password must differ from the current one")
        new_hash = passwords.hash_password(new)
        self._update(user.username, user.username, "user.change_password", password_hash=new_hash)
        return dataclasses.replace(user, credential=passwords.credential_of(new_hash))

    def _update(self, username: str, actor: str, action: str, **values: Any) -> None:
        username = normalise_username(username)
        with self.store.write_transaction() as session:
            user = session.scalar(select(AppUser).where(AppUser.username == username))
            if user is None:
                raise ValueError(f"no user named {username!r}")
            if (
                user.role == "admin"
                and user.active
                and (values.get("active") is False or values.get("role", "admin") != "admin")
            ):
                # Two administrators demoting each other at once must not both see the other still active:
                # one lock for every such change (SQLite's write lock already serialises them).
                _transaction_lock(session, "users.last_admin")
                other_admins = session.scalar(
                    select(func.count(AppUser.id)).where(
                        AppUser.role == "admin", AppUser.active.is_(True), AppUser.id != user.id
                    )
                )
                if not other_admins:
                    raise ValueError(
                        f"{username!r} is the last active administrator: make another account an administrator first"
                    )
            for key, value in values.items():
                setattr(user, key, value)
            if "password_hash" in values:
                user.password_changed_at = _now()
            detail = {"user": username, **{k: v for k, v in values.items() if k != "password_hash"}}
            if values.get("active") is False:  # nobody will resume it: its images and identifier go now
                draft = session.scalar(select(ReviewDraft).where(ReviewDraft.owner == username))
                if draft is not None:
                    session.delete(draft)
                    detail["draft_deleted"] = True
            session.add(AuditEvent(actor=actor, action=action, detail=detail))

    # ------------------------------------------------------------ sessions

    def authenticate(self, username: str, password: str, *, via: str = "password") -> AuthUser:
        """The user for these credentials, or LoginFailed (audited, rate-limited)."""
        try:
            name = normalise_username(username)
        except ValueError:
            name = None
        # The rate limit counts per normalised name, so "DR.ADA" and "dr.ada" share one budget.
        attempted = name or _attempted_name(username)
        with _one_check_per_name(attempted):
            return self._check_password(attempted, name, password, via=via)

    def _check_password(self, attempted: str, name: str | None, password: str, *, via: str) -> AuthUser:
        """Three short steps, none holding the database's write lock while argon2 runs: the lockout check and the
        account's hash (the dummy hash for a name with no account, so it takes as long as a known one); the
        check; the result, written once (auth.login, or auth.login_failed with its reason)."""
        attempt = self._begin_attempt(attempted, name, via=via)
        ok = passwords.verify_password(attempt.password_hash, password) and attempt.user_id is not None
        if not ok:
            self._record_failure(attempted, via, "bad credentials")
            raise LoginFailed("Wrong username or password, or the account is disabled.")
        new_hash = (
            passwords.hash_password(password)
            if attempt.active and passwords.needs_rehash(attempt.password_hash)
            else None
        )
        with self.store.write_transaction() as session:
            user = session.get(AppUser, attempt.user_id)
            # The account as it is now: disabled, or its password changed, while the password was being checked
            # is no sign-in.
            if user is not None and user.active and user.password_hash == attempt.password_hash:
                if new_hash is not None:
                    user.password_hash = new_hash
                user.last_login_at = _now()
                session.add(AuditEvent(actor=user.username, action="auth.login", detail={"via": via}))
                return _auth_user(user, credential=passwords.credential_of(user.password_hash))
            reason = "disabled" if user is not None and not user.active else "bad credentials"
            session.add(AuditEvent(actor=attempted, action="auth.login_failed", detail={"via": via, "reason": reason}))
        # Raised after the transaction committed, so the failure stays recorded.
        raise LoginFailed("Wrong username or password, or the account is disabled.")

    def _record_failure(self, attempted: str, via: str, reason: str) -> None:
        with self.store.write_transaction() as session:
            session.add(AuditEvent(actor=attempted, action="auth.login_failed", detail={"via": via, "reason": reason}))

    def _begin_attempt(self, attempted: str, name: str | None, *, via: str) -> _Attempt:
        """Step one of a password check, one short transaction: raises the lockout's LoginFailed (audited) if
        ``attempted`` has used up its failures, else reads the hash to check against (None for a name with no
        account: the check then runs against the dummy hash)."""
        with self.store.write_transaction() as session:
            locked = self._locked(session, attempted, via=via)
            if locked is None:
                user = session.scalar(select(AppUser).where(AppUser.username == name)) if name else None
                attempt = _Attempt(
                    user_id=user.id if user else None,
                    password_hash=user.password_hash if user else None,
                    active=bool(user and user.active),
                )
        if locked is not None:  # raised after the commit, so the refusal stays recorded
            raise locked
        return attempt

    def _locked(self, session: Session, attempted: str, *, via: str) -> LoginFailed | None:
        """The refusal if this username has used up its failures in the window (audited), else None. Takes
        the username's lock first, held to the end of the caller's transaction, so that counting and recording
        an attempt are one step per username."""
        _transaction_lock(session, f"auth.login:{attempted}")
        failures = session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.actor == attempted,
                AuditEvent.action == "auth.login_failed",
                AuditEvent.occurred_at >= _now() - self.failure_window,
            )
        )
        if failures < self.max_failures:
            return None
        session.add(AuditEvent(actor=attempted, action="auth.login_locked", detail={"via": via}))
        minutes = max(1, round(self.failure_window.total_seconds() / 60))
        return LoginFailed(
            f"Too many failed sign-ins for this username. Try again in {minutes} minutes, or ask an administrator."
        )

    def sso_user(self, email: str) -> AuthUser:
        """The local account an identity provider's verified e-mail maps to (``st.login``)."""
        return self._active_user_named(email, via="sso")

    def _active_user_named(self, username: str, *, via: str) -> AuthUser:
        name = normalise_username(username)
        with self.store.write_transaction() as session:
            user = session.scalar(select(AppUser).where(AppUser.username == name))
            if user is None or not user.active:
                session.add(AuditEvent(actor=_attempted_name(name), action="auth.login_failed", detail={"via": via}))
                failed = True
            else:
                failed = False
                user.last_login_at = _now()
                session.add(AuditEvent(actor=user.username, action="auth.login", detail={"via": via}))
                result = _auth_user(user, credential=passwords.credential_of(user.password_hash))
        if failed:
            raise LoginFailed("Your single sign-on account has no active local account here. Ask an administrator.")
        return result

    def current(self, user: AuthUser | int) -> AuthUser | None:
        """The account as it is now (role changes apply at once), or None if disabled, gone, or, for a
        session, its password changed since the session began."""
        return account_now(self.store, user)

    def record(self, user: AuthUser | str, action: str, detail: dict[str, Any] | None = None) -> None:
        """An audit event that names no patient (sign-out, session expiry, page views)."""
        actor = user.username if isinstance(user, AuthUser) else _attempted_name(user)
        with self.store.write_transaction() as session:
            session.add(AuditEvent(actor=actor, action=action, detail=dict(detail or {})))


@dataclass(frozen=True)
class _Attempt:
    """A password check under way: the account as read before the check."""

    user_id: int | None  # None: no account has this name
    password_hash: str | None  # the hash to check against (None when there is no account: the dummy hash's turn)
    active: bool


def _transaction_lock(session: Session, name: str) -> None:
    """Hold the lock called ``name`` to the end of the session's transaction: a PostgreSQL advisory lock (READ
    COMMITTED would let two transactions read the same state and both act on it); SQLite's write transactions
    already run one at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(name.encode())})


def account_now(store: CaseStore, user: AuthUser | int) -> AuthUser | None:
    """``user``'s account as it is now (role changes apply at once), keeping the session's credential; None when
    the session has ended: the account is gone or disabled, or its password is not the one signed in with."""
    user_id, signed_in_with = (user.id, user.credential) if isinstance(user, AuthUser) else (user, None)
    with store.read_session() as session:
        account = session.get(AppUser, user_id)
        if account is None or not account.active:
            return None
        if signed_in_with is not None and passwords.credential_of(account.password_hash) != signed_in_with:
            return None
        idle = user.idle if isinstance(user, AuthUser) else None
        return _auth_user(account, credential=signed_in_with, idle=idle)


def _auth_user(account: AppUser, *, credential: str | None = None, idle: IdleClock | None = None) -> AuthUser:
    return AuthUser(account.id, account.username, account.display_name, account.role, credential, idle)
