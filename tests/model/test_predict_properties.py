"""Property-based test of the predict CLI's contract (hypothesis).

Generated CSVs and image folders carry random defects: missing files, names that are paths, formulas, carry
their extension or are empty, repeated rows, corrupt, empty, tiny, strip-shaped, animated and non-image
files, and nonsense metadata. Whatever the mix: every valid row is scored, every invalid row is reported
in the errors file with a reason, the run never raises, the output always parses, and the exit status is
1 exactly when nothing could be scored.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from data.spreadsheet_cells import defuse_formula
from model.predict import main

GOOD = "good"
DEFECTS = (
    "missing",
    "with_extension",
    "path",
    "formula",
    "empty_name",
    "repeated",
    "corrupt",
    "empty_file",
    "tiny",
    "strip",
    "animated",
    "not_an_image",
)
KINDS = (GOOD, GOOD, *DEFECTS)  # good rows twice as likely as any one defect
NAME_CHARS = "abcxyzABC0189_äöΩ"


def _encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.text(NAME_CHARS, min_size=1, max_size=6),
        st.sampled_from(["F", "M", "female", "male", "banana", "", "unknown"]),
        st.sampled_from(["45", "", "forty", "-5", "300", "1e308", "nan", "62.5"]),
        st.sampled_from(["P1", "P2", ""]),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=6,
)


def build_case(folder: Path, rows) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Write the images for `rows`; return the CSV frame, the names that must be scored and those reported."""
    images = folder / "images"
    images.mkdir()
    table, valid, invalid = [], [], []
    for i, (kind, base, sex, age, patient, shade) in enumerate(rows):
        name = f"{base}_{i}"
        colour = (shade, 255 - shade, (shade * 7) % 256)
        if kind == GOOD:
            (images / f"{name}.png").write_bytes(_encode(Image.new("RGB", (64, 48), colour), "PNG"))
        elif kind == "with_extension":
            (images / f"{name}.png").write_bytes(_encode(Image.new("RGB", (64, 48), colour), "PNG"))
            name = f"{name}.png"
        elif kind == "path":
            name = f"../{name}"
        elif kind == "formula":
            name = f"={name}"
        elif kind == "empty_name":
            name = ""
        elif kind == "repeated":
            if not valid:  # nothing to repeat yet: a listed file that is not there
                kind = "missing"
            else:
                name = valid[0]
        elif kind == "corrupt":
            data = _encode(Image.new("RGB", (64, 48), colour), "JPEG")
            (images / f"{name}.jpg").write_bytes(data[: len(data) // 2])
        elif kind == "empty_file":
            (images / f"{name}.jpg").write_bytes(b"")
        elif kind == "tiny":
            (images / f"{name}.png").write_bytes(_encode(Image.new("RGB", (1, 1), colour), "PNG"))
        elif kind == "strip":
            (images / f"{name}.png").write_bytes(_encode(Image.new("RGB", (400, 2), colour), "PNG"))
        elif kind == "animated":
            frames = [Image.new("RGB", (64, 64), colour), Image.new("RGB", (64, 64), "white")]
            data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
            (images / f"{name}.gif").write_bytes(data)
        elif kind == "not_an_image":
            (images / f"{name}.png").write_text("patient notes, not an image")
        (valid if kind == GOOD else invalid).append(name)
        table.append({"image_name": name, "patient_id": patient, "sex": sex, "age_approx": age})
    return pd.DataFrame(table), valid, invalid


@settings(
    max_examples=25,
    deadline=None,
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rows=rows_strategy)
def test_every_row_is_scored_or_reported_and_the_output_parses(tiny_checkpoint, rows):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frame, valid, invalid = build_case(folder, rows)
        csv = folder / "visit.csv"
        frame.to_csv(csv, index=False)
        out = folder / "out" / "predictions.csv"

        code = main(
            [
                "--checkpoint",
                str(tiny_checkpoint),  # plumbing: the values of the scores do not matter here
                "--input",
                str(csv),
                "--images",
                str(folder / "images"),
                "--out",
                str(out),
                "--tta",
                "1",
                "--batch-size",
                "2",
            ]
        )

        assert code == (0 if valid else 1)
        table = pd.read_csv(out, dtype={"image_name": str}, keep_default_na=False)
        assert list(table.columns[:2]) == ["image_name", "target"]
        assert list(table.columns[-2:]) == ["tta_spread", "tta_views"]
        assert table["image_name"].tolist() == valid
        assert pd.to_numeric(table["target"]).between(0, 1).all()
        errors_path = out.with_name("predictions.errors.csv")
        if invalid:
            errors = pd.read_csv(errors_path, dtype=str, keep_default_na=False)
            assert list(errors.columns) == ["image_id", "image_path", "reason"]
            assert sorted(errors["image_id"]) == sorted(str(defuse_formula(n)) for n in invalid)
            assert (errors["reason"].str.len() > 5).all()
        else:
            assert not errors_path.exists()
