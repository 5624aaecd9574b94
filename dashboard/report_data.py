"""What the visit report (dashboard/report.py) is made of, gathered without Streamlit: the saved visit and
its patient from the case store, each lesion's stored image, a saliency overlay computed now by the loaded
model (model/cam.py, the same path as the Saliency page), and the model's card figures. Producing the
report is audited (``patient.report``) under the signed-in user before its bytes are handed out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from dashboard.history_data import StoredImageError, stored_lesion_image
from dashboard.model_evidence import mole_check_sentence
from dashboard.operating_point import operating_point
from dashboard.report import LesionPictures, ModelFacts, ReportContext, visit_report_pdf
from dashboard.store.records import VisitView

REPORT_AUDIT_ACTION = "patient.report"
CAM_OPACITY = 0.45  # the gallery's overlay opacity

# (predictor, image, site, patient, method) -> heatmap; model/cam.py's explain unless a test passes another
Explain = Callable[[Any, Any, str, Any, str], Any]


def model_facts(config: dict[str, Any] | None, validation: dict[str, Any] | None = None) -> ModelFacts | None:
    """The loaded model's id, version and validation figures at its threshold, from its config (card data), and
    from its validation.json what they were on complete patients' moles."""
    if not config:
        return None
    from model.checkpoint import model_id

    op = operating_point(config)
    return ModelFacts(
        model_id=model_id(config),
        version=str(config["version"]) if config.get("version") else None,
        weights_sha256=str(config.get("weights_sha256") or "") or None,
        threshold=op.threshold,
        sensitivity=op.sensitivity,
        specificity=op.specificity,
        chosen_by=op.chosen_by,
        mole_check=mole_check_sentence(validation, config),
    )


def _cam_explain(predictor: Any, image: Any, site: str, patient: Any, method: str) -> Any:
    from model.cam import explain

    return explain(predictor, image, site, patient, method)


def lesion_pictures(
    store: Any,
    visit: VisitView,
    predictor: Any | None,
    method: str | None = None,
    explain: Explain = _cam_explain,
) -> dict[int, LesionPictures]:
    """Per lesion image id: the stored image (checked against its SHA-256) and, with a predictor, its
    saliency overlay. A picture that cannot be made leaves a note instead; the rest of the report stands."""
    from model.cam import overlay
    from model.cam_methods import DEFAULT_METHOD

    method = method or DEFAULT_METHOD
    out: dict[int, LesionPictures] = {}
    for lesion in visit.lesions:
        try:
            stored = stored_lesion_image(store, visit.id, lesion.image.sha256)
        except StoredImageError as exc:
            out[lesion.image.id] = LesionPictures(note=str(exc))
            continue
        cam, note = None, ""
        if predictor is not None:
            try:
                cam = overlay(
                    stored.image, explain(predictor, stored.image, stored.site, stored.patient, method), CAM_OPACITY
                )
            except Exception as exc:  # one failed overlay must not cost the whole report
                note = f"Saliency overlay unavailable: {type(exc).__name__}: {exc}"
            else:
                scored_by = stored.scored_by
                if scored_by is not None and scored_by != predictor.model_id:
                    note = f"Overlay by the model loaded now ({predictor.model_id}), not the one that scored it."
        out[lesion.image.id] = LesionPictures(thumbnail=stored.image, cam=cam, note=note)
    return out


def report_filename(visit: VisitView) -> str:
    """No identifier in the name (it stays in download lists and browser history): the patient's database id;
    the identifier is printed in the report."""
    return f"visit-report_patient-{visit.patient_id}_visit-{visit.number or visit.id}_{visit.image_date:%Y-%m-%d}.pdf"


def visit_report(
    store: Any,
    visit_id: int,
    predictor: Any | None,
    *,
    method: str | None = None,
    explain: Explain = _cam_explain,
    now: dt.datetime | None = None,
    validation: dict[str, Any] | None = None,
) -> bytes:
    """The PDF report of a saved visit, as the signed-in user of ``store`` (a dashboard.user_store.UserStore) may
    read it. The report is audited before it is returned: no audit entry, no report."""
    from model.cam_methods import CAM_LABELS, DEFAULT_METHOD
    from model.cam_overlay import colour_scale

    visit = store.load_visit(int(visit_id))  # role-checked read
    patient = store.get_patient(visit.patient_id)
    pictures = lesion_pictures(store, visit, predictor, method, explain)
    method = method or DEFAULT_METHOD
    user = getattr(store, "user", None)
    context = ReportContext(
        generated_by=getattr(user, "username", "") or "",
        generated_at=now,
        cam_method=CAM_LABELS.get(method, method).split(" (")[0] if predictor is not None else "",
        cam_note="" if predictor is not None else "No model is loaded now, so no saliency overlays are shown.",
        colour_scale=colour_scale(width=360, height=52, opacity=CAM_OPACITY) if predictor is not None else None,
    )
    facts = model_facts(getattr(predictor, "config", None), validation)
    histology = {les.id: les.histology for les in store.list_lesions(visit.patient_id) if les.histology}
    pdf = visit_report_pdf(patient, visit, facts, pictures, context, histology)
    store.record_view(
        REPORT_AUDIT_ACTION,
        visit.patient_id,
        {
            "page": "history",
            "visit_id": visit.id,
            "lesion_ids": [les.lesion_id for les in visit.lesions],
            "model_id": visit.model_version,
        },
    )
    return pdf
