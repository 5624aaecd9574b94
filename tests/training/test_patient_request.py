"""The request for further complete patients: whole patients, none already present, seeded, sized as asked."""

from __future__ import annotations

import pandas as pd
import pytest

from training import patient_request


def write_shared(root, n_mel: int = 6, n_benign: int = 10):
    rows = []
    for p in range(n_mel + n_benign):
        for i in range(3 + p % 4):
            rows.append(
                {
                    "image_name": f"ISIC_{p:03d}{i}",
                    "patient_id": f"IP_{p:03d}",
                    "target": int(p < n_mel and i == 0),
                    "diagnosis": "melanoma" if p < n_mel and i == 0 else "nevus",
                }
            )
    full = pd.DataFrame(rows)
    (root / "isic2020" / "metadata").mkdir(parents=True)
    (root / "isic2020_patients").mkdir()
    full.to_csv(root / patient_request.FULL_METADATA, index=False)
    present = full[full["patient_id"].isin(["IP_000", "IP_010"])]  # one patient of each kind already complete
    present.to_csv(root / patient_request.COMPLETE_PATIENTS, index=False)
    return full


def test_the_request_lists_every_image_of_new_patients_only(tmp_path):
    full = write_shared(tmp_path)
    out = tmp_path / "request.csv"
    args = ["--data-root", str(tmp_path), "--melanoma-patients", "3", "--benign-patients", "4", "--out", str(out)]
    assert patient_request.main(args) == 0
    request = pd.read_csv(out)
    patients = request.groupby("patient_id")["target"].max()
    assert (patients == 1).sum() == 3 and (patients == 0).sum() == 4
    assert not {"IP_000", "IP_010"} & set(patients.index)
    for patient, images in request.groupby("patient_id"):  # whole patients: every image the metadata lists
        assert set(images["image_name"]) == set(full.loc[full["patient_id"] == patient, "image_name"])
    again = tmp_path / "again.csv"
    assert patient_request.main([*args[:-1], str(again)]) == 0
    assert again.read_text() == out.read_text()  # the same seed draws the same patients
    other = tmp_path / "other.csv"
    assert patient_request.main([*args[:-1], str(other), "--seed", "1"]) == 0
    assert other.read_text() != out.read_text()


def test_a_request_larger_than_what_is_left_is_refused(tmp_path, capsys):
    write_shared(tmp_path)
    out = tmp_path / "request.csv"
    code = patient_request.main(["--data-root", str(tmp_path), "--melanoma-patients", "6", "--out", str(out)])
    assert code == 2 and not out.exists()
    assert "only 5 patients with a melanoma are not yet complete; asked for 6" in capsys.readouterr().err


def test_missing_metadata_is_named(tmp_path, capsys):
    assert patient_request.main(["--data-root", str(tmp_path), "--out", str(tmp_path / "r.csv")]) == 2
    assert "train_full.csv: not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        patient_request.main(["--data-root", str(tmp_path), "--benign-patients", "-1", "--out", "x.csv"])
