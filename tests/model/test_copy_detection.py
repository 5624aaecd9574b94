"""With the shipped model, a photo and its other encoding are one photo, and a complete patient's different
lesions never are (model.ugly_duckling.NEAR_COPY_DISTANCE, measured on these data)."""

from __future__ import annotations

import pandas as pd
import pytest

from model.predictor import Predictor
from model.triage import LesionInput, PatientInfo, triage_patient


@pytest.mark.slow  # the shipped model on a whole real patient
def test_a_complete_patients_lesions_stay_apart_and_a_re_encoded_copy_is_caught(datasets_dir):
    patients = pd.read_csv(datasets_dir / "isic2020_patients" / "train.csv")
    subset = set(pd.read_csv(datasets_dir / "isic2020" / "train.csv")["image_name"])
    # the patient with the most lesions among those with a photo also in the 512 px subset (other encoding)
    shared = patients[patients["image_name"].isin(subset)]
    patient = patients[patients["patient_id"].isin(shared["patient_id"])].groupby("patient_id").size().idxmax()
    rows = patients[patients["patient_id"] == patient]
    assert len(rows) >= 15
    lesions = [
        LesionInput(name, datasets_dir / "isic2020_patients" / "train" / f"{name}.jpg") for name in rows["image_name"]
    ]
    twice = shared[shared["patient_id"] == patient]["image_name"].iloc[0]
    copy = LesionInput("copy-512px", datasets_dir / "isic2020" / "train" / f"{twice}.jpg")
    predictor = Predictor.from_checkpoint(None, device="cpu")
    alone = triage_patient(predictor, lesions, PatientInfo(), tta=2)
    assert not [n for n in alone.notes if "same photo" in n]  # no two different lesions taken for one photo
    both = triage_patient(predictor, [*lesions, copy], PatientInfo(), tta=2)
    [note] = [n for n in both.notes if "same photo" in n]
    assert note.startswith(f"“{twice}” and “copy-512px” look like the same photo")
