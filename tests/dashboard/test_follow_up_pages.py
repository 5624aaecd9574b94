"""Same mole, side by side (issue 12), through the pages: the follow-up picker with thumbnails on Patient
review, the comparison view and the score-rise flag on Case history."""

from __future__ import annotations

import datetime as dt

import pytest
from test_app_pages import shown, start, texts, upload

from dashboard.follow_up_picker import PICKER_FOR
from dashboard.store import LesionReview, ReviewToSave

pytestmark = pytest.mark.timeout(300)

PATIENT = "PT-SIDE-BY-SIDE-3"


def _save_visit(app_env, when: dt.datetime, lesions: list[LesionReview]) -> None:
    with app_env.store() as store:
        store.save_review(
            ReviewToSave(
                patient_identifier=PATIENT,
                birth_year=1966,
                sex="female",
                clinician="dr.test",
                visit_time=when,
                model_version="m-test",
                model_checksum="abc",
                lesions=lesions,
            )
        )


def _lesion(file, label: str, site: str, p: float, spread: float, rank: int, existing: int | None = None):
    return LesionReview(
        image_bytes=file.data,
        original_filename=file.name,
        site=site,
        lesion_label=label,
        existing_lesion_id=existing,
        p_melanoma=p,
        p_spread=spread,
        tta_views=2,
        triage_score=p,
        rank=rank,
    )


def _three_known_lesions_reopened(app_env, patient_lesions):
    """A first visit with three lesions on three sites, and the patient opened for a new review."""
    arm, head, torso = patient_lesions[0], patient_lesions[1], patient_lesions[2]
    _save_visit(
        app_env,
        dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC),
        [
            _lesion(arm, "left forearm", "upper extremity", 0.01, 0.002, 3),
            _lesion(head, "temple", "head/neck", 0.02, 0.002, 2),
            _lesion(torso, "left scapula", "torso", 0.03, 0.002, 1),
        ],
    )
    at = start()
    at.text_input(key="patient_search").input(PATIENT).run()
    at.button(key="open_patient").click().run()
    return at, at.session_state["review"]


def test_picker_shows_thumbnails_filters_by_site_and_links_the_chosen_lesion(app_env, patient_lesions):
    at, state = _three_known_lesions_reopened(app_env, patient_lesions)
    new_photo = patient_lesions[3]  # a new photograph of (say) the scapula mole
    upload(at, [new_photo.upload()])
    image = next(iter(state.images.values()))
    assert image.existing_lesion_id is None

    at.button(key=f"pick_thumbs_{image.key}").click().run()
    assert not at.exception, at.exception
    assert at.session_state[PICKER_FOR] == image.sha256
    pick_buttons = [b for b in at.button if b.key and b.key.startswith(f"pick_{image.key}_")]
    assert len(pick_buttons) == 3  # the image's site is unknown: every known lesion is offered
    page = texts(at)
    assert "last seen 2026-03-02 (visit 1)" in page and "P(melanoma) 3.0% (2.6%–3.4% across orientations)" in page
    assert len(at.image) >= 5  # the grid's and the dialog's image of this upload + one thumbnail per known lesion

    at.segmented_control(key=f"pick_site_{image.key}").set_value("torso").run()
    offered = [b.key for b in at.button if b.key and b.key.startswith(f"pick_{image.key}_")]
    known = {les.label: les.id for les in state.patient.known_lesions}
    assert offered == [f"pick_{image.key}_{known['left scapula']}"]

    at.button(key=f"pick_{image.key}_{known['left scapula']}").click().run()
    assert not at.exception, at.exception
    assert image.existing_lesion_id == known["left scapula"] and image.site == "torso"
    assert PICKER_FOR not in at.session_state
    # The "Follow-up of" box is drawn for the new link, showing it.
    box = at.selectbox(key=f"link_{image.key}_{known['left scapula']}")
    assert box.proto.options[box.proto.default].startswith("#3 left scapula")

    at.button(key=f"pick_thumbs_{image.key}").click().run()
    at.button(key=f"pick_new_{image.key}").click().run()
    assert image.existing_lesion_id is None


