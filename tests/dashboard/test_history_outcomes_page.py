"""Case history page after saving (AppTest): the visit date as taken, amending a decision with a reason,
recording histology, the outcomes list and its pseudonymous download; a viewer sees no forms."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

from PIL import Image
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PASSWORD = "correct horse battery staple"  # as tests/dashboard/conftest.py

IDENT = "PT-OUTCOMES-PAGE"


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 40), (seed * 60 % 256, 120, 30 + seed)).save(buf, format="PNG")
    return buf.getvalue()


def _saved_visit(app_env) -> int:
    with app_env.store() as store:
        return save_visit(store)


def save_visit(store, actions: tuple[str | None, str | None] = ("monitor", "monitor")) -> int:
    """A visit of IDENT with two lesions (decided "monitor" unless told; None = undecided; images taken
    2024-09-30), saved; the patient's id."""
    from dashboard.store import LesionReview, ReviewToSave

    visit_id = store.save_review(
        ReviewToSave(
            patient_identifier=IDENT,
            birth_year=1971,
            sex="male",
            clinician="dr.first",
            taken_on=dt.date(2024, 9, 30),
            model_version="m-1",
            model_checksum="c",
            lesions=[
                LesionReview(
                    image_bytes=_png(k),
                    site="torso",
                    lesion_label=label,
                    p_melanoma=p,
                    triage_score=p,
                    rank=k + 1,
                    decision_action=action,
                )
                for k, ((label, p), action) in enumerate(
                    zip((("left scapula", 0.62), ("navel", 0.05)), actions, strict=True)
                )
            ],
        )
    )
    return store.load_visit(visit_id).patient_id


def _history(app_env, username: str, role: str) -> AppTest:
    app_env.add_user(username, role)
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(PASSWORD)
    next(b for b in at.button if b.label == "Sign in").click().run()
    at.switch_page("views/history.py").run()
    at.text_input(key="history_search").input(IDENT).run()
    assert not at.exception, at.exception
    return at


def _outcomes(at: AppTest):
    """The outcomes table (AppTest does not expose a dataframe's key: found by its columns)."""
    return next(d.value for d in at.dataframe if "latest image" in d.value.columns)


def _texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "error", "success", "info"):
        parts += [re.sub(r"\\(.)", r"\1", str(e.value)) for e in getattr(at, kind)]
    return "\n".join(parts)


def _by_prefix(widgets, prefix):
    """The one widget whose key starts with ``prefix`` (a form's keys carry how often it was saved)."""
    [widget] = [w for w in widgets if w.key and w.key.startswith(prefix)]
    return widget


def test_histology_has_no_preset_result_and_a_refusal_keeps_what_was_entered(app_env):
    """A preset "Melanoma" and a form cleared by a refused save recorded a melanoma where the clinician only
    added the missing date (accessibility and wording audit)."""
    _saved_visit(app_env)
    at = _history(app_env, "dr.page", "clinician")
    result = _by_prefix(at.radio, "histology_result_")
    assert result.value is None
    next(b for b in at.button if b.label == "Save histology").click().run()
    assert "Not saved: choose the histology result." in _texts(at)
    _by_prefix(at.radio, "histology_result_").set_value("benign")
    _by_prefix(at.text_input, "histology_note_").input("naevus")
    next(b for b in at.button if b.label == "Save histology").click().run()  # no date: refused
    assert "Not saved:" in _texts(at) and "date" in _texts(at)
    assert _by_prefix(at.radio, "histology_result_").value == "benign"
    assert _by_prefix(at.text_input, "histology_note_").value == "naevus"
    _by_prefix(at.date_input, "histology_date_").set_value(dt.date(2024, 10, 14))
    next(b for b in at.button if b.label == "Save histology").click().run()
    assert "recorded: Benign, reported 2024-10-14" in _texts(at)
    assert _by_prefix(at.radio, "histology_result_").value is None  # a new, empty form after the save
    assert _by_prefix(at.text_input, "histology_note_").value == ""


