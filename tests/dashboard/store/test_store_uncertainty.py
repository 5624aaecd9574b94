"""A saved score keeps its uncertainty: TTA spread, number of views, ugly-duckling flag (issue 12, bug 3)."""

from __future__ import annotations

import csv
import io
import json

import pytest


def test_spread_views_and_flag_are_saved_loaded_and_exported(store, sample_images, make_lesion, make_review):
    visit_id = store.save_review(
        make_review(
            [
                make_lesion(
                    sample_images[0],
                    lesion_label="L1",
                    p_spread=0.031,
                    tta_views=8,
                    outlier=True,
                    source_caveat="Image source differs from this patient's other images: =camera",
                ),
                make_lesion(sample_images[1], lesion_label="L2", rank=2),  # nothing recorded: stays None
            ]
        )
    )
    first, second = (les.prediction for les in store.load_visit(visit_id).lesions)
    assert (first.p_spread, first.tta_views, first.outlier) == (pytest.approx(0.031), 8, True)
    assert (second.p_spread, second.tta_views, second.outlier) == (None, None, None)
    # the image-source caveat the review showed stays with the score (none shown: "")
    assert first.source_caveat.endswith("other images: =camera") and second.source_caveat == ""

    pid = store.load_visit(visit_id).patient_id
    rows = list(csv.DictReader(io.StringIO(store.export_patient_history(pid, "csv"))))
    by_label = {r["lesion_label"]: r for r in rows}
    assert float(by_label["L1"]["p_spread"]) == pytest.approx(0.031)
    assert (by_label["L1"]["tta_views"], by_label["L1"]["ugly_duckling_flag"]) == ("8", "yes")
    assert by_label["L1"]["source_caveat"].startswith("Image source differs") and by_label["L2"]["source_caveat"] == ""
    assert (by_label["L2"]["p_spread"], by_label["L2"]["tta_views"], by_label["L2"]["ugly_duckling_flag"]) == (
        "",
        "",
        "",
    )
    data = json.loads(store.export_patient_history(pid, "json"))
    pred = data["visits"][0]["lesions"][0]["predictions"][0]
    assert (pred["p_spread"], pred["tta_views"], pred["ugly_duckling_flag"]) == (pytest.approx(0.031), 8, True)
    assert pred["source_caveat"].endswith("=camera")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("p_spread", 1.5, "TTA spread"), ("p_spread", float("nan"), "TTA spread"), ("tta_views", 0, "TTA views")],
)
def test_invalid_uncertainty_is_refused_with_a_clear_message(
    store, sample_images, make_lesion, make_review, field, value, message
):
    with pytest.raises(ValueError, match=message):
        store.save_review(make_review([make_lesion(sample_images[0], **{field: value})]))


def test_visits_and_lesions_are_numbered_per_patient(store, sample_images, make_lesion, make_review):
    """Issue 12, item 7: ids are global; pages show each patient's own visit 1, 2… and lesion #1, #2…"""
    import datetime as dt

    t0 = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    store.save_review(
        make_review(
            [make_lesion(sample_images[0], lesion_label="A1"), make_lesion(sample_images[1], lesion_label="A2")],
            patient_identifier="PT-A",
            visit_time=t0,
        )
    )
    b1 = store.save_review(
        make_review(
            [make_lesion(sample_images[2], lesion_label="B1", decision_action="monitor")],
            patient_identifier="PT-B",
            visit_time=t0,
        )
    )
    pid = store.load_visit(b1).patient_id
    (b_lesion,) = store.list_lesions(pid)
    b2 = store.save_review(
        make_review(
            [
                make_lesion(sample_images[3], lesion_label="B1", existing_lesion_id=b_lesion.id),
                make_lesion(sample_images[4], lesion_label="B2", rank=2),
            ],
            patient_identifier="PT-B",
            visit_time=t0 + dt.timedelta(days=180),
        )
    )
    assert (b1, b2) == (2, 3)  # the global ids
    assert [v.number for v in store.patient_timeline(pid).visits] == [1, 2]
    assert store.load_visit(b2).number == 2
    assert [(les.label, les.number) for les in store.list_lesions(pid)] == [("B1", 1), ("B2", 2)]
    assert [les.lesion_number for les in store.load_visit(b2).lesions] == [1, 2]
    assert b_lesion.id == 3 and b_lesion.number == 1
    assert [p.visit_number for p in store.lesion_score_trend(b_lesion.id)] == [1, 2]
    assert [d.lesion_number for d in store.decision_history(pid)] == [1]


def test_a_draft_is_kept_per_user_replaced_and_deleted(store, sample_images):
    """Issue 12, bug 6: the review in progress is kept on the server (images, sites, decisions)."""
    import hashlib

    def sha256_of(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    shas = [sha256_of(data) for data in sample_images[:2]]
    state = {"patient": {"identifier": "PT-D"}, "images": {shas[0]: {"site": "torso"}}}
    store.save_draft("dr.a", state, [(shas[0], "a.jpg", sample_images[0]), (shas[1], "b.jpg", sample_images[1])])
    assert store.load_draft("dr.b") is None
    draft = store.load_draft("dr.a")
    assert draft.state == state and [i.filename for i in draft.images] == ["a.jpg", "b.jpg"]
    assert [i.upload_sha256 for i in draft.images] == shas
    # A later change replaces it: one image removed, the state updated (one draft per user).
    store.save_draft("dr.a", {"notes": "x"}, [(shas[1], "b.jpg", sample_images[1])])
    draft = store.load_draft("dr.a")
    assert draft.state == {"notes": "x"} and [i.upload_sha256 for i in draft.images] == [shas[1]]
    assert store.delete_draft("dr.a") and store.load_draft("dr.a") is None and not store.delete_draft("dr.a")