def test_picker_puts_the_lesion_whose_photo_looks_alike_first_and_can_be_turned_off(app_env, patient_lesions):
    import io

    from PIL import Image

    at, state = _three_known_lesions_reopened(app_env, patient_lesions)
    again = io.BytesIO()  # the temple mole's photo again, as a PNG export: other bytes, the same picture
    Image.open(io.BytesIO(patient_lesions[1].data)).save(again, format="PNG")
    upload(at, [("temple-again.png", again.getvalue(), "image/png")])
    image = next(iter(state.images.values()))
    known = {les.label: les.id for les in state.patient.known_lesions}

    at.button(key=f"pick_thumbs_{image.key}").click().run()
    assert not at.exception, at.exception
    offered = [b.key for b in at.button if b.key and b.key.startswith(f"pick_{image.key}_")]
    assert offered[0] == f"pick_{image.key}_{known['temple']}" and len(offered) == 3
    page = texts(at)
    assert "Most alike" in page and "2nd most alike" in page and "3rd most alike" in page
    assert "was not measured for this model" in page  # the test checkpoint carries no lesion_matching

    at.toggle(key=f"pick_alike_{image.key}").set_value(False).run()
    offered = [b.key for b in at.button if b.key and b.key.startswith(f"pick_{image.key}_")]
    assert offered == [f"pick_{image.key}_{known[label]}" for label in ("left forearm", "temple", "left scapula")]
    assert "Most alike" not in texts(at)


def test_history_compares_two_visits_side_by_side_and_flags_the_rise(app_env, patient_lesions):
    mole, other = patient_lesions[2], patient_lesions[0]
    _save_visit(
        app_env,
        dt.datetime(2026, 1, 10, 9, tzinfo=dt.UTC),
        [
            _lesion(mole, "left scapula", "torso", 0.010, 0.001, 1),
            _lesion(other, "forearm", "upper extremity", 0.02, 0.002, 2),
        ],
    )
    with app_env.store() as store:
        patient_id = store.search_patients(PATIENT)[0].id
        lesions = {les.label: les.id for les in store.list_lesions(patient_id)}
    _save_visit(
        app_env,
        dt.datetime(2026, 7, 10, 9, tzinfo=dt.UTC),
        [
            _lesion(patient_lesions[3], "left scapula", "torso", 0.090, 0.002, 1, lesions["left scapula"]),
            _lesion(patient_lesions[0], "forearm", "upper extremity", 0.021, 0.002, 2, lesions["forearm"]),
        ],
    )
    at = start()
    at.query_params["patient_id"] = str(patient_id)
    at.switch_page("views/history.py").run()
    assert not at.exception, at.exception
    summary = "\n".join(shown(w.value) for w in at.main.warning)
    assert "#1 left scapula (1.0% → 9.0%)" in summary and "forearm" not in summary  # 2.0% → 2.1% is no rise

    # Compare visits: the flagged lesion is offered first, its two visits side by side at one display size.
    assert "left scapula" in at.selectbox(key="compare_lesion").value.label
    scapula = lesions["left scapula"]
    assert at.select_slider(key=f"compare_visits_history_{scapula}").value == (0, 1)
    page = texts(at)
    assert "Score rose 1.0% → 9.0% (flagged at odds of melanoma ×6 or more)" in page
    assert _image_captions(at)[:2] == [
        "visit 1 · 2026-01-10 — P(melanoma) 1.0% (0.8%–1.2% across orientations)",
        "visit 2 · 2026-07-10 — P(melanoma) 9.0% (8.6%–9.4% across orientations)",
    ]
    assert "true physical scale is unknown" in page
    assert any(c.proto.id for c in at.get("plotly_chart"))

    at.segmented_control(key=f"compare_view_history_{scapula}").set_value("Difference").run()
    assert not at.exception, at.exception
    notes = "\n".join(shown(w.value) for w in [*at.main.info, *at.main.warning])
    assert "alignment" in notes.lower() or "could not be aligned" in notes


def _image_captions(at) -> list[str]:
    return [caption for element in at.image for caption in _captions(element) if caption]


def _captions(element) -> list[str]:
    return [img.caption for img in element.proto.imgs]


def test_a_follow_up_card_in_the_gallery_compares_the_upload_with_the_saved_images(app_env, patient_lesions):
    mole = patient_lesions[2]
    _save_visit(
        app_env, dt.datetime(2026, 2, 1, 9, tzinfo=dt.UTC), [_lesion(mole, "left scapula", "torso", 0.01, 0.001, 1)]
    )
    at = start()
    at.text_input(key="patient_search").input(PATIENT).run()
    at.button(key="open_patient").click().run()
    state = at.session_state["review"]
    upload(at, [mole.upload(), patient_lesions[0].upload()])  # the same photograph again: linked by itself
    by_name = {img.filename: img for img in state.images.values()}
    assert by_name[mole.name].existing_lesion_id is not None
    at.button(key="run_triage").click().run()
    assert not at.exception, at.exception
    compare = f"compare_open_{by_name[mole.name].key}"
    assert compare in [b.key for b in at.button]
    assert f"compare_open_{by_name[patient_lesions[0].name].key}" not in [b.key for b in at.button]  # a new lesion

    at.button(key=compare).click().run()
    assert not at.exception, at.exception
    captions = _image_captions(at)
    assert any(c.startswith("visit 1 · ") for c in captions)
    assert any(c.startswith("this visit (not saved yet) — P(melanoma)") for c in captions)
    assert "true physical scale is unknown" in texts(at)
