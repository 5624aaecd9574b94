"""Access control and output safety through the real pages (AppTest): sign-in only, roles, idle expiry,
the admin's audit view, and Markdown/HTML payloads in every free-text field rendered as literal text."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.textsafe import literal

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PASSWORD = "correct horse battery staple"  # as tests/dashboard/conftest.py

pytestmark = pytest.mark.timeout(400)

# What made the browser fetch a URL, or re-styled the page, when rendered as Markdown / HTML.
IMAGE = "![x](http://h.invalid/x.png)"
HTML = "<img src=http://h.invalid/y.png>"
PAYLOAD = f"{IMAGE} {HTML} [l](http://h.invalid/l) :red[c] $x^2$ **b**"
SHORT = f"{IMAGE}{HTML}"  # fits the 64-character identifier


def _app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def _add_user(app_env, username: str, role: str, name: str = "") -> None:
    app_env.add_user(username, role, name)


def _sign_in(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    at.run()
    assert not at.exception, at.exception
    return at


def _nav_titles(at: AppTest) -> list[str]:
    return [link.label for link in at.get("navigation")[0].proto.app_pages] if at.get("navigation") else []


def _markdown_sources(at: AppTest) -> list[str]:
    """Every string of the last run that Streamlit renders as Markdown."""
    out = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "header", "subheader", "toast"):
        out += [str(e.value) for e in getattr(at, kind)]
    for kind in ("button", "checkbox", "toggle", "text_input", "text_area", "selectbox", "radio", "metric"):
        out += [str(w.label) for w in getattr(at, kind)]
    for radio in at.radio:
        out += [str(o) for o in radio.options]
    out += [str(t.label) for t in at.tabs] + [str(e.label) for e in at.expander]
    return out


def _assert_rendered_literally(at: AppTest) -> None:
    for source in _markdown_sources(at):
        active = re.sub(r"\\.", "", source)  # what is left once escaped characters are taken out
        for construct in ("![", "<img", "](http", ":red[", "$x"):
            assert construct not in active, f"{construct!r} would render in: {source!r}"


def _seed_visit(app_env, patient_lesions, identifier: str = "PT-ROLE-1") -> int:
    from dashboard.store import LesionReview, ReviewToSave

    with app_env.store() as store:
        return store.save_review(
            ReviewToSave(
                patient_identifier=identifier,
                birth_year=1970,
                sex="female",
                clinician="dr.seed",
                model_version="fresh-imagenet-lite0-128",
                model_checksum="sha256:" + "0" * 64,
                lesions=[
                    LesionReview(
                        image_bytes=f.data,
                        original_filename=f.name,
                        site=f.site,
                        lesion_label=f"L{i}",
                        p_melanoma=0.3,
                        triage_score=0.3,
                        rank=i + 1,
                        decision_action="monitor" if i == 0 else None,
                    )
                    for i, f in enumerate(patient_lesions[:2])
                ],
            )
        )


# ---------------------------------------------------------------- who sees what


def test_fresh_install_explains_how_to_create_the_first_admin(app_env):
    at = _app()
    assert [t.value for t in at.title] == ["Sign in"]
    assert "python -m dashboard.users add" in at.code[0].value and "--role admin" in at.code[0].value
    assert not at.text_input  # no form to fill in, no default password to try
    assert not at.sidebar.markdown


def test_anonymous_sees_only_the_sign_in_page(app_env, patient_lesions):
    _seed_visit(app_env, patient_lesions)
    _add_user(app_env, "dr.test", "clinician")
    at = _app()
    assert [t.value for t in at.title] == ["Sign in"]
    assert not any("PT-ROLE-1" in s for s in _markdown_sources(at))
    assert not at.get("download_button") and not at.dataframe and not at.file_uploader
    # A deep link's query string changes nothing before sign-in.
    at.query_params["patient_id"] = "1"
    at.run()
    assert [t.value for t in at.title] == ["Sign in"] and not at.dataframe
    # Wrong password: refused, audited; right password: in.
    _sign_in(at, "dr.test", "not the password at all")
    assert [t.value for t in at.title] == ["Sign in"]
    assert any("Wrong username or password" in e.value for e in at.error)
    _sign_in(at, "dr.test")
    assert at.title[0].value == "Patient review"
    with app_env.store() as store:
        assert [(e.actor, e.action) for e in store.audit_events(action="auth.")] == [
            ("dr.test", "auth.login_failed"),
            ("dr.test", "auth.login"),
        ]


def test_viewer_reads_but_cannot_review_save_or_export(app_env, patient_lesions):
    _seed_visit(app_env, patient_lesions)
    _add_user(app_env, "viewer1", "viewer")
    at = _sign_in(_app(), "viewer1")
    assert at.title[0].value == "Case history"  # a viewer's first page; Patient review does not exist for them
    at.text_input(key="history_search").input("ROLE").run()
    assert not at.exception, at.exception
    assert any("PT\\-ROLE\\-1" in m.value for m in at.markdown)
    # Whoever may read a visit may print it; exporting the whole history is for clinicians.
    assert [b.label for b in at.get("download_button")] == ["Download visit report (PDF)"]
    assert any("may view records but not export" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "save_visit"]
    with pytest.raises(Exception):  # noqa: B017 - the review page is not among the viewer's pages
        at.switch_page("views/review.py").run()
        assert at.title[0].value != "Patient review"
        raise RuntimeError("review page reachable")
    with app_env.store() as store:
        views = [(e.actor, e.action) for e in store.audit_events(actor="viewer1")]
    assert ("viewer1", "patient.view") in views and ("viewer1", "patient.search") in views


def test_a_new_patient_form_that_meets_a_stored_record_audits_the_read(app_env, patient_lesions):
    from test_app_pages import start, widget

    _seed_visit(app_env, patient_lesions, identifier="PT-CLASH-1")  # stored: born 1970, female
    at = start()
    widget(at.text_input, "Patient identifier (pseudonymous)").input("PT-CLASH-1")
    widget(at.number_input, "Birth year").set_value(1985)
    widget(at.button, "Start review").click()
    at.run()
    assert any("is already recorded with" in e.value for e in at.error)  # shows the stored birth year
    with app_env.store() as store:
        patient_id = store.find_patient_id("PT-CLASH-1")
        reads = [(e.action, e.patient_id, e.detail) for e in store.audit_events(actor="dr.test")]
    assert ("patient.view", patient_id, {"page": "review", "via": "new-patient form"}) in reads


def test_a_record_whose_view_cannot_be_audited_is_not_shown(app_env, patient_lesions, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from dashboard.user_store import UserStore

    _seed_visit(app_env, patient_lesions, identifier="PT-NOAUDIT-1")
    from test_app_pages import start

    at = start()
    at.switch_page("views/history.py").run()

    def refuse(self, action, patient_id, detail=None):
        raise OperationalError("INSERT INTO audit_event", {}, Exception("database is locked"))

    working = UserStore.record_view
    monkeypatch.setattr(UserStore, "record_view", refuse)
    at.text_input(key="history_search").input("PT-NOAUDIT").run()
    assert not at.exception, at.exception
    assert any("could not be recorded in the audit trail, so it is not shown" in e.value for e in at.error)
    assert not any("PT\\-NOAUDIT\\-1" in m.value or "PT-NOAUDIT-1" in m.value for m in at.markdown)
    assert not at.selectbox  # no patient to pick: the search result itself was not shown
    monkeypatch.setattr(UserStore, "record_view", working)
    at.run()  # the audit trail works again: the search is recorded and shown
    assert at.selectbox(key="history_patient").value.identifier == "PT-NOAUDIT-1"


def test_idle_session_expires_and_is_audited(app_env):
    _add_user(app_env, "dr.test", "clinician")
    at = _sign_in(_app(), "dr.test")
    assert at.title[0].value == "Patient review"
    at.session_state["_signed_in"].last_active -= 16 * 60  # 16 minutes without a click (limit: 15)
    at.run()
    assert [t.value for t in at.title] == ["Sign in"]
    assert any("signed out after 15 minutes" in i.value for i in at.info)
    assert "review" not in at.session_state  # nothing of the review stays in the browser session
    with app_env.store() as store:
        assert [e.action for e in store.audit_events(actor="dr.test")][-1] == "auth.session_expired"


def test_disabled_account_is_signed_out_at_its_next_click(app_env):
    from dashboard.accounts import Accounts

    _add_user(app_env, "dr.test", "clinician")
    at = _sign_in(_app(), "dr.test")
    with app_env.store() as store:
        Accounts(store).set_active("dr.test", False, actor="boss")
    at.run()
    assert [t.value for t in at.title] == ["Sign in"]
    assert any("disabled" in i.value for i in at.info)


def test_sign_out_clears_the_session(app_env):
    _add_user(app_env, "dr.test", "clinician")
    at = _sign_in(_app(), "dr.test")
    at.button(key="sign_out").click().run()
    assert [t.value for t in at.title] == ["Sign in"]
    with app_env.store() as store:
        assert [e.action for e in store.audit_events(actor="dr.test")] == ["auth.login", "auth.logout"]


def test_admin_audit_page_shows_who_did_what(app_env, patient_lesions):
    from dashboard.audit_view import audit_csv

    _seed_visit(app_env, patient_lesions)
    _add_user(app_env, "boss", "admin")
    at = _sign_in(_app(), "boss")
    at.switch_page("views/audit.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert {"review.save", "decision.record", "auth.login", "user.add"} <= set(table["action"])
    saved = table[table["action"] == "review.save"].iloc[0]
    assert saved["user"] == "dr.seed" and saved["model"] == "fresh-imagenet-lite0-128"
    at.text_input(key="audit_actor").input("dr.seed").run()
    assert set(at.dataframe[0].value["user"]) == {"dr.seed"}
    at.selectbox(key="audit_action").set_value("decision.").run()  # decisions recorded and amended
    assert list(at.dataframe[0].value["action"]) == ["decision.record"]
    assert '"action": "Monitor"' in at.dataframe[0].value["detail"].iloc[0]  # the label, not the stored code
    assert any("stored codes" in c.value for c in at.caption)  # the CSV keeps them, and the page says so
    assert [b.label for b in at.get("download_button")] == ["Download CSV"]
    with app_env.store() as store:
        csv = audit_csv(store.audit_events(actor="dr.seed"))
    frame = pd.read_csv(io.StringIO(csv))
    assert list(frame.columns) == ["time (UTC)", "user", "action", "patient id", "model", "detail"]
    assert "review.save" in set(frame["action"])
    assert '"action": "monitor"' in frame[frame["action"] == "decision.record"]["detail"].iloc[0]


ADMIN_PAGES = {"views/audit.py": "Audit log", "views/users.py": "Users"}


@pytest.mark.parametrize("role", ["clinician", "viewer"])
def test_only_admins_get_the_audit_and_users_pages(app_env, role):
    """Not in a non-admin's navigation, and each page refuses by its own role check too (defence in depth: the
    page script run directly, as a signed-in non-admin, shows the refusal and nothing of the page)."""
    from dashboard.accounts import Accounts
    from dashboard.session import SESSION_KEY, SignedIn

    _add_user(app_env, "dr.test", role)
    app = _sign_in(_app(), "dr.test")
    with app_env.store() as store:
        user = Accounts(store).authenticate("dr.test", PASSWORD)
    for page, title in ADMIN_PAGES.items():
        with pytest.raises(ValueError, match="Could not find a navigation page"):  # not registered for this role
            app.switch_page(page)
        at = AppTest.from_file(str(APP.parent / page), default_timeout=180)
        at.session_state[SESSION_KEY] = SignedIn(user, time.time())
        at.run()
        assert not at.exception, (page, at.exception)
        refusal = f"Your role ({role}) does not allow this page. Ask an administrator if you need access."
        assert [e.value for e in at.error] == [refusal], page
        assert not at.title and not at.dataframe and not at.text_input and not at.button, (page, title)


def test_admin_adds_and_disables_an_account_on_the_users_page(app_env):
    _add_user(app_env, "boss", "admin")
    at = _sign_in(_app(), "boss")
    at.switch_page("views/users.py").run()
    assert not at.exception, at.exception
    at.text_input(key="new_username").input("dr.new")
    at.text_input(key="new_display_name").input(PAYLOAD)
    at.selectbox(key="new_role").set_value("viewer")
    at.text_input(key="new_password").input(PASSWORD)
    next(b for b in at.button if b.label == "Add account").click()
    at.run()
    assert not at.exception, at.exception
    users = at.dataframe[0].value
    assert list(users["username"]) == ["boss", "dr.new"] and list(users["role"]) == ["admin", "viewer"]
    at.selectbox(key="manage_user").set_value("dr.new").run()
    at.button(key="toggle_active").click().run()
    assert not at.exception, at.exception
    assert list(at.dataframe[0].value["active"]) == [True, False]
    _assert_rendered_literally(at)


# ---------------------------------------------------------------- output safety


def test_payloads_in_every_free_text_field_render_as_text(app_env, patient_lesions):
    _add_user(app_env, "boss", "admin", name=PAYLOAD)  # display name: shown in the sidebar
    at = _sign_in(_app(), "boss")
    _assert_rendered_literally(at)

    # Identifier (the form), then a lesion label, a file name, a decision comment, the visit notes.
    next(w for w in at.text_input if w.label == "Patient identifier (pseudonymous)").input(SHORT)
    next(b for b in at.button if b.label == "Start review").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["review"].patient.identifier == SHORT
    _assert_rendered_literally(at)
    files = [(f"{IMAGE}.jpg", patient_lesions[0].data, "image/jpeg")] + [f.upload() for f in patient_lesions[1:3]]
    at.file_uploader[0].set_value(files).run()
    state = at.session_state["review"]
    assert len(state.images) == 3
    for image in state.images.values():
        at.text_input(key=f"label_{image.key}").input(PAYLOAD)
        at.run()
    at.button(key="run_triage").click().run()
    assert not at.exception, at.exception
    top = state.images[state.scored_table().iloc[0]["image_id"]]
    at.pills(key=f"decision_{top.key}").set_value("biopsy").run()
    at.text_area(key=f"comment_{top.key}").input(PAYLOAD).run()
    at.text_area(key="visit_notes").input(PAYLOAD + "\n# second line " + HTML).run()
    _assert_rendered_literally(at)
    at.button(key="save_visit").click().run()
    assert not at.exception, at.exception
    assert state.is_saved
    _assert_rendered_literally(at)
    assert any(literal(PAYLOAD) in m.value for m in at.markdown)  # shown, as text

    # The case history shows all of it back; the search text itself is a payload too.
    at.switch_page("views/history.py").run()
    at.text_input(key="history_search").input(IMAGE).run()
    assert not at.exception, at.exception
    assert any(m.value == f"##### :material/person: Case history: {literal(SHORT)}" for m in at.markdown)
    _assert_rendered_literally(at)
    at.text_input(key="history_search").input(PAYLOAD).run()  # no match: the message repeats the text
    _assert_rendered_literally(at)

    # The saliency page of a saved lesion, the review's patient search, the audit filter.
    visit_id = state.saved_visit_id
    with app_env.store() as store:
        sha = store.load_visit(visit_id).lesions[0].image.sha256
    at.query_params.update({"visit": str(visit_id), "lesion": sha[:16]})
    at.switch_page("views/saliency.py").run()
    assert not at.exception, at.exception
    _assert_rendered_literally(at)
    at.query_params.clear()
    at.switch_page("views/review.py").run()
    at.button(key="next_patient").click().run()
    next(t for t in at.tabs if t.label == "Find an existing patient")
    at.text_input(key="patient_search").input("h.invalid").run()
    assert at.radio and any(literal(SHORT) in o for o in at.radio[0].options)
    _assert_rendered_literally(at)
    at.switch_page("views/audit.py").run()
    at.text_input(key="audit_actor").input(PAYLOAD).run()
    assert not at.exception, at.exception
    _assert_rendered_literally(at)


def test_identifier_that_looks_like_a_name_and_birth_date_is_questioned(app_env):
    _add_user(app_env, "dr.test", "clinician")
    at = _sign_in(_app(), "dr.test")
    next(w for w in at.text_input if w.label == "Patient identifier (pseudonymous)").input("Jane Doe 1970-01-01")
    next(b for b in at.button if b.label == "Start review").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["review"].patient is None  # not opened yet
    warning = next(w.value for w in at.warning if "may not be pseudonymous" in w.value)
    assert "person's name" in warning and "date" in warning and "Pseudonymous means" in warning
    at.checkbox(key="pseudonym_confirm_box").check().run()
    next(b for b in at.button if b.label == "Start review").click()
    at.run()
    assert at.session_state["review"].patient.identifier == "Jane Doe 1970-01-01"


def test_user_changes_their_own_password(app_env):
    from dashboard.accounts import Accounts

    _add_user(app_env, "dr.test", "clinician")
    at = _sign_in(_app(), "dr.test")

    def change(current: str, new: str, again: str | None = None) -> None:
        at.text_input(key="pw_current").input(current)
        at.text_input(key="pw_new").input(new)
        at.text_input(key="pw_again").input(new if again is None else again)
        next(b for b in at.button if b.label == "Change password").click()
        at.run()
        assert not at.exception, at.exception

    change(PASSWORD, "a brand new passphrase", "something else entirely")
    assert any("differ" in e.value for e in at.error)
    change("not my password at all", "a brand new passphrase")
    assert any("current password is wrong" in e.value for e in at.error)
    change(PASSWORD, "a brand new passphrase")
    assert any("Password changed" in s.value for s in at.success)
    at.run()  # the change ends the account's other sessions, not this one
    assert [t.value for t in at.title] == ["Patient review"]
    with app_env.store() as store:
        assert Accounts(store).authenticate("dr.test", "a brand new passphrase").username == "dr.test"
        actions = [(e.action, e.detail.get("via")) for e in store.audit_events(actor="dr.test")]
    assert ("auth.login_failed", "password-change") in actions and ("user.change_password", None) in actions


def test_a_password_reset_by_an_administrator_ends_the_session(app_env):
    from dashboard.accounts import Accounts

    _add_user(app_env, "dr.test", "clinician")
    at = _sign_in(_app(), "dr.test")
    with app_env.store() as store:
        Accounts(store).reset_password("dr.test", "the administrator's passphrase", actor="boss")
    at.run()
    assert [t.value for t in at.title] == ["Sign in"]
    assert any("password was changed" in i.value for i in at.info)


class _ProviderUser(dict):
    """What st.user holds after an OIDC sign-in (the provider's identity cookie)."""

    is_logged_in = True


@pytest.fixture
def single_sign_on(monkeypatch):
    """Single sign-on configured, the browser carrying the provider's cookie for ada@clinic.example; st.logout
    (which would delete that cookie) recorded."""
    import streamlit as st

    from dashboard import auth_ui

    logouts: list[bool] = []
    provider = _ProviderUser(email="ada@clinic.example")
    monkeypatch.setattr(auth_ui, "sso_configured", lambda: True)
    monkeypatch.setattr(st, "user", provider)
    monkeypatch.setattr(st, "logout", lambda: logouts.append(True))
    return provider, logouts


def test_single_sign_on_sign_out_also_ends_the_provider_login(app_env, single_sign_on):
    _provider, logouts = single_sign_on
    _add_user(app_env, "ada@clinic.example", "clinician")
    at = _app()
    assert [t.value for t in at.title] == ["Patient review"]
    at.button(key="sign_out").click().run()
    assert logouts == [True]  # the identity cookie goes too, or the next run signs straight back in


def test_single_sign_on_idle_expiry_also_ends_the_provider_login(app_env, single_sign_on):
    _provider, logouts = single_sign_on
    _add_user(app_env, "ada@clinic.example", "clinician")
    at = _app()
    at.session_state["_signed_in"].last_active -= 16 * 60
    at.run()
    assert logouts == [True]


def test_single_sign_on_refuses_an_e_mail_the_provider_has_not_verified(app_env, single_sign_on):
    provider, logouts = single_sign_on
    provider["email_verified"] = False
    _add_user(app_env, "ada@clinic.example", "admin")
    at = _app()
    assert [t.value for t in at.title] == ["Sign in"]
    assert logouts == [True]
    with app_env.store() as store:
        assert [e.action for e in store.audit_events(action="auth.")] == []
