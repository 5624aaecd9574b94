"""Saving a visit (issue 12, speed): the click asks for the save, the next run saves first and draws the page
once, read-only. Whatever else the clinician changed in the same interaction is saved with it."""

from __future__ import annotations

import pytest
from test_app_pages import review_to_results, shown, start

pytestmark = pytest.mark.timeout(300)


def test_a_comment_typed_just_before_save_is_saved_and_the_page_is_read_only_at_once(app_env, patient_lesions):
    at = start()
    review_to_results(at, patient_lesions[:3])
    state = at.session_state["review"]
    top = state.images[state.scored_table().iloc[0]["image_id"]]
    at.pills(key=f"decision_{top.key}").set_value("excise").run()

    # One interaction: the comment box and the notes still hold unsent text when "Save visit" is clicked.
    at.text_area(key=f"comment_{top.key}").input("irregular network")
    at.text_area(key="visit_notes").input("recheck in 3 months")
    at.button(key="save_visit").click()
    at.run()

    assert not at.exception, at.exception
    assert state.is_saved
    assert any("This review is now read-only" in shown(s.value) for s in at.success)  # this run, no second one
    assert not [b for b in at.button if b.key == "save_visit"]
    assert [t.value for t in at.toast if "Saved as visit" in t.value]
    assert any("Saved as visit" in s.value for s in at.sidebar.success)  # the sidebar, drawn before the page, too
    with app_env.store() as store:
        visit = store.load_visit(state.saved_visit_id)
    assert visit.notes == "recheck in 3 months"
    saved_top = next(les for les in visit.lesions if les.image.sha256 == top.sha256)
    assert (saved_top.decision.action, saved_top.decision.comment) == ("excise", "irregular network")


def test_a_failed_save_says_why_under_the_button_and_keeps_the_review(app_env, patient_lesions, monkeypatch):
    at = start()
    review_to_results(at, patient_lesions[:3])
    state = at.session_state["review"]

    from dashboard.user_store import UserStore

    def unavailable(self, review):
        raise ConnectionError("database went away")

    monkeypatch.setattr(UserStore, "save_review", unavailable)
    at.button(key="save_visit").click()
    at.run()

    assert not at.exception, at.exception
    assert not state.is_saved
    assert any("The visit was not saved (database error: ConnectionError)" in shown(e.value) for e in at.error)
    assert [b for b in at.button if b.key == "save_visit"]  # still there, to try again