def test_clinician_amends_a_decision_and_records_histology(app_env):
    patient_id = _saved_visit(app_env)
    at = _history(app_env, "dr.page", "clinician")
    assert "images taken 2024-09-30 (saved " in _texts(at)

    # Amend: the decision in force for "left scapula" becomes excise, with a reason.
    choice = at.selectbox(key="amend_which")
    choice.select_index(next(i for i, label in enumerate(choice.options) if "left scapula" in label)).run()
    new = next(s for s in at.selectbox if s.label == "New decision")
    assert new.value == "monitor"  # the box starts at the chosen decision: a comment-only amendment keeps it
    # Worded as the review page's decision buttons; the store keeps the lower-case value.
    assert new.options == ["Biopsy", "Excise", "Monitor", "Reassure", "Refer"]
    assert "· Monitor · visit of" in choice.options[choice.index]
    months = next(s for s in at.selectbox if s.label.startswith("Repeat imaging in"))
    assert months.value == 3 and "(due " in months.format_func(6)
    new.set_value("excise")
    _by_prefix(at.text_input, "amend_reason_").input("grew at the recheck")
    next(b for b in at.button if b.label == "Save amendment").click().run()
    assert not at.exception, at.exception
    assert "amended: Monitor → Excise" in _texts(at)
    [amend] = [e for e in at.expander if e.label == "Amend a decision"]
    assert not amend.proto.expanded  # saved: the form closes (only a refused one stays open over its entries)

    # Histology for the first lesion, then the outcomes list.
    at.radio(key=next(r.key for r in at.radio if r.key.startswith("histology_result_"))).set_value("melanoma")
    at.date_input(key=next(d.key for d in at.date_input if d.key.startswith("histology_date_"))).set_value(
        dt.date(2024, 10, 14)
    )
    next(b for b in at.button if b.label == "Save histology").click().run()
    assert not at.exception, at.exception
    assert "recorded: Melanoma, reported 2024-10-14" in _texts(at)
    outcomes = _outcomes(at)
    assert list(outcomes["histology"]) == ["Melanoma"] and list(outcomes["image date"]) == ["2024-09-30"]
    assert [b.label for b in at.get("download_button") if "outcomes" in b.label] == [
        "Download this patient's outcomes (CSV)",
        "Download all patients' outcomes (CSV)",
    ]

    with app_env.store() as store:
        actions = [(e.actor, e.action) for e in store.audit_events(patient_id)]
        [decision] = [d for d in store.decision_history(patient_id) if d.amends_id is not None]
    assert ("dr.page", "decision.amend") in actions and ("dr.page", "histology.record") in actions
    assert (decision.action, decision.amend_reason, decision.clinician) == ("excise", "grew at the recheck", "dr.page")


def test_case_history_words_decisions_as_the_review_page_does(app_env):
    # The review page's buttons read "Monitor"; Case history's tables read "monitor" (the stored value).
    with app_env.store() as store:
        save_visit(store, actions=("monitor", "reassure"))
    at = _history(app_env, "dr.page", "clinician")
    visits = next(d.value for d in at.dataframe if "decisions" in d.value.columns)
    assert list(visits["decisions"]) == ["Monitor, Reassure"]
    record = next(d.value for d in at.dataframe if "amends" in d.value.columns)
    assert sorted(record["decision"]) == ["Monitor", "Reassure"]


def test_after_recording_histology_the_page_stays_on_that_lesion(app_env):
    # The recorded result changes the lesion's label in the box; the box must not then jump to another lesion
    # ("No histology recorded for this lesion", a blank form: the next result would go to the wrong lesion).
    _saved_visit(app_env)
    at = _history(app_env, "dr.page", "clinician")
    lesion_box = next(s for s in at.selectbox if s.label == "Lesion" and s.key.startswith("histology_lesion"))
    lesion_box.select_index(next(i for i, label in enumerate(lesion_box.options) if "navel" in label)).run()
    at.radio(key=next(r.key for r in at.radio if r.key.startswith("histology_result_"))).set_value("benign")
    at.date_input(key=next(d.key for d in at.date_input if d.key.startswith("histology_date_"))).set_value(
        dt.date(2024, 10, 14)
    )
    next(b for b in at.button if b.label == "Save histology").click().run()
    assert not at.exception, at.exception
    lesion_box = next(s for s in at.selectbox if s.label == "Lesion" and s.key.startswith("histology_lesion"))
    assert lesion_box.options[lesion_box.index] == "#2 navel · torso · Monitor · histology: Benign"
    assert "No histology recorded for this lesion." not in _texts(at)
    assert "Correct the histology result" in _texts(at)  # the form is the navel's, which has a result now


def test_viewer_reads_outcomes_without_forms(app_env):
    patient_id = _saved_visit(app_env)
    with app_env.store() as store:
        lesion_id = store.list_lesions(patient_id)[0].id
        store.record_histology(lesion_id, "benign", actor="dr.first", reported_on=dt.date(2024, 10, 1))
    at = _history(app_env, "kim.viewer", "viewer")
    page = _texts(at)
    assert "may read decisions but not amend them" in page and "may read histology but not record it" in page
    assert not [b for b in at.button if b.label in ("Save amendment", "Save histology")]
    assert list(_outcomes(at)["histology"]) == ["Benign"]
    assert not [b for b in at.get("download_button") if "outcomes" in b.label]


