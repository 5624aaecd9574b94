"""Who may use the dashboard, and what each role may do: the roles, the signed-in user, the idle limit.

Roles, least to most privileged:

- ``viewer``: read patient records (case history, saved images, the model page). Read-only.
- ``clinician``: also review, save visits and decisions, amend a saved decision, record histology,
  export a patient's history and the labelled outcomes.
- ``admin``: also manage accounts and read the audit trail.

The rest of sign-in, one idea a module (no Streamlit in this one or the next three):

- passwords.py: argon2id hashing and checking, the password policy, a session's credential;
- accounts.py: local accounts in the case store, sign-in with its rate limit and lockout, the account as it is
  now (a disabled account or a changed password ends its sessions);
- user_store.py: ``UserStore``, the case store as one signed-in user may use it (role-checked, attributed);
- session.py: the browser session's signed-in user (Streamlit's session state);
- auth_ui.py: the sign-in page, idle expiry, page role checks (Streamlit);
- users.py: the accounts CLI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from data import settings
from data.errors import TriageError

PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"patient.read"}),
    "clinician": frozenset({"patient.read", "patient.write", "patient.export"}),
    "admin": frozenset({"patient.read", "patient.write", "patient.export", "users.manage", "audit.read"}),
}


class AccessDenied(TriageError, PermissionError):
    """The signed-in user's role does not allow this."""


class LoginFailed(TriageError):
    """Sign-in refused; the message is safe to show (it does not say whether the username exists)."""


def idle_limit_s() -> float:
    """How long a signed-in session may go without activity, in seconds."""
    # data/settings.py refuses a value outside its range (nan, 0, a day and more), so no clamp here.
    return settings.dashboard_settings().idle_timeout_minutes * 60


def idle_sign_out_message() -> str:
    return f"You were signed out after {idle_limit_s() / 60:g} minutes without activity."


class IdleClock:
    """When a signed-in browser session's user last did something (``time.time()`` of the last script run they
    caused). One per session, shared by the session (``session.SignedIn``) and every ``AuthUser``/``UserStore`` made
    from it, so a store held by a widget callback or a deferred download sees the session's activity as it is now."""

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
