"""Case history after saving, without Streamlit (dashboard/outcomes.py): amend a decision, record histology,
the outcome tables; refusals are messages that change nothing."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image

from dashboard import outcomes
from dashboard.accounts import Accounts
from dashboard.store import CaseStore, LesionReview, ReviewToSave
from dashboard.user_store import UserStore

SAVED = dt.datetime(2025, 4, 2, 10, 30, tzinfo=dt.UTC)


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 32), (seed * 40 % 256, 90, 200 - seed)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def saved(tmp_path):
    with CaseStore.from_url(f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "images") as store:
        visit_id = store.save_review(
            ReviewToSave(
                patient_identifier="PT-OUTCOME",
                birth_year=1970,
                sex="female",
                clinician="dr.ada",
                visit_time=SAVED,
                taken_on=dt.date(2025, 1, 15),
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
                    for k, (label, p, action) in enumerate((("back", 0.7, "monitor"), ("chest", 0.1, "reassure")))
                ],
            )
        )
        clinician = UserStore(
            store, Accounts(store).add("dr.bo", "correct horse battery staple", "clinician", "", actor="test")
        )
        viewer = UserStore(
            store, Accounts(store).add("kim", "correct horse battery staple", "viewer", "", actor="test")
        )
        yield store, clinician, viewer, store.load_visit(visit_id)


def test_visit_date_says_when_the_images_were_taken(saved):
    visit = saved[3]
    assert outcomes.visit_date_text(visit).startswith("images taken 2025-01-15 (saved 2025-04-02")
    same_day = type(visit)(**{**visit.__dict__, "taken_on": None})
    assert "images taken" not in outcomes.visit_date_text(same_day)


def test_amendment_through_the_page_logic(saved):
    _, clinician, viewer, visit = saved
    decisions = clinician.decision_history(visit.patient_id)
    back = next(d for d in decisions if d.lesion_label == "back")

    refused = outcomes.submit_amendment(viewer, back, "excise", "", "grew")
    assert not refused.ok and "viewer role may not" in refused.message
    missing_reason = outcomes.submit_amendment(clinician, back, "excise", "", " ")
    assert not missing_reason.ok and "reason for the amendment must not be empty" in missing_reason.message
    assert len(clinician.decision_history(visit.patient_id)) == 2  # the refusals saved nothing

    done = outcomes.submit_amendment(clinician, back, "excise", "border changed", "grew")
    assert done.ok and "Monitor → Excise" in done.message
    decisions = clinician.decision_history(visit.patient_id)
    visits = clinician.patient_timeline(visit.patient_id).visits
    in_force = outcomes.amendable(decisions, visits)
    assert sorted(d.action for d in in_force) == ["excise", "reassure"]  # the replaced one is not offered
    table = outcomes.decision_record_table(decisions, visits)
    back_rows = table[table["lesion"].str.endswith("back")]
    assert list(zip(back_rows["decision"], back_rows["status"], back_rows["amends"], back_rows["by"], strict=True)) == [
        ("Excise", "in force", "Monitor", "dr.bo"),
        ("Monitor", "replaced", "", "dr.ada"),
    ]
    assert "(amended)" in outcomes.decision_choice_label(next(d for d in in_force if d.action == "excise"))


def test_an_interval_from_the_forms_is_kept_for_a_monitor_decision_only(saved):
    _, clinician, _, visit = saved
    back = next(d for d in clinician.decision_history(visit.patient_id) if d.lesion_label == "back")
    done = outcomes.submit_amendment(clinician, back, "monitor", "", "interval agreed", 6)
    assert done.ok and "Monitor → Monitor, repeat imaging in 6 months" in done.message
    now = next(d for d in clinician.decision_history(visit.patient_id) if d.lesion_label == "back" and not d.superseded)
    assert now.review_in_months == 6
    visits = clinician.patient_timeline(visit.patient_id).visits
    table = outcomes.decision_record_table(clinician.decision_history(visit.patient_id), visits)
    assert "Monitor, repeat imaging in 6 months" in set(table["decision"])
    done = outcomes.submit_amendment(clinician, now, "excise", "", "grew", 6)  # the box's value, ignored
    assert done.ok and done.message.endswith("Monitor (6 months) → Excise.")
    latest = next(
        d for d in clinician.decision_history(visit.patient_id) if d.lesion_label == "back" and not d.superseded
    )
    assert (latest.action, latest.review_in_months) == ("excise", None)


def test_histology_and_outcomes_through_the_page_logic(saved):
    _, clinician, viewer, visit = saved
    back = next(les for les in clinician.list_lesions(visit.patient_id) if les.label == "back")
    assert not outcomes.submit_histology(viewer, back, "melanoma", dt.date(2025, 3, 1)).ok
    no_date = outcomes.submit_histology(clinician, back, "melanoma", None)
    assert not no_date.ok and "date of the report" in no_date.message
    assert outcomes.submit_histology(clinician, back, "benign", dt.date(2025, 3, 1)).ok
    done = outcomes.submit_histology(clinician, back, "melanoma", dt.date(2025, 3, 8), "revised")
    assert done.ok and "Melanoma, reported 2025-03-08" in done.message

    history = outcomes.histology_table(clinician.histology_history(back.id))
    assert list(history["result"]) == ["Melanoma", "Benign"]  # newest first: the one in force on top
    back = next(les for les in clinician.list_lesions(visit.patient_id) if les.label == "back")
    assert outcomes.lesion_choice_label(back).endswith("histology: Melanoma")

    table = outcomes.outcomes_table(viewer.outcomes(visit.patient_id))
    assert list(table["lesion"]) == ["#1"] and list(table["histology"]) == ["Melanoma"]
    assert (table["image date"][0], table["age"][0], table["P(melanoma)"][0]) == ("2025-01-15", 55, 0.7)
    name = outcomes.outcomes_filename(visit.patient_id, dt.date(2025, 5, 1))
    assert name == f"outcomes-patient-{visit.patient_id}-2025-05-01.csv" and "PT-OUTCOME" not in name


def test_a_visit_whose_images_were_taken_the_day_it_was_saved_shows_the_save_time_only(saved):
    visit = saved[3]
    same_day = type(visit)(**{**visit.__dict__, "taken_on": visit.visit_time.astimezone().date()})
    assert outcomes.visit_date_text(same_day) == f"{visit.visit_time.astimezone():%Y-%m-%d %H:%M}"


def test_histology_not_done_names_no_report_date(saved):
    """No specimen, no report: a date left in the form is not echoed as the report's."""
    back = next(les for les in saved[1].list_lesions(saved[3].patient_id) if les.label == "back")

    class Accepts:
        def record_histology(self, *args, **kwargs):
            return None

    done = outcomes.submit_histology(Accepts(), back, "not_done", dt.date(2025, 3, 1))
    assert done.ok and done.message.endswith("recorded: Not done (no specimen).") and "reported" not in done.message
