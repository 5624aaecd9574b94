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

    # Without a pointer: the region from the list, then the button (the chart takes only clicks).
    at.button(key="bodymap_place_review").click().run()
    assert "Choose a body region in the list first." in texts(at)
    box = next(s for s in at.selectbox if s.key.startswith("bodymap_region_box_review_"))
    assert box.value is None and box.format_func("upper_back") == "Upper back (torso)"
    box.set_value("upper_back").run()
    at.button(key="bodymap_place_review").click().run()
    assert not at.exception, at.exception
    assert state.body_regions[first.sha256] == "upper_back" and at.selectbox(key=f"site_{first.key}").value == "torso"
    assert "1 image(s) placed on Upper back" in texts(at)
    at.checkbox(key=f"bodymap_pick_{first.key}").check().run()

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
    chooser = next(s for s in at.selectbox if s.key.startswith("history_place_lesion_"))
    assert chooser.label.startswith("Place a lesion on the map")  # a clinician
    assert any(s.key.startswith("bodymap_region_box_history_") for s in at.selectbox)  # and without a pointer
    assert "Not on the map yet" in texts(at)  # the second image was not placed
    assert any("left_sole" not in str(df.value) and "Left sole" in str(df.value) for df in at.dataframe)


def _history_map_page():
    from types import SimpleNamespace

    from dashboard import body_map_ui

    lesions = [
        SimpleNamespace(id=7, number=1, label="left scapula", site="torso", body_region="upper_back"),
        SimpleNamespace(id=8, number=2, label="mid back", site="torso", body_region="lower_back"),
    ]
    for lesion in lesions:
        lesion.latest_p_melanoma = 0.02
    body_map_ui.history_map(lesions, 0.016, store=object(), user=SimpleNamespace(can=lambda action: True))


def test_after_a_lesion_is_moved_the_history_chooser_is_a_new_box_naming_its_new_region():
    # The browser shows a keyed box's old text when only its option labels change: the box that chose the
    # lesion would still say "Upper back" after it moved (the e2e browser test reads the box's text).
    from streamlit.testing.v1 import AppTest

    from dashboard.body_map_ui import GENERATION, LAST_PLACED

    at = AppTest.from_function(_history_map_page)
    at.session_state[GENERATION] = 3  # three placements so far; the last moved lesion 8 to the lower back
    at.session_state[LAST_PLACED] = 8
    at.run()
    assert not at.exception, at.exception
    chooser = at.selectbox(key="history_place_lesion_3")
    assert chooser.value == 8  # every lesion is placed: the one just moved stays chosen
    assert chooser.options[chooser.index] == "#2 mid back · torso · Lower back"


def _next_review_map_page():
    import streamlit as st

    from dashboard import body_map_ui
    from dashboard import components as ui

    if "started" not in st.session_state:  # the previous patient's review clicked the upper back
        st.session_state["started"] = True
        st.session_state[body_map_ui.LAST_REGION] = "upper_back"
        ui.reset_review()
    body_map_ui.review_panel(ui.review_state(), 0.016, locked=False)


def test_the_next_review_map_highlights_no_region_of_the_previous_one():
    from streamlit.testing.v1 import AppTest

    from dashboard.body_map import SELECTED_FILL

    at = AppTest.from_function(_next_review_map_page).run()
    assert not at.exception, at.exception
    [chart] = at.get("plotly_chart")
    assert "fillcolor" in chart.proto.spec and SELECTED_FILL not in chart.proto.spec


def test_a_saved_lesion_is_placed_by_region_name_through_the_store():
    from types import SimpleNamespace

    from dashboard.body_map_placement import place_saved_lesion_in

    calls = []
    store = SimpleNamespace(set_body_region=lambda lesion_id, key: calls.append((lesion_id, key)))
    lesion = SimpleNamespace(id=7, number=1, label="left scapula")
    placed = place_saved_lesion_in(store, lesion, "upper_back")
    assert calls == [(7, "upper_back")] and placed.kind == "success" and "Upper back" in placed.message
    assert place_saved_lesion_in(store, lesion, None).kind == "" and len(calls) == 1

    def refuse(lesion_id, key):
        raise ValueError("region 'left_sole' is not on the lesion's site torso")

    refused = place_saved_lesion_in(SimpleNamespace(set_body_region=refuse), lesion, "left_sole")
    assert refused.kind == "error" and refused.message.startswith("Lesion not placed: region 'left_sole'")