def test_review_page_saves_the_date_the_images_were_taken(app_env, patient_lesions):
    """Images from an earlier appointment: the date is checked (not before the birth year), saved with the
    visit, and Case history dates the visit by it."""
    app_env.add_user("dr.date", "clinician")
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.text_input(key="login_username").input("dr.date")
    at.text_input(key="login_password").input(PASSWORD)
    next(b for b in at.button if b.label == "Sign in").click().run()
    next(w for w in at.text_input if w.label == "Patient identifier (pseudonymous)").input(IDENT)
    next(w for w in at.number_input if w.label == "Birth year").set_value(1971)
    next(b for b in at.button if b.label == "Start review").click().run()
    at.file_uploader[0].set_value([f.upload() for f in patient_lesions[:2]]).run()
    at.button(key="run_triage").click().run()
    assert not at.exception, at.exception

    at.date_input(key="visit_taken_on").set_value(dt.date(2023, 11, 3)).run()
    review = at.session_state["review"]
    assert review.taken_on == dt.date(2023, 11, 3)
    # The model was given the age of today; the images are of 2023: the scores are stale until run again
    # with the age on the day they were taken.
    assert review.patient_age() == 2023 - 1971
    if dt.date.today().year != 2023:
        assert review.result_is_stale and at.button(key="save_visit").disabled
        at.button(key="run_triage").click().run()
        assert not at.exception, at.exception
    assert not at.session_state["review"].result_is_stale
    at.button(key="save_visit").click().run()
    assert not at.exception, at.exception
    assert at.session_state["review"].is_saved

    with app_env.store() as store:
        [patient] = store.search_patients(IDENT)
        [visit] = store.patient_timeline(patient.id).visits
    assert visit.taken_on == dt.date(2023, 11, 3) and visit.visit_time.date() == dt.datetime.now(dt.UTC).date()
    at.switch_page("views/history.py").run()
    at.text_input(key="history_search").input(IDENT).run()
    assert "images taken 2023-11-03 (saved " in _texts(at)


def test_after_amending_a_decision_the_box_stays_on_that_lesion(app_env):
    # The amendment replaces the chosen decision in the "Decision" box (a new option, "(amended)"); the box must
    # then show that lesion's amended decision, not jump to another lesion's, where a second amendment would go.
    _saved_visit(app_env)
    at = _history(app_env, "dr.page", "clinician")
    for label in ("navel", "left scapula"):  # whichever the box lists first, the other one is amended second
        choice = at.selectbox(key=next(s.key for s in at.selectbox if s.label == "Decision"))
        choice.select_index(next(i for i, option in enumerate(choice.options) if label in option)).run()
        next(s for s in at.selectbox if s.label == "New decision").set_value("excise")
        _by_prefix(at.text_input, "amend_reason_").input(f"{label} grew")
        next(b for b in at.button if b.label == "Save amendment").click().run()
        assert not at.exception, at.exception
        choice = next(s for s in at.selectbox if s.label == "Decision")
        assert label in choice.options[choice.index] and "(amended)" in choice.options[choice.index]


def test_clinician_decides_a_lesion_saved_undecided(app_env):
    with app_env.store() as store:
        patient_id = save_visit(store, actions=("monitor", None))
    at = _history(app_env, "dr.page", "clinician")
    choice = _by_prefix(at.selectbox, "late_which_")
    assert choice.options == ["#2 navel · visit of " + choice.options[0].split("visit of ")[1]]
    assert choice.options[0].endswith("P(melanoma) 5.0%")
    assert _by_prefix(at.selectbox, "late_action_").value is None  # no preset decision: a click records none
    assert _by_prefix(at.selectbox, "late_action_").options == ["Biopsy", "Excise", "Monitor", "Reassure", "Refer"]
    next(b for b in at.button if b.label == "Save decision").click().run()
    assert "Not saved: choose the decision." in _texts(at)
    _by_prefix(at.text_area, "late_comment_").input("second opinion: biopsy")
    next(b for b in at.button if b.label == "Save decision").click().run()
    assert "Not saved: choose the decision." in _texts(at)
    assert _by_prefix(at.text_area, "late_comment_").value == "second opinion: biopsy"  # kept after a refusal
    [late] = [e for e in at.expander if e.label.startswith("Decide a lesion")]
    assert late.proto.expanded  # and in view: the refusal's message above must not close the form over them
    _by_prefix(at.selectbox, "late_action_").set_value("biopsy")
    next(b for b in at.button if b.label == "Save decision").click().run()
    assert not at.exception, at.exception
    assert "Decision on lesion #2 recorded: Biopsy." in _texts(at)
    assert not [s for s in at.selectbox if s.key.startswith("late_which")]  # nothing left undecided: no form
    with app_env.store() as store:
        navel = next(les for les in store.list_lesions(patient_id) if les.label == "navel")
        [event] = [e for e in store.audit_events(patient_id, action="decision.record") if e.detail.get("after_saving")]
    assert navel.latest_action == "biopsy" and event.actor == "dr.page"
    # the new decision can now be amended like any other
    amend = at.selectbox(key="amend_which")
    assert any("navel · Biopsy" in label for label in amend.options)


def test_viewer_sees_undecided_lesions_without_a_form(app_env):
    with app_env.store() as store:
        save_visit(store, actions=(None, None))
    at = _history(app_env, "kim.viewer", "viewer")
    assert "No decisions recorded." in _texts(at) and "may read decisions but not amend them" in _texts(at)
    assert not [s for s in at.selectbox if s.key.startswith(("late_which", "amend_which"))]
