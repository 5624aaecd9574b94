"""The review in progress kept on the server as the user's draft: its JSON and images (``draft_of``,
``draft_images``), the one-line offer after a reload, and a review rebuilt from it. No Streamlit here."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from typing import Any

from dashboard.patient_form import PatientContext, patient_from_store
from dashboard.review_state import ReviewState
from data.hashing import sha256_bytes as sha256_of


def draft_of(state: ReviewState) -> dict[str, Any]:
    """Everything a reload would lose except the image bytes and the scores, as JSON (read back by
    ``resume_draft``)."""
    patient = state.patient
    return {
        "version": 1,
        "patient": None
        if patient is None
        else {
            "identifier": patient.identifier,
            "birth_year": patient.birth_year,
            "sex": patient.sex,
            "patient_id": patient.patient_id,
        },
        "images": [
            {
                "sha256": sha,
                "site": img.site,
                "label": img.label,
                "lesion_id": img.existing_lesion_id,
                "body_region": state.body_regions.get(sha),
            }
            for sha, img in state.images.items()
        ],
        "decisions": {
            sha: [d.action, d.comment, d.review_months] for sha, d in state.decisions.items() if d.action or d.comment
        },
        "notes": state.notes,
        "taken_on": state.taken_on.isoformat() if state.taken_on else None,
        "overviews": state.overviews.draft_entries(),
    }


def draft_images(state: ReviewState) -> list[tuple[str, str, bytes]]:
    """The lesion images, then the overview photos (the draft's JSON says which are which)."""
    lesions = [(sha, img.filename, img.data) for sha, img in state.images.items()]
    return lesions + state.overviews.draft_images()


def draft_fingerprint(state: ReviewState) -> str:
    """What the draft holds, as one digest: a change to keep on the server."""
    return hashlib.sha256(json.dumps(draft_of(state), sort_keys=True).encode()).hexdigest()


def draft_summary(draft: Any) -> str:
    """One line on a kept draft: whose review, how many images, when last changed."""
    patient = (draft.state or {}).get("patient") or {}
    when = draft.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
    who = patient.get("identifier", "a patient")
    return f"An unsaved review of {who} ({draft.image_count} image(s)), last changed {when}."


def resume_draft(draft: Any, store: Any = None) -> ReviewState:
    """A review rebuilt from a kept draft: the patient, the images (checked again), sites, labels, follow-up
    links, decisions, notes and overview photos. The triage is run again (the scores are not kept; the TTA is
    fixed per model)."""
    saved = draft.state or {}
    person = saved.get("patient") or {}
    if not person.get("identifier"):
        raise ValueError("the kept review names no patient")
    if person.get("patient_id") is not None and store is not None:
        patient = patient_from_store(store, int(person["patient_id"]))
    else:
        patient = PatientContext(
            identifier=str(person["identifier"]), birth_year=person.get("birth_year"), sex=person.get("sex", "unknown")
        )
    state = ReviewState(patient=patient)
    overviews = {str(lesion): [str(p) for p in photos] for lesion, photos in (saved.get("overviews") or {}).items()}
    # (bytes used as both a lesion image and an overview photo are a lesion image first)
    is_overview = {photo for photos in overviews.values() for photo in photos}
    is_overview -= {str(entry.get("sha256")) for entry in saved.get("images", [])}
    lesion_images = [image for image in draft.images if image.upload_sha256 not in is_overview]
    state.add_files([(image.filename, image.data) for image in lesion_images])
    # The draft keeps images with personal metadata stripped: map the upload's key to the review's.
    key_of = {image.upload_sha256: sha256_of(image.data) for image in lesion_images}
    for entry in saved.get("images", []):
        sha = key_of.get(entry.get("sha256"))
        if sha not in state.images:
            continue
        with contextlib.suppress(ValueError, KeyError):
            if entry.get("lesion_id") is not None:
                state.link_lesion(sha, int(entry["lesion_id"]))
            else:
                state.set_site(sha, entry.get("site", "unknown"))
            state.set_label(sha, entry.get("label", ""))
        with contextlib.suppress(ValueError):  # a region key this version does not know is dropped
            if entry.get("body_region"):
                state.set_body_region(sha, str(entry["body_region"]))
    for old, (action, comment, *months) in (saved.get("decisions") or {}).items():
        sha = key_of.get(old)
        if sha in state.images:
            with contextlib.suppress(ValueError):  # a draft of an earlier version has no interval
                state.set_decision(sha, action, comment or "", months[0] if months else None)
    photo_of = {image.upload_sha256: image for image in draft.images}
    for lesion, photos in overviews.items():
        sha = key_of.get(lesion)
        for photo in (photo_of[p] for p in photos if p in photo_of):
            if sha in state.images:
                state.add_overview(sha, photo.filename, photo.data)
    state.notes = str(saved.get("notes") or "")
    with contextlib.suppress(ValueError, TypeError):  # a date now out of range is dropped, not fatal
        state.set_taken_on(dt.date.fromisoformat(saved["taken_on"]) if saved.get("taken_on") else None)
    state.problems = [p for p in state.problems if p.kind != "notice"]
    return state


def keep_draft(store: Any, state: ReviewState, kept: str | None) -> str | None:
    """One write per change: the review in progress kept on the server, deleted once it was saved or
    discarded. ``kept``: the fingerprint of what this tab kept last; returns the new one. Store failures
    (dashboard.errors.STORE_ERRORS) propagate: the page says the draft is not kept."""
    if state.patient is not None and state.has_unsaved_work:
        fingerprint = draft_fingerprint(state)
        if fingerprint != kept:
            store.save_draft(draft_of(state), draft_images(state))
        return fingerprint
    if kept is not None:  # this tab's draft was saved as a visit or discarded
        store.delete_draft()
    return None
