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
                make_lesion(sample_images[0], lesion_label="L1", p_spread=0.031, tta_views=8, outlier=True),
                make_lesion(sample_images[1], lesion_label="L2", rank=2),  # nothing recorded: stays None
            ]
        )
    )
    first, second = (les.prediction for les in store.load_visit(visit_id).lesions)
    assert (first.p_spread, first.tta_views, first.outlier) == (pytest.approx(0.031), 8, True)
    assert (second.p_spread, second.tta_views, second.outlier) == (None, None, None)

    pid = store.load_visit(visit_id).patient_id
    rows = list(csv.DictReader(io.StringIO(store.export_patient_history(pid, "csv"))))
    by_label = {r["lesion_label"]: r for r in rows}
    assert float(by_label["L1"]["p_spread"]) == pytest.approx(0.031)
    assert (by_label["L1"]["tta_views"], by_label["L1"]["ugly_duckling_flag"]) == ("8", "yes")
    assert (by_label["L2"]["p_spread"], by_label["L2"]["tta_views"], by_label["L2"]["ugly_duckling_flag"]) == (
        "",
        "",
        "",
    )
    data = json.loads(store.export_patient_history(pid, "json"))
    pred = data["visits"][0]["lesions"][0]["predictions"][0]
    assert (pred["p_spread"], pred["tta_views"], pred["ugly_duckling_flag"]) == (pytest.approx(0.031), 8, True)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("p_spread", 1.5, "TTA spread"), ("p_spread", float("nan"), "TTA spread"), ("tta_views", 0, "TTA views")],
)
def test_invalid_uncertainty_is_refused_with_a_clear_message(
    store, sample_images, make_lesion, make_review, field, value, message
):
    with pytest.raises(ValueError, match=message):
        store.save_review(make_review([make_lesion(sample_images[0], **{field: value})]))
