"""Placing a review's images on the body map (ReviewState.set_body_region): the region sets the site the model
is given, survives a reload (draft) and is saved with the lesion (Lesion.body_region)."""

from __future__ import annotations

import datetime as dt
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dashboard.accounts import Accounts
from dashboard.body_map_placement import place_saved_lesion, place_selected
from dashboard.patient_form import PatientContext
from dashboard.review_draft import draft_images, draft_of, resume_draft
from dashboard.review_state import ReviewState
from dashboard.store import CaseStore
from dashboard.user_store import UserStore
from data.hashing import sha256_bytes as sha256_of


def _state(patient_lesions, n=2, **patient) -> ReviewState:
    state = ReviewState(patient=PatientContext(identifier="PT-MAP", birth_year=1970, sex="male", **patient))
    state.add_files([(f.name, f.data) for f in patient_lesions[:n]])
    return state


def _fake_result(state: ReviewState, p: list[float]) -> SimpleNamespace:
    ids = list(state.images)
    table = pd.DataFrame(
        {
            "image_id": ids,
            "p_melanoma": p,
            "p_spread": [0.01] * len(ids),
            "ugly_duckling": [math.nan] * len(ids),
            "triage_score": p,
            "rank": pd.Series(p).rank(ascending=False, method="first").astype(int).to_list(),
            "suspicious": [v >= 0.5 for v in p],
            "outlier": [False] * len(ids),
            "reasons": ["a reason"] * len(ids),
            "x": np.arange(len(ids), dtype=float),
            "y": np.zeros(len(ids)),
        }
    )
    return SimpleNamespace(table=table, errors=pd.DataFrame(columns=["image_id", "filename", "reason"]), notes=[])


def test_a_region_sets_the_model_site_and_a_new_site_takes_the_image_off_the_map(patient_lesions):
    state = _state(patient_lesions)
    a, b = list(state.images)
    state.set_body_region(a, "left_palm")
    assert state.images[a].site == "palms/soles" and state.body_regions == {a: "left_palm"}
    assert state.input_fingerprint() != _state(patient_lesions).input_fingerprint()  # the model sees the site
    state.set_site(a, "palms/soles")  # the same site keeps the region
    assert state.body_regions[a] == "left_palm"
    state.set_site(a, "torso")  # a region always lies on the image's site
    assert a not in state.body_regions
    state.set_body_region(b, "upper_back")
    state.set_body_region(b, None)
    assert b not in state.body_regions and state.images[b].site == "torso"


def test_an_unknown_region_is_refused_and_changes_nothing(patient_lesions):
    state = _state(patient_lesions)
    a = next(iter(state.images))
    site = state.images[a].site
    with pytest.raises(ValueError, match="unknown body region 'elbow_wing'"):
        state.set_body_region(a, "elbow_wing")
    assert state.images[a].site == site and not state.body_regions


def test_a_followed_lesion_keeps_its_region_and_moving_it_elsewhere_unlinks_it(patient_lesions):
    lesion = SimpleNamespace(id=7, site="torso", label="left scapula", last_seen=None, body_region="upper_back")
    sha = sha256_of(patient_lesions[0].data)
    state = _state(patient_lesions, n=1, known_lesions=[lesion], known_images={sha: (7, "visit of 2024-01-02")})
    assert state.images[sha].existing_lesion_id == 7 and state.body_regions[sha] == "upper_back"
    state.set_body_region(sha, "lower_back")  # same site: still the same lesion, placed more precisely
    assert state.images[sha].existing_lesion_id == 7
    state.set_body_region(sha, "left_sole")  # another site: a lesion does not move, so it is a new one
    assert state.images[sha].existing_lesion_id is None and state.images[sha].site == "palms/soles"


def test_removing_an_image_removes_its_region(patient_lesions):
    state = _state(patient_lesions)
    a = next(iter(state.images))
    state.set_body_region(a, "chest")
    state.remove_image(a)
    assert not state.body_regions


