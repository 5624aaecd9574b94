"""Review page: the "Follow-up of" dropdown always shows what the review holds (issue 12, bug 2)."""

from __future__ import annotations

import datetime as dt

import pytest
from test_app_pages import shown, start, upload

from dashboard.store import LesionReview, ReviewToSave

pytestmark = pytest.mark.timeout(300)

PATIENT = "PT-FOLLOWUP-7"


def _saved_first_visit(app_env, lesions) -> None:
    review = ReviewToSave(
        patient_identifier=PATIENT,
        birth_year=1970,
        sex="male",
        clinician="dr.test",
        visit_time=dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC),
        model_version="m-test",
        model_checksum="abc",
        lesions=[
            LesionReview(
                image_bytes=f.data,
                original_filename=f.name,
                site=f.site if f.site != "unknown" else "torso",
                lesion_label=f"mole {i + 1}",
                p_melanoma=0.02 * (i + 1),
                triage_score=0.1,
                rank=i + 1,
            )
            for i, f in enumerate(lesions)
        ],
    )
    with app_env.store() as store:
        store.save_review(review)


def test_follow_up_dropdown_shows_the_linked_lesion_and_new_lesion(app_env, patient_lesions):
    _saved_first_visit(app_env, patient_lesions[:2])
    at = start()
    at.text_input(key="patient_search").input(PATIENT).run()
    at.button(key="open_patient").click().run()
    state = at.session_state["review"]
    assert len(state.patient.known_lesions) == 2

    repeat, new_photo = patient_lesions[0], patient_lesions[3]
    upload(at, [repeat.upload(), new_photo.upload()])
    assert any("already saved at the visit of" in shown(i.value) for i in at.info)
    by_name = {img.filename: img for img in state.images.values()}
    linked_id = by_name[repeat.name].existing_lesion_id
    assert linked_id is not None

    linked_box = at.selectbox(key=f"link_{by_name[repeat.name].key}_{linked_id}")
    new_box = at.selectbox(key=f"link_{by_name[new_photo.name].key}_0")
    # What the browser shows: the proto's default index (and a session-state value, when one is sent).
    # Never the empty "Choose an option" of a None value, never an option other than the review's link.
    for box, expected in ((linked_box, f"#{linked_id} mole"), (new_box, "New lesion (first time seen)")):
        assert box.proto.HasField("default"), box.proto
        assert box.proto.options[box.proto.default].startswith(expected)
        if box.proto.HasField("raw_value"):
            assert box.proto.raw_value.startswith(expected)
        assert box.proto.options[box.index].startswith(expected)

    # Changing the link draws the box for the new link; "New lesion" unlinks.
    at.selectbox(key=f"link_{by_name[new_photo.name].key}_0").set_value(2).run()
    assert by_name[new_photo.name].existing_lesion_id == 2
    box = at.selectbox(key=f"link_{by_name[new_photo.name].key}_2")
    assert box.proto.options[box.proto.default].startswith("#2 mole")
    box.set_value(0).run()
    assert by_name[new_photo.name].existing_lesion_id is None
    box = at.selectbox(key=f"link_{by_name[new_photo.name].key}_0")
    assert box.proto.options[box.proto.default] == "New lesion (first time seen)"
    assert not at.exception, at.exception


def test_a_saved_visit_shows_the_spread_the_ugly_duckling_badge_and_the_orientation_caveat(app_env, patient_lesions):
    review = ReviewToSave(
        patient_identifier=PATIENT,
        birth_year=1970,
        sex="male",
        clinician="dr.test",
        visit_time=dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC),
        model_version="m-test",
        model_checksum="abc",
        lesions=[
            LesionReview(
                image_bytes=patient_lesions[0].data,
                original_filename="a.jpg",
                site="torso",
                lesion_label="odd mole",
                p_melanoma=0.86,
                p_spread=0.031,
                tta_views=8,
                outlier=True,
                ugly_duckling=3.1,
                triage_score=0.9,
                rank=1,
            )
        ],
    )
    with app_env.store() as store:
        store.save_review(review)
    at = start()
    at.switch_page("views/history.py").run()
    at.text_input(key="history_search").input(PATIENT).run()
    assert not at.exception, at.exception
    page = "\n".join(shown(m.value) for m in at.markdown) + "\n" + "\n".join(c.value for c in at.caption)
    assert "(80%–92% across orientations)" in page  # the interval the bar draws, in words
    assert "across 8 orientations" in page and "orientation" in page
    assert "Ugly duckling" in page  # st.badge is Markdown


def test_a_page_about_another_patient_says_so(app_env, patient_lesions):
    """Bug 5: the sidebar's unsaved review (patient B) and Case history (patient A) must not look alike."""
    _saved_first_visit(app_env, patient_lesions[:1])  # patient A = PATIENT, in the store
    at = start()
    from test_app_pages import open_new_patient

    open_new_patient(at, "PT-OTHER-B", 1980, "female")
    upload(at, [patient_lesions[1].upload()])
    sidebar = "\n".join(shown(w.value) for w in at.sidebar.warning)
    assert "PT-OTHER-B" in sidebar and "not triaged or saved" in sidebar
    # On the review page itself the sidebar does not send you to the page you are on.
    assert "Return to Patient review" not in sidebar
    assert "Reviewing: PT-OTHER-B" in "\n".join(shown(m.value) for m in at.markdown)

    at.switch_page("views/history.py").run()
    at.text_input(key="history_search").input(PATIENT).run()
    assert not at.exception, at.exception
    assert f"Case history: {PATIENT}" in "\n".join(shown(m.value) for m in at.markdown)
    warnings = [shown(w.value) for w in at.main.warning]
    assert any(f"shows patient {PATIENT}" in w and "PT-OTHER-B (not saved)" in w for w in warnings), warnings
    assert any("Return to Patient review" in shown(w.value) for w in at.sidebar.warning)


