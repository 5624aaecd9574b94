"""Who may use the dashboard, and what each role may do (no Streamlit here; the login page is auth_ui.py).
Over 400 lines because accounts, password hashing, sign-in throttling and the role-checked store wrapper are
one security boundary, read and reviewed together.

Local accounts live in the case store (``app_user``), with argon2id password hashes (argon2-cffi, the
reference implementation's bindings; no hand-rolled crypto). There is no default account and no default
password: the first administrator is created on the server with ``python -m dashboard.users add``.

Roles, least to most privileged:

- ``viewer``: read patient records (case history, saved images, the model page). Read-only.
- ``clinician``: also review, save visits and decisions, amend a saved decision, record histology,
  export a patient's history and the labelled outcomes.
- ``admin``: also manage accounts and read the audit trail.

Failed sign-ins are audited (``auth.login_failed``) and rate-limited per username: after
``MAX_FAILURES`` failures within ``FAILURE_WINDOW`` the account refuses every password, the right one
too, until the window has passed (``auth.login_locked``). One check at a time per username in a process: it
counts the failures in one short transaction, checks the password with no transaction open (argon2id takes
~0.3 s: held inside SQLite's write lock, a stream of made-up usernames would stall every save and audit write),
then writes its result once (``auth.login`` or ``auth.login_failed``); the audit trail is only appended to. At
most ``MAX_CONCURRENT_HASHES`` argon2 computations (64 MiB each) run at once in the process. The
current-password check of a password change counts too.

A session ends when the account is disabled or its password is changed after the session began (the step an
administrator takes after a suspected compromise): ``AuthUser.credential`` is a digest of the password hash
the session signed in with, compared with the account's current one. A digest, not a time, so that hosts
with skewed clocks cannot keep a session alive past a reset.

``UserStore`` is the case store as one signed-in user sees it: every call that reads or writes patient
data checks the account as it is now (active, role, password unchanged since sign-in) first, and records
who did it. Checking at the call, not only at the page's start, covers widget callbacks (they run before
the page script) and deferred downloads (they run without it). A browser session's user carries its idle clock
(``IdleClock``, kept up to date by auth_ui): past the idle limit, the store refuses every call with the sign-out
message the page gives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dashboard.store import validation
from dashboard.store.api import CaseStore, ExportFormat
from dashboard.store.models import ROLES, USERNAME_MAX, AppUser, AuditEvent, ReviewDraft
from dashboard.store.records import AuditRecord, ReviewToSave
from data import settings
from data.errors import TriageError

logger = logging.getLogger(__name__)

PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"patient.read"}),
    "clinician": frozenset({"patient.read", "patient.write", "patient.export"}),
    "admin": frozenset({"patient.read", "patient.write", "patient.export", "users.manage", "audit.read"}),
}
MIN_PASSWORD_LENGTH = 12
MIN_DISTINCT_CHARACTERS = 5
MAX_FAILURES = settings.environment().login_max_failures
FAILURE_WINDOW = timedelta(minutes=settings.environment().login_lock_minutes)
_USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-@")

# argon2id with argon2-cffi's RFC 9106 "low memory" defaults (64 MiB, 3 passes).
_HASHER = PasswordHasher()
# Verified against when the username does not exist, so both cases take the same time.
_DUMMY_HASH = _HASHER.hash("not a real password, only for equal timing")
# Sessions run in threads of one server process: a flood of sign-ins must not run argon2 (64 MiB, ~0.3 s of CPU
# each) on unbounded threads at once. The others wait their turn.
MAX_CONCURRENT_HASHES = 4
_HASH_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)
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


class AccessDenied(TriageError, PermissionError):
    """The signed-in user's role does not allow this."""


class LoginFailed(TriageError):
    """Sign-in refused; the message is safe to show (it does not say whether the username exists)."""


def idle_limit_s() -> float:
    """How long a signed-in session may go without activity, in seconds."""
    # data/settings.py refuses a value outside its range (nan, 0, a day and more), so no clamp here.
    return settings.environment().idle_timeout_minutes * 60


def idle_sign_out_message() -> str:
    return f"You were signed out after {idle_limit_s() / 60:g} minutes without activity."


class IdleClock:
    """When a signed-in browser session's user last did something (``time.time()`` of the last script run they
    caused). One per session, shared by the session (auth_ui) and every ``AuthUser``/``UserStore`` made from it,
    so a store held by a widget callback or a deferred download sees the session's activity as it is now."""

    __slots__ = ("last_active",)

    def __init__(self, last_active: float) -> None:
        self.last_active = last_active

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) - self.last_active > idle_limit_s()


@dataclass(frozen=True)
class AuthUser:
    """A signed-in user, as the pages and the audit trail see them."""

    id: int
    username: str
    display_name: str
    role: str
    # The password hash this session signed in with, as a digest (None: not a session, e.g. an account just
    # created); a changed password ends the session. Not part of equality: one account signed in twice is the
    # same user.
    credential: str | None = field(default=None, compare=False)
    # The browser session's idle clock (None: not a browser session, e.g. the users CLI). Not part of equality.
    idle: IdleClock | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"{self.display_name} ({self.username})" if self.display_name else self.username

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise AccessDenied(f"the {self.role} role may not do this ({permission})")


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None