def test_regions_survive_a_reload(patient_lesions):
    state = _state(patient_lesions)
    a, _ = list(state.images)
    state.set_body_region(a, "right_thigh_back")
    draft = SimpleNamespace(
        state=draft_of(state),
        updated_at=dt.datetime.now(dt.UTC),
        images=[SimpleNamespace(upload_sha256=s, filename=n, data=d) for s, n, d in draft_images(state)],
    )
    draft.state["images"][1]["body_region"] = "retired_key"  # a key this version no longer knows is dropped
    resumed = resume_draft(draft)
    regions = {resumed.images[s].filename: r for s, r in resumed.body_regions.items()}
    assert regions == {state.images[a].filename: "right_thigh_back"}
    assert {i.filename: i.site for i in resumed.images.values()}[state.images[a].filename] == "lower extremity"


def test_the_region_is_saved_with_the_lesion_and_shown_in_the_gallery_table(patient_lesions, tmp_path):
    state = _state(patient_lesions)
    a, b = list(state.images)
    state.set_body_region(a, "left_forearm_back")
    state.run_triage(None, triage_fn=lambda *args, **kwargs: _fake_result(state, [0.2, 0.7]))
    table = state.scored_table()
    shown = {sha: (None if pd.isna(r) else r) for sha, r in zip(table["image_id"], table["body_region"], strict=True)}
    assert shown == {a: "left_forearm_back", b: None}
    with CaseStore.from_url(f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "images") as store:
        state.save(store, "dr.map", "m1", "abc")
        lesions = store.list_lesions(state.patient.patient_id)
    regions = sorted((les.site, les.body_region) for les in lesions)
    assert ("upper extremity", "left_forearm_back") in regions
    assert len(regions) == 2 and sum(r is None for _, r in regions) == 1


def _click(key):
    return {"selection": {"points": [{"curve_number": 0, "point_index": 0, "customdata": [key, "label", "site"]}]}}


def test_a_click_places_the_selected_images_and_says_so(patient_lesions):
    state = _state(patient_lesions, n=3)
    a, b, c = list(state.images)
    placement = place_selected(state, _click("left_sole"), [a, b])
    assert placement.region == "left_sole" and set(placement.placed) == {a, b} and placement.kind == "success"
    assert "2 image(s) placed on Left sole" in placement.message and "palms/soles" in placement.message
    assert state.body_regions == {a: "left_sole", b: "left_sole"}
    assert state.images[a].site == state.images[b].site == "palms/soles" and c not in state.body_regions


def test_a_click_with_nothing_selected_or_a_bad_payload_changes_nothing(patient_lesions):
    state = _state(patient_lesions)
    sites = {s: i.site for s, i in state.images.items()}
    nothing = place_selected(state, _click("chest"), [])
    assert (nothing.region, nothing.placed, nothing.kind) == (
        "chest",
        (),
        "info",
    ) and "no image is selected" in nothing.message
    bad = place_selected(state, _click("elbow_wing"), list(state.images))
    assert bad.kind == "error" and "unknown body region" in bad.message
    assert place_selected(state, {"selection": {"points": []}}, list(state.images)).kind == ""
    assert not state.body_regions and {s: i.site for s, i in state.images.items()} == sites


def test_a_saved_lesion_is_placed_through_the_store_on_its_own_site_only(patient_lesions, tmp_path):
    state = _state(patient_lesions)
    a, b = list(state.images)
    state.set_site(a, "torso")
    state.set_site(b, "unknown")
    state.run_triage(None, triage_fn=lambda *args, **kwargs: _fake_result(state, [0.2, 0.7]))
    with CaseStore.from_url(f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "images") as store:
        state.save(store, "dr.map", "m1", "abc")
        pid = state.patient.patient_id
        torso, unknown = sorted(store.list_lesions(pid), key=lambda les: les.site != "torso")
        clinician = UserStore(
            store, Accounts(store).add("dr.map", "correct horse battery staple", "clinician", "", actor="test")
        )  # as the history page holds it
        refused = place_saved_lesion(clinician, torso, _click("left_palm"))
        assert refused.kind == "error" and "not on the torso" in refused.message
        placed = place_saved_lesion(clinician, torso, _click("lower_back"))
        assert (placed.region, placed.kind) == ("lower_back", "success") and "placed on Lower back" in placed.message
        assert place_saved_lesion(clinician, unknown, _click("right_sole")).kind == "success"  # unknown takes the site
        now = {les.id: (les.site, les.body_region) for les in store.list_lesions(pid)}
        assert now == {torso.id: ("torso", "lower_back"), unknown.id: ("palms/soles", "right_sole")}
        assert [e.action for e in store.audit_events(pid)].count("lesion.region") == 2
