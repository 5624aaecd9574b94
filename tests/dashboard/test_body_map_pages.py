"""The body map on the pages (AppTest): the review's panel and pick boxes, the gallery grouped by region, the
region saved with the visit and the case history's map. The click itself is plotly's: the region a click
chooses is checked in test_body_map.py (payloads) and test_body_map_review.py (placement)."""

from __future__ import annotations

import pytest
from test_app_pages import open_new_patient, run_triage, start, texts, upload, widget

from dashboard.body_map_placement import place_selected

pytestmark = pytest.mark.timeout(300)


def _click(key):
    return {"selection": {"points": [{"curve_number": 0, "point_index": 0, "customdata": [key]}]}}


def test_review_places_images_groups_the_gallery_and_history_shows_the_map(app_env, patient_lesions):
    at = start()
    open_new_patient(at, identifier="PT-BODYMAP-1")
    upload(at, [f.upload() for f in patient_lesions[:2]])
    state = at.session_state["review"]
    first, _ = list(state.images.values())
    assert any(e.label == "Body map" for e in at.expander)
    assert len(at.get("plotly_chart")) >= 1
    pick = at.checkbox(key=f"bodymap_pick_{first.key}")
    assert pick.label == "Select for the body map"
    pick.check().run()
    assert not at.exception, at.exception
    assert "1 image(s) selected" in texts(at)

    # What the chart's on_select callback does with a click on the left sole:
    place_selected(state, _click("left_sole"), [first.sha256])
    at.session_state[f"site_{first.key}"] = first.site
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key=f"site_{first.key}").value == "palms/soles"
    assert "Left sole (palms/soles)" in texts(at)

    run_triage(at)
    widget(at.toggle, "Group by body region").set_value(True).run()
    assert not at.exception, at.exception
    page = texts(at)
    assert "Left sole" in page and "No body region" in page

    at.button(key="save_visit").click().run()
    assert not at.exception, at.exception
    assert at.session_state["review"].is_saved

    at.switch_page("views/history.py").run()
    at.text_input(key="history_search").input("PT-BODYMAP-1").run()
    assert not at.exception, at.exception
    assert any(t.label == "Body map" for t in at.tabs)
    assert at.selectbox(key="history_place_lesion").label.startswith("Place a lesion on the map")  # a clinician
    assert "Not on the map yet" in texts(at)  # the second image was not placed
    assert any("left_sole" not in str(df.value) and "Left sole" in str(df.value) for df in at.dataframe)