def hash_password(password: str) -> str:
    with _HASH_SLOTS:
        return _HASHER.hash(password)


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


def check_password_policy(password: object, username: str = "") -> str:
    if not isinstance(password, str):
        raise ValueError("password must be text")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(set(password.strip())) < MIN_DISTINCT_CHARACTERS:  # "aaaaaaaaaaaa", twelve spaces, "abababab…"
        raise ValueError("password is too repetitive: use a passphrase of several words")
    if username and username.lower() in password.lower():
        raise ValueError("password must not contain the username")
    return password


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
        self, store: CaseStore, *, max_failures: int = MAX_FAILURES, failure_window: timedelta = FAILURE_WINDOW
    ) -> None:
        self.store = store
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
        check_password_policy(password, username)
        password_hash = hash_password(password)
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
        check_password_policy(password, username)
        self._update(username, actor, "user.reset_password", password_hash=hash_password(password))

    def change_own_password(self, user: AuthUser, current: str, new: str) -> AuthUser:
        """A signed-in user's own change: the current password first (a wrong one counts as a failed sign-in,
        and a locked username checks none). Returns the user's session renewed from now: the change ends
        every other session of the account."""
        check_password_policy(new, user.username)
        with _one_check_per_name(user.username):
            attempt = self._begin_attempt(user.username, user.username, via="password-change")
            ok = attempt.user_id == user.id and attempt.active and _verify(attempt.password_hash, current)
            if not ok:
                self._record_failure(user.username, "password-change", "bad credentials")
                raise LoginFailed("The current password is wrong.")
        if new == current:
            raise ValueError("the new password must differ from the current one")
        new_hash = hash_password(new)
        self._update(user.username, user.username, "user.change_password", password_hash=new_hash)
        return dataclasses.replace(user, credential=credential_of(new_hash))

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
        ok = _verify(attempt.password_hash, password) and attempt.user_id is not None
        if not ok:
            self._record_failure(attempted, via, "bad credentials")
            raise LoginFailed("Wrong username or password, or the account is disabled.")
        new_hash = (
            hash_password(password) if attempt.active and _HASHER.check_needs_rehash(attempt.password_hash) else None
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
                return _auth_user(user, credential=credential_of(user.password_hash))
            reason = "disabled" if user is not None and not user.active else "bad credentials"
            session.add(AuditEvent(actor=attempted, action="auth.login_failed", detail={"via": via, "reason": reason}))
        # Raised after the transaction committed, so the failure stays recorded.
        raise LoginFailed("Wrong username or password, or the account is disabled.")

    def _record_failure(self, attempted: str, via: str, reason: str) -> None:
        with self.store.write_transaction() as session:
            session.add(AuditEvent(actor=attempted, action="auth.login_failed", detail={"via": via, "reason": reason}))

    def _begin_attempt(self, attempted: str, name: str | None, *, via: str) -> _Attempt:
        """Step one of a password check, one short transaction: raises the lockout's LoginFailed (audited) if
        ``attempted`` has used up its failures, else reads the hash to check against (the dummy hash for a name
        with no account)."""
        with self.store.write_transaction() as session:
            locked = self._locked(session, attempted, via=via)
            if locked is None:
                user = session.scalar(select(AppUser).where(AppUser.username == name)) if name else None
                attempt = _Attempt(
                    user_id=user.id if user else None,
                    password_hash=user.password_hash if user else _DUMMY_HASH,
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
                result = _auth_user(user, credential=credential_of(user.password_hash))
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
    password_hash: str  # the hash to check against (the dummy hash when there is no account)
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
        if signed_in_with is not None and credential_of(account.password_hash) != signed_in_with:
            return None
        idle = user.idle if isinstance(user, AuthUser) else None
        return _auth_user(account, credential=signed_in_with, idle=idle)


def credential_of(password_hash: str) -> str:
    """A session's mark of the password it signed in with: a digest of the hash (the hash itself stays in the
    database, never in a browser session)."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def _auth_user(account: AppUser, *, credential: str | None = None, idle: IdleClock | None = None) -> AuthUser:
    return AuthUser(account.id, account.username, account.display_name, account.role, credential, idle)


def _verify(password_hash: str, password: object) -> bool:
    """Whether ``password`` matches; call it with no transaction open (argon2id takes ~0.3 s)."""
    if not isinstance(password, str) or not password:
        return False
    try:
        with _HASH_SLOTS:
            return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class UserStore:
    """The case store as one signed-in user may use it: role checked, every access attributed."""

    def __init__(self, store: CaseStore, user: AuthUser) -> None:
        self._store = store
        self.user = user

    @property
    def data_dir(self) -> Any:
        return self._store.data_dir

    def _require(self, permission: str) -> None:
        """The account as it is now may do this: a session ended since the page started (idle past the limit,
        account disabled, password changed) does nothing."""
        if self.user.idle is not None and self.user.idle.expired():
            raise AccessDenied(idle_sign_out_message())
        fresh = account_now(self._store, self.user)
        if fresh is None:
            raise AccessDenied("this session has ended (account disabled or password changed): sign in again")
        self.user = fresh
        fresh.require(permission)

    def _read(self) -> None:
        self._require("patient.read")

    # reads
    def search_patients(self, partial_identifier: str, limit: int = 50) -> Any:
        self._read()
        return self._store.search_patients(partial_identifier, limit)

    def find_patient_id(self, identifier: str) -> int | None:
        self._read()
        return self._store.find_patient_id(identifier)

    def get_patient(self, patient_id: int) -> Any:
        self._read()
        return self._store.get_patient(patient_id)

    def patient_timeline(self, patient_id: int) -> Any:
        self._read()
        return self._store.patient_timeline(patient_id)

    def load_visit(self, visit_id: int) -> Any:
        self._read()
        return self._store.load_visit(visit_id)

    def list_lesions(self, patient_id: int) -> Any:
        self._read()
        return self._store.list_lesions(patient_id)

    def lesion_score_trend(self, lesion_id: int) -> Any:
        self._read()
        return self._store.lesion_score_trend(lesion_id)

    def decision_history(self, patient_id: int) -> Any:
        self._read()
        return self._store.decision_history(patient_id)

    def image_path(self, sha256: str) -> Any:
        self._read()
        return self._store.image_path(sha256)

    def record_view(self, action: str, patient_id: int | None, detail: dict[str, Any] | None = None) -> None:
        """Audit a read (``patient.view``, ``image.view``, ``patient.search``); ids only in ``detail``."""
        self._read()
        self._store.record_event(self.user.username, action, patient_id, detail)

    # writes
    def save_review(self, review: ReviewToSave) -> int:
        self._require("patient.write")
        # The reviewing clinician is whoever is signed in, whatever the form said.
        return self._store.save_review(dataclasses.replace(review, clinician=self.user.username))

    # the signed-in user's own review in progress, kept so that a reload does not lose it
    def save_draft(self, state: dict[str, Any], images: Any) -> None:
        self._require("patient.write")
        self._store.save_draft(self.user.username, state, images)

    def load_draft(self) -> Any:
        """The user's unsaved review; every draft unused for TRIAGE_DRAFT_KEEP_DAYS is deleted first."""
        self._require("patient.write")
        self._store.prune_drafts(timedelta(days=settings.environment().draft_keep_days))
        return self._store.load_draft(self.user.username)

    def delete_draft(self) -> bool:
        self._require("patient.write")
        return self._store.delete_draft(self.user.username)

    def export_patient_history(self, patient_id: int, format: ExportFormat = "csv") -> str:
        self._require("patient.export")
        return self._store.export_patient_history(patient_id, format, actor=self.user.username)

    # after saving: amendments, histology, outcomes (the signed-in user is the one who amends or records)
    def amend_decision(
        self, decision_id: int, action: str, comment: str = "", *, reason: str, review_in_months: int | None = None
    ) -> int:
        self._require("patient.write")
        return self._store.amend_decision(
            decision_id, action, comment, reason=reason, actor=self.user.username, review_in_months=review_in_months
        )

    def record_decision(
        self, visit_id: int, lesion_id: int, action: str, comment: str = "", *, review_in_months: int | None = None
    ) -> int:
        self._require("patient.write")
        return self._store.record_decision(
            visit_id, lesion_id, action, comment, actor=self.user.username, review_in_months=review_in_months
        )

    def record_histology(self, lesion_id: int, result: str, *, reported_on: Any = None, note: str = "") -> Any:
        self._require("patient.write")
        return self._store.record_histology(
            lesion_id, result, actor=self.user.username, reported_on=reported_on, note=note
        )

    def set_body_region(self, lesion_id: int, region: str | None) -> str | None:
        self._require("patient.write")
        return self._store.set_body_region(lesion_id, region, actor=self.user.username)

    def histology_history(self, lesion_id: int) -> Any:
        self._read()
        return self._store.histology_history(lesion_id)

    def outcomes(self, patient_id: int | None = None, *, include_not_done: bool = False) -> Any:
        self._read()
        return self._store.outcomes(patient_id, include_not_done=include_not_done)

    def worklist(self) -> Any:
        """Across patients: lesions due for repeat imaging and results outstanding (audited by the page)."""
        self._read()
        return self._store.worklist()

    def export_outcomes(self, patient_id: int | None = None, *, include_not_done: bool = False) -> str:
        self._require("patient.export")
        return self._store.export_outcomes(patient_id, actor=self.user.username, include_not_done=include_not_done)

    # administration
    def audit_events(self, **filters: Any) -> list[AuditRecord]:
        self._require("audit.read")
        return self._store.audit_events(**filters)

    def record_audit_export(self, rows: int) -> None:
        self._require("audit.read")
        self._store.record_event(self.user.username, "audit.export", None, {"rows": rows})