def test_uploader_limit_and_the_discard_question(app_env, patient_lesions):
    from test_app_pages import open_new_patient

    at = start()
    open_new_patient(at, "PT-UPLOAD-9", 1980, "female")
    # Streamlit's caption under the drop zone states the widget's limit: the app's 30 MB, not the server's 500.
    assert at.get("file_uploader")[0].proto.max_upload_size_mb == 30
    upload(at, [patient_lesions[0].upload()])
    at.button(key="new_patient").click().run()
    assert not at.exception, at.exception
    # Discarding unsaved work is not the highlighted (primary) button; keeping it is.
    assert at.button(key="confirm_discard").proto.type != "primary"
    assert at.button(key="cancel_discard").proto.type == "primary"


def test_a_reload_offers_to_resume_the_review_kept_on_the_server(app_env, patient_lesions):
    """Bug 6: a reload (a new session, signed in again) gets back images, sites, labels and decisions."""
    from test_app_pages import open_new_patient

    at = start()
    open_new_patient(at, "PT-DRAFT-3", 1975, "male")
    upload(at, [patient_lesions[0].upload(), patient_lesions[1].upload()])
    state = at.session_state["review"]
    first, second = list(state.images.values())
    at.selectbox(key=f"site_{first.key}").set_value("torso").run()
    at.text_input(key=f"label_{second.key}").input("left calf").run()
    assert not at.exception, at.exception
    with app_env.store() as store:
        draft = store.load_draft("dr.test")
    assert draft is not None and len(draft.images) == 2

    reloaded = start()  # the browser tab reloaded: a new session, the same user
    assert reloaded.session_state["review"].patient is None
    offer = "\n".join(shown(m.value) for m in reloaded.markdown)
    assert "An unsaved review of PT-DRAFT-3 (2 image(s))" in offer
    reloaded.button(key="draft_resume").click().run()
    assert not reloaded.exception, reloaded.exception
    resumed = reloaded.session_state["review"]
    assert resumed.patient.identifier == "PT-DRAFT-3" and resumed.patient.birth_year == 1975
    assert [(img.filename, img.site, img.label) for img in resumed.images.values()] == [
        (first.filename, "torso", first.label),
        (second.filename, second.site, "left calf"),
    ]
    assert "Reviewing: PT-DRAFT-3" in "\n".join(shown(m.value) for m in reloaded.markdown)

    # Discarding the review (New patient… → Discard) deletes the kept draft too.
    reloaded.button(key="new_patient").click().run()
    reloaded.button(key="confirm_discard").click().run()
    assert reloaded.session_state["review"].patient is None
    # and is not offered back at once ("Resume it?" right after "Discard": the accessibility re-check)
    assert "An unsaved review of" not in "\n".join(shown(m.value) for m in reloaded.markdown)
    assert not [b for b in reloaded.button if b.key == "draft_resume"]
    with app_env.store() as store:
        assert store.load_draft("dr.test") is None


def test_an_image_saved_for_another_patient_is_flagged_on_upload(app_env, patient_lesions):
    """A photo belongs to one patient's lesion: saved for another patient, the review is probably of the wrong
    patient or the files are mixed up. Warned (not refused: the earlier save may be the mistake), without
    naming the other patient (accessibility and wording audit)."""
    from test_app_pages import open_new_patient

    _saved_first_visit(app_env, patient_lesions[:1])  # saved for PATIENT
    at = start()
    open_new_patient(at, identifier="PT-SOMEONE-ELSE")
    upload(at, [patient_lesions[0].upload(), patient_lesions[3].upload()])
    assert not at.exception, at.exception
    warnings = [shown(w.value) for w in at.warning if "another patient" in w.value]
    assert len(warnings) == 1 and patient_lesions[0].name in warnings[0]
    assert PATIENT not in warnings[0]
    assert len(at.session_state["review"].images) == 2  # kept: the clinician decides

    # After a reload the resumed review warns again (the warning lived only in the tab that uploaded).
    reloaded = start()
    reloaded.button(key="draft_resume").click().run()
    assert not reloaded.exception, reloaded.exception
    assert [w for w in reloaded.warning if "another patient" in w.value]

    # The patient the photo was saved for gets no such warning: it is linked to its lesion instead.
    at = start()
    at.text_input(key="patient_search").input(PATIENT).run()
    at.button(key="open_patient").click().run()
    upload(at, [patient_lesions[0].upload()])
    assert not [w for w in at.warning if "another patient" in w.value]


def test_the_store_finds_an_image_under_other_patients_only(app_env, patient_lesions):
    _saved_first_visit(app_env, patient_lesions[:1])
    from data.hashing import sha256_bytes

    digest = sha256_bytes(patient_lesions[0].data)
    with app_env.store() as store:
        owner = store.find_patient_id(PATIENT)
        assert store.images_saved_for_other_patients([digest, "0" * 64], owner + 1) == {digest}
        assert store.images_saved_for_other_patients([digest], owner) == set()
        assert store.images_saved_for_other_patients([digest], None) == {digest}
