"""Patient history as CSV (flat, for spreadsheets) or JSON (nested, complete).

Exports contain the patient identifier on purpose: they are for the
clinician (referral letters, records requests). Absolute server paths are
left out; images are referred to by hash and relative path.

Coded values (``decision_action``, ``histology``, ``sex``, ``site``) are the stored codes ("monitor",
"other_malignant"), not the labels the pages show: machine-readable, and stable when the wording changes.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from dashboard.store.records import OutcomeRow, PatientTimeline, VisitLesion
from data.spreadsheet_cells import defuse_formula

JSON_FORMAT_NAME = "melanoma-triage patient history"
JSON_FORMAT_VERSION = 1

CSV_COLUMNS = (
    "patient_id",
    "patient_identifier",
    "birth_year",
    "sex",
    "visit_id",
    "visit_time",
    "taken_on",
    "clinician",
    "model_version",
    "visit_notes",
    "lesion_id",
    "site",
    "body_region",
    "lesion_label",
    "image_sha256",
    "image_relpath",
    "original_filename",
    "image_format",
    "width",
    "height",
    "model_id",
    "model_checksum",
    "p_melanoma",
    "ugly_duckling",
    "ugly_duckling_flag",
    "triage_score",
    "rank",
    "p_spread",
    "tta_views",
    "source_caveat",
    "decision_action",
    "decision_review_months",
    "decision_clinician",
    "decision_comment",
    "decided_at",
    "decision_amends",
    "overview_images",
)


def _cell_text(value: str) -> str:
    """Free text typed by users, defused for spreadsheets (data/spreadsheet_cells.py)."""
    return str(defuse_formula(value))


def _flag(value: bool | None) -> str:
    """A yes/no flag for a spreadsheet; empty where it was not recorded (rows saved before revision 0004)."""
    return "" if value is None else ("yes" if value else "no")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def to_csv(timeline: PatientTimeline) -> str:
    """One row per lesion image per visit, with its latest prediction and decision."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    p = timeline.patient
    for visit in timeline.visits:
        for item in visit.lesions:
            pred, dec = item.prediction, item.decision
            row: dict[str, Any] = {
                "patient_id": p.id,
                "patient_identifier": _cell_text(p.identifier),
                "birth_year": p.birth_year if p.birth_year is not None else "",
                "sex": p.sex,
                "visit_id": visit.id,
                "visit_time": _iso(visit.visit_time),
                "taken_on": visit.taken_on.isoformat() if visit.taken_on else "",
                "clinician": _cell_text(visit.clinician),
                "model_version": _cell_text(visit.model_version),
                "visit_notes": _cell_text(visit.notes),
                "lesion_id": item.lesion_id,
                "site": item.site,
                "body_region": item.body_region or "",
                "lesion_label": _cell_text(item.label),
                "image_sha256": item.image.sha256,
                "image_relpath": item.image.relpath,
                "original_filename": _cell_text(item.image.original_filename),
                "image_format": item.image.image_format,
                "width": item.image.width,
                "height": item.image.height,
                "model_id": _cell_text(pred.model_id) if pred else "",
                "model_checksum": _cell_text(pred.model_checksum) if pred else "",
                "p_melanoma": repr(pred.p_melanoma) if pred else "",
                "ugly_duckling": repr(pred.ugly_duckling) if pred and pred.ugly_duckling is not None else "",
                "ugly_duckling_flag": _flag(pred.outlier) if pred else "",
                "triage_score": repr(pred.triage_score) if pred else "",
                "rank": pred.rank if pred else "",
                "p_spread": repr(pred.p_spread) if pred and pred.p_spread is not None else "",
                "tta_views": pred.tta_views if pred and pred.tta_views is not None else "",
                "source_caveat": _cell_text(pred.source_caveat) if pred else "",
                "decision_action": dec.action if dec else "",
                "decision_review_months": dec.review_in_months if dec and dec.review_in_months else "",
                "decision_clinician": _cell_text(dec.clinician) if dec else "",
                "decision_comment": _cell_text(dec.comment) if dec else "",
                "decided_at": _iso(dec.decided_at) if dec else "",
                # The decision in force; "decision_amends" names the decision it replaced after saving.
                "decision_amends": dec.amends_id if dec and dec.amends_id is not None else "",
                "overview_images": " ".join(o.sha256 for o in item.overviews),
            }
            writer.writerow(row)
    return buf.getvalue()


