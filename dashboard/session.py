"""This browser session's signed-in user, kept in ``st.session_state`` (set by auth_ui; read by the pages and by
resources.py, which makes the user's store). No database access here."""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from dashboard.auth import AuthUser, IdleClock

SESSION_KEY = "_signed_in"


class SignedIn:
    """This browser session's user and its idle clock, shared with every store made for the user: the clock
    goes with the user (``AuthUser.idle``), so a store held by a widget callback sees the session's activity as
    it is now."""

    def __init__(self, user: AuthUser, last_active: float, via: str = "password") -> None:
        self.idle = IdleClock(last_active)
        self.via = via
        self.user = user

    @property
    def user(self) -> AuthUser:
        return self._user

    @user.setter
    def user(self, user: AuthUser) -> None:
        self._user: Any = dataclasses.replace(user, idle=self.idle) if isinstance(user, AuthUser) else user

    @property
    def last_active(self) -> float:
        """``time.time()`` of the last script run the user caused (the idle check's reruns are not one)."""
        return self.idle.last_active

    @last_active.setter
    def last_active(self, value: float) -> None:
        self.idle.last_active = value


def current_session() -> SignedIn | None:
    """This browser session's ``SignedIn`` (user and idle clock), or None when no one is signed in: the one
    place that reads it from ``st.session_state``."""
    session = st.session_state.get(SESSION_KEY)
    return session if isinstance(session, SignedIn) else None


def signed_in() -> AuthUser | None:
    """The user of this browser session as checked at the start of this run (no database access)."""
    session = current_session()
    return session.user if session is not None else None
