"""Sign-in for the Streamlit pages: the login page, the signed-in session, idle expiry, role checks.

The account logic (hashing, rate limit, audit) is in ``dashboard.accounts`` and ``dashboard.passwords``; this module
only keeps the signed-in user in ``st.session_state`` (``dashboard.session``) and enforces, on every script run:

- no session: only the sign-in page exists (every URL, deep links included, shows it);
- idle longer than ``TRIAGE_IDLE_TIMEOUT_MINUTES`` (default 15): signed out, audited, state cleared; the
  store calls of widget callbacks and deferred downloads, which run before the page script or without it, are
  refused from the moment the limit passes (the session's ``IdleClock`` travels with its user to the store);
- the account disabled, its password changed (or its role changed) meanwhile: applied at the next
  interaction, and to every store call before it (``user_store.UserStore``).

Optional single sign-on: when ``.streamlit/secrets.toml`` has an ``[auth]`` section, a "Sign in with
single sign-on" button calls ``st.login()`` (OIDC); the provider's e-mail must be the username of an active
local account, whose role applies. An e-mail the provider says is unverified (``email_verified`` false) is
refused; providers that send no such claim (a clinic's own directory, e.g. Entra ID) are trusted. Signing out
and idle expiry also end the single sign-on login (``st.logout()``: the identity cookie is deleted), so the
next visit goes through the provider again rather than back in on the old cookie.
"""

from __future__ import annotations

import logging
import time

import streamlit as st

from dashboard import resources
from dashboard.accounts import Accounts
from dashboard.auth import AccessDenied, AuthUser, LoginFailed, idle_sign_out_message
from dashboard.errors import STORE_ERRORS, log_swallowed
from dashboard.session import SESSION_KEY, SignedIn, current_session, signed_in
from dashboard.textsafe import literal

logger = logging.getLogger(__name__)
NOTICE_KEY = "_sign_in_notice"
SESSION_ENDED = (
    "Your session has ended: your account was disabled or its password was changed. "
    "Sign in again, or ask an administrator."
)
BOOTSTRAP_COMMAND = ".venv/bin/python -m dashboard.users add YOUR-USERNAME --role admin --name 'Your Name'"


def sign_in(accounts: Accounts, username: str, password: str) -> AuthUser:
    """Check the credentials (audited, rate-limited) and start the session; raises LoginFailed."""
    user = accounts.authenticate(username, password)
    _start(user, "password")
    return user


def _start(user: AuthUser, via: str) -> None:
    # A new session starts clean: nothing of a previous user's work stays in this browser tab.
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.session_state[SESSION_KEY] = SignedIn(user, time.time(), via)


def sign_out(accounts: Accounts | None, action: str = "auth.logout", notice: str | None = None) -> None:
    session = current_session()
    if session is not None and accounts is not None:
        try:
            accounts.record(session.user, action)
        except STORE_ERRORS as exc:  # signing out must work even when the audit write fails; the log says so
            log_swallowed(logger, f"the audit entry for {action}", exc)
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if notice:
        st.session_state[NOTICE_KEY] = notice
    if session is not None and session.via == "sso" and sso_configured():
        # Without this the provider's identity cookie signs the browser straight back in on the next run.
        # st.logout starts a new browser session, so a notice above does not survive it.
        st.logout()


def current_user(accounts: Accounts) -> AuthUser | None:
    """Validate this run's session (idle time, account still active); None means: show the sign-in page."""
    session = current_session()
    if session is None:
        return _sso_user(accounts)
    now = time.time()
    if session.idle.expired(now):
        sign_out(accounts, "auth.session_expired", idle_sign_out_message())
        return None
    fresh = accounts.current(session.user)
    if fresh is None:
        sign_out(accounts, "auth.session_revoked", SESSION_ENDED)
        return None
    session.user = fresh
    session.last_active = now
    return fresh


def renew(user: AuthUser) -> None:
    """This session goes on as ``user`` (after the user's own password change, which ends the others)."""
    session = current_session()
    if session is not None:
        session.user = user


def idle_expired() -> bool:
    session = current_session()
    return session is not None and session.idle.expired()


def require(permission: str) -> AuthUser:
    """For page scripts: the signed-in user if the role allows ``permission``, else a clear stop."""
    user = signed_in()
    if user is None:
        st.error("Sign in first.", icon=":material/lock:")
        st.stop()
        raise AssertionError("unreachable")
    try:
        user.require(permission)
    except AccessDenied:
        st.error(
            f"Your role ({user.role}) does not allow this page. Ask an administrator if you need access.",
            icon=":material/lock:",
        )
        st.stop()
        raise AssertionError("unreachable") from None
    return user


# ---------------------------------------------------------------- single sign-on (optional)


def sso_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets.toml (Streamlit's StreamlitSecretNotFoundError is one)
        return False


def _sso_user(accounts: Accounts) -> AuthUser | None:
    if not sso_configured():
        return None
    try:
        logged_in = bool(st.user.is_logged_in)
    except Exception as exc:  # broad on purpose: an incomplete [auth] section fails inside Streamlit's OIDC
        # code in many ways; the password sign-in must still work, and the log says why SSO did not
        log_swallowed(logger, "reading the single sign-on user", exc)
        return None
    if not logged_in:
        return None
    email = str(st.user.get("email") or "")
    try:
        if st.user.get("email_verified") is False:
            raise LoginFailed("Your single sign-on provider has not verified this e-mail address.")
        user = accounts.sso_user(email)
    except (LoginFailed, ValueError) as exc:
        st.session_state[NOTICE_KEY] = str(exc)
        st.logout()
        return None
    _start(user, "sso")
    return user


# ---------------------------------------------------------------- the page


def login_page() -> None:
    st.title("Sign in")
    st.caption("Melanoma triage — patient records. Authorised clinic staff only; every access is recorded.")
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(literal(notice), icon=":material/info:")
    accounts = resources.get_accounts()  # stops with a clear page when the database cannot be opened
    if not accounts.has_users():
        st.warning(
            "No accounts exist yet. The dashboard ships no default account or password: an administrator "
            "creates the first one on the server, in the project folder, then signs in here.",
            icon=":material/person_add:",
        )
        st.code(BOOTSTRAP_COMMAND, language="bash")
        st.caption("Further accounts: `python -m dashboard.users add NAME --role clinician|viewer|admin`.")
        return
    with st.form("sign_in", border=True, clear_on_submit=True):  # the password is not kept in the session
        username = st.text_input("Username", key="login_username", autocomplete="username")
        password = st.text_input("Password", type="password", key="login_password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary", icon=":material/login:")
    if submitted:
        try:
            sign_in(accounts, username, password)
        except LoginFailed as exc:
            st.error(str(exc), icon=":material/lock:")
        else:
            st.rerun()
    if sso_configured():
        st.button("Sign in with single sign-on", icon=":material/key:", on_click=st.login, key="sso_login")