def _lesion_dict(item: VisitLesion) -> dict[str, Any]:
    img = item.image
    return {
        "lesion_id": item.lesion_id,
        "site": item.site,
        "body_region": item.body_region,
        "label": item.label,
        "image": {
            "sha256": img.sha256,
            "relpath": img.relpath,
            "format": img.image_format,
            "width": img.width,
            "height": img.height,
            "byte_size": img.byte_size,
            "original_filename": img.original_filename,
            "kind": img.kind,
        },
        "overview_images": [
            {"sha256": o.sha256, "relpath": o.relpath, "format": o.image_format, "width": o.width, "height": o.height}
            for o in item.overviews
        ],
        "predictions": [
            {
                "model_id": pr.model_id,
                "model_checksum": pr.model_checksum,
                "p_melanoma": pr.p_melanoma,
                "ugly_duckling": pr.ugly_duckling,
                "ugly_duckling_flag": pr.outlier,
                "triage_score": pr.triage_score,
                "rank": pr.rank,
                "p_spread": pr.p_spread,
                "tta_views": pr.tta_views,
                "source_caveat": pr.source_caveat,
                "created_at": _iso(pr.created_at),
            }
            for pr in item.predictions
        ],
        "decisions": [
            {
                "action": d.action,
                "review_in_months": d.review_in_months,
                "clinician": d.clinician,
                "comment": d.comment,
                "decided_at": _iso(d.decided_at),
                "id": d.id,
                "amends": d.amends_id,
                "amend_reason": d.amend_reason,
                "superseded": d.superseded,
            }
            for d in item.decisions
        ],
    }


def to_dict(timeline: PatientTimeline) -> dict[str, Any]:
    p = timeline.patient
    return {
        "format": JSON_FORMAT_NAME,
        "format_version": JSON_FORMAT_VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "patient": {
            "id": p.id,
            "identifier": p.identifier,
            "birth_year": p.birth_year,
            "sex": p.sex,
            "created_at": _iso(p.created_at),
        },
        "visits": [
            {
                "id": v.id,
                "visit_time": _iso(v.visit_time),
                "taken_on": v.taken_on.isoformat() if v.taken_on else None,
                "clinician": v.clinician,
                "model_version": v.model_version,
                "notes": v.notes,
                "lesions": [_lesion_dict(item) for item in v.lesions],
            }
            for v in timeline.visits
        ],
    }


def to_json(timeline: PatientTimeline) -> str:
    return json.dumps(to_dict(timeline), indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- outcomes (labelled data)

# Pseudonymous on purpose: database ids and the image hash, no identifier, file name or free text, so the
# file can go to whoever evaluates the next model; the clinic links rows back through the ids.
OUTCOME_COLUMNS = (
    "patient_id",
    "lesion_id",
    "lesion_number",
    "site",
    "body_region",
    "visit_id",
    "visit_number",
    "image_date",
    "age_at_visit",
    "sex",
    "image_sha256",
    "model_id",
    "model_checksum",
    "p_melanoma",
    "p_spread",
    "tta_views",
    "ugly_duckling",
    "ugly_duckling_flag",
    "rank",
    "ranked_in_visit",
    "histology",
    "histology_reported_on",
    "latest_image",
    "melanoma",
)


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def outcomes_to_csv(rows: list[OutcomeRow]) -> str:
    """One row per scored image of a lesion with histology; ``melanoma`` is the binary label (1/0, empty
    for "not_done")."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=OUTCOME_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(
            {
                "patient_id": r.patient_id,
                "lesion_id": r.lesion_id,
                "lesion_number": r.lesion_number,
                "site": r.site,
                "body_region": r.body_region or "",
                "visit_id": r.visit_id,
                "visit_number": r.visit_number,
                "image_date": r.image_date.isoformat(),
                "age_at_visit": "" if r.age_at_visit is None else r.age_at_visit,
                "sex": r.sex,
                "image_sha256": r.image_sha256,
                "model_id": _cell_text(r.model_id),
                "model_checksum": _cell_text(r.model_checksum),
                "p_melanoma": repr(r.p_melanoma),
                "p_spread": _number(r.p_spread),
                "tta_views": "" if r.tta_views is None else r.tta_views,
                "ugly_duckling": _number(r.ugly_duckling),
                "ugly_duckling_flag": _flag(r.outlier),
                "rank": r.rank,
                "ranked_in_visit": r.ranked_in_visit,
                "histology": r.histology,
                "histology_reported_on": "" if r.reported_on is None else r.reported_on.isoformat(),
                "latest_image": "yes" if r.latest_image else "no",
                "melanoma": {"melanoma": 1, "not_done": ""}.get(r.histology, 0),
            }
        )
    return buf.getvalue()
