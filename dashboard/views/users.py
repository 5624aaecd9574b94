"""Users (admins): the local accounts — add, disable/enable, change role, set a new password."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from dashboard import auth_ui, resources
from dashboard.passwords import MIN_PASSWORD_LENGTH
from dashboard.store.models import ROLES
from dashboard.textsafe import literal

admin = auth_ui.require("users.manage")
accounts = resources.get_accounts()

st.title("Users")
st.caption(
    "Viewers read records; clinicians also review, save and export; admins also manage accounts and read the "
    "audit log. Accounts are never deleted (the audit trail names them): disable them instead. "
    "The same is possible on the server: `python -m dashboard.users --help`."
)
users = accounts.list()
st.dataframe(
    pd.DataFrame(
        [
            {
                "username": u.username,
                "name": u.display_name,
                "role": u.role,
                "active": u.active,
                "last sign-in (UTC)": u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never",
            }
            for u in users
        ]
    ),
    hide_index=True,
    key="users_table",
)


def _done(message: str) -> None:
    st.toast(literal(message), icon=":material/check_circle:")


def _apply(change: Callable[[], None], message: str, rerun: bool = True) -> None:
    """One account change: its refusal shown (e.g. the last active administrator), else done and the page redrawn."""
    try:
        change()
    except ValueError as exc:
        st.error(literal(exc))
        return
    _done(message)
    if rerun:
        st.rerun()


left, right = st.columns(2)
with left, st.form("add_user", clear_on_submit=True):
    st.markdown("**Add an account**")
    username = st.text_input("Username", key="new_username", help="letters a-z, digits, . _ - @")
    name = st.text_input("Display name", key="new_display_name", placeholder="Dr A. Example")
    role = st.selectbox("Role", ROLES, index=ROLES.index("clinician"), key="new_role")
    password = st.text_input(
        f"Initial password (at least {MIN_PASSWORD_LENGTH} characters)", type="password", key="new_password"
    )
    if st.form_submit_button("Add account", type="primary", icon=":material/person_add:"):
        try:
            accounts.add(username, password, role, name, actor=admin.username)
        except ValueError as exc:
            st.error(literal(exc))
        else:
            _done(f"Account {username.strip().lower()} created.")
            st.rerun()

with right, st.container(border=True):
    st.markdown("**Change an account**")
    if not users:
        st.stop()
    chosen = st.selectbox("Account", [u.username for u in users], key="manage_user")
    current = next(u for u in users if u.username == chosen)
    c1, c2 = st.columns(2)
    if current.username == admin.username:
        c1.caption("You cannot disable or demote your own account.")
    else:
        if c1.button(
            "Disable" if current.active else "Enable",
            key="toggle_active",
            icon=":material/block:" if current.active else ":material/check:",
        ):
            _apply(
                lambda: accounts.set_active(current.username, not current.active, actor=admin.username),
                f"{current.username} {'disabled' if current.active else 'enabled'}.",
            )
        new_role = c2.selectbox("Role", ROLES, index=ROLES.index(current.role), key="manage_role")
        if new_role != current.role and c2.button("Change role", key="change_role"):
            _apply(
                lambda: accounts.set_role(current.username, new_role, actor=admin.username),
                f"{current.username} is now {new_role}.",
            )
    with st.form("reset_password", clear_on_submit=True):
        new_password = st.text_input("New password", type="password", key="reset_password_value")
        if st.form_submit_button("Set new password", icon=":material/password:"):
            _apply(
                lambda: accounts.reset_password(current.username, new_password, actor=admin.username),
                f"New password set for {current.username}.",
                rerun=False,
            )
