"""dashboard.auth: roles and their permissions, the idle clock, a user's label (no database, no Streamlit)."""

from __future__ import annotations

import pytest

from dashboard.auth import PERMISSIONS, AccessDenied, AuthUser, IdleClock, idle_limit_s


@pytest.mark.parametrize("role", ["", "superuser", "Admin", "administrator"])
def test_a_role_the_table_does_not_name_may_do_nothing(role):
    """Fail closed: a role row the code does not know (a typo, a later version's role) grants no permission."""
    user = AuthUser(1, "dr.ada", "", role)
    every_permission = set().union(*PERMISSIONS.values())
    assert not any(user.can(p) for p in every_permission)
    with pytest.raises(AccessDenied, match=f"the {role} role may not do this"):
        user.require("patient.read")


def test_the_idle_clock_reads_the_time_it_is_given():
    """auth_ui checks with the run's own ``now``: past the limit expires, exactly at it does not."""
    clock = IdleClock(last_active=1_000.0)
    assert not clock.expired(now=1_000.0 + idle_limit_s())
    assert clock.expired(now=1_000.0 + idle_limit_s() + 1)
    assert not IdleClock(last_active=0.0).expired(now=60.0)  # not the wall clock: 0.0 is long past by it


def test_a_users_label_is_the_display_name_then_the_username():
    assert AuthUser(1, "dr.ada", "Dr Ada Lovelace", "clinician").label == "Dr Ada Lovelace (dr.ada)"
    assert AuthUser(1, "dr.ada", "", "clinician").label == "dr.ada"
