"""Overview photos on the pages (AppTest): added to a chosen lesion on the review page, not scored, saved with
the lesion and shown under it in the case history."""

from __future__ import annotations

import pytest
from test_app_pages import open_new_patient, run_triage, start, texts, upload

pytestmark = pytest.mark.timeout(300)


def test_an_overview_photo_is_added_to_a_lesion_saved_and_shown_in_the_history(app_env, patient_lesions, other_lesions):
    at = start()
    open_new_patient(at, identifier="PT-OVERVIEW-1")
    upload(at, [f.upload() for f in patient_lesions[:2]])
    state = at.session_state["review"]
    first, second = list(state.images)
    assert any(e.label.startswith("Overview photos") for e in at.expander)
    at.selectbox(key="overview_lesion").set_value(second).run()
    uploader = next(u for u in at.file_uploader if u.key.startswith("overview_uploader_"))
    uploader.set_value([other_lesions[0].upload()]).run()
    assert not at.exception, at.exception
    assert [p.filename for p in state.overviews.of(second)] == [other_lesions[0].name]
    assert state.overviews.of(first) == [] and len(state.images) == 2  # not a lesion of its own
    assert f"{state.images[second].site} · 1 overview photo(s)" in texts(at)
    at.selectbox(key=f"site_{state.images[second].key}").set_value("lower extremity").run()  # edited elsewhere
    assert not at.exception, at.exception
    assert at.selectbox(key="overview_lesion").value == second  # the box keeps its choice

    run_triage(at)
    assert len(state.result.table) == 2  # the photo was not scored
    at.button(key="save_visit").click().run()
    assert not at.exception, at.exception
    at.switch_page("views/history.py").run()
    at.text_input(key="history_search").input("PT-OVERVIEW-1").run()
    assert not at.exception, at.exception
    assert "1 overview photo(s), not scored" in texts(at)
