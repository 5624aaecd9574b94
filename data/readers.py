"""Dataset readers: every layout becomes one DataFrame of RECORD_COLUMNS.

The registry of datasets by name (`--datasets ham10000 isic2017 isic2020`, as data rather than if-chains)
and the combining of several are data/datasets.py.
"""

from __future__ import annotations

import logging
import unicodedata
from pathlib import Path

import pandas as pd

from data.csv_files import match_columns, parse_csv, read_csv, require_columns
from data.errors import DatasetError
from data.images import image_extensions
from data.schema import (
    RECORD_COLUMNS,
    UNKNOWN,
    UNKNOWN_MARKERS,
    normalise_age,
    normalise_diagnosis,
    normalise_sex,
    normalise_site,
)
from data.spreadsheet_cells import starts_like_formula

logger = logging.getLogger(__name__)


# With on_missing="keep" (the predict CLI), rows that cannot be scored are kept with the reason in this
# extra column (None for a good row) instead of failing the whole file: the caller reports them.
ROW_PROBLEM = "problem"


def image_name_problem(name: str, listed: bool = True) -> str | None:
    """Why `name` cannot name an image (None when it can). listed: it comes from a CSV's image_name
    column, where the Kaggle layout gives names without their file extension."""
    if not name.strip():
        return "image_name is empty"
    if starts_like_formula(name):  # never written back out as a name
        return (
            f"image_name {name!r} starts with {name[0]!r}, which spreadsheet programs run as a formula; rename the file"
        )
    if "/" in name or "\\" in name or name in (".", ".."):
        return f"image_name {name!r} is a path; list the file name only (no folders, no '..')"
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        return f"image_name {name!r} contains control or invisible characters"
    if listed:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and f".{ext.lower()}" in image_extensions():
            return f"image_name {name!r} includes the file extension .{ext}; list it without (as {stem!r})"
    return None


def _nfc(text: str) -> str:
    """One Unicode spelling (macOS writes decomposed file names, CSVs are usually composed)."""
    return unicodedata.normalize("NFC", text)


# ---------------------------------------------------------------- helpers


# The Kaggle layout's columns read_kaggle uses; a CSV may spell them in any case, with spaces around.
KAGGLE_COLUMNS = (
    "image_name",
    "patient_id",
    "sex",
    "age_approx",
    "anatom_site_general_challenge",
    "diagnosis",
    "target",
)


def index_images(folder: Path) -> dict[str, Path]:
    """Map file stem -> path for every file in `folder` with an extension Pillow reads."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"image folder not found: {folder}")
    extensions = image_extensions()
    index: dict[str, Path] = {}
    twice: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in extensions:
            stem = _nfc(path.stem)
            if stem in index:
                twice.append(f"{index[stem].name} (used) and {path.name}")
            index.setdefault(stem, path)
    if twice:  # a.jpg and a.png: one name, two files; the CSV's row cannot say which it means
        shown = "; ".join(twice[:5]) + (f"; and {len(twice) - 5} more" if len(twice) > 5 else "")
        logger.warning(
            "%s: %d image name(s) have two files, the first by name is scored: %s", folder, len(twice), shown
        )
    return index


def attach_paths(
    frame: pd.DataFrame, folder: Path, on_missing: str, source: str, lines: list[int] | None = None
) -> pd.DataFrame:
    """Find `<folder>/<image_id>.<any ext>`; missing files raise, or are kept with image_path None.

    With on_missing="keep", every row that cannot be scored (a problem the reader already put in ROW_PROBLEM,
    a missing file, a name that is a path, a formula, has its extension, is empty, or repeats an earlier row)
    keeps its reason in ROW_PROBLEM. lines: each row's line in the CSV (default: header on line 1, no gaps)."""
    if on_missing not in ("raise", "keep"):
        raise ValueError(f"on_missing must be 'raise' or 'keep', got {on_missing!r}")
    index = index_images(folder)
    frame = frame.copy()
    if on_missing == "keep":
        problems = row_problems(frame, lines or list(range(2, len(frame) + 2)))
        usable = problems.isna()
    else:
        problems = pd.Series([None] * len(frame), index=frame.index, dtype=object)
        usable = pd.Series(True, index=frame.index)
    paths = frame["image_id"].map(lambda i: str(index[_nfc(i)]) if _nfc(i) in index else None).where(usable)
    missing = frame.loc[paths.isna() & usable, "image_id"].tolist()
    if missing and on_missing == "raise":
        first = ", ".join(missing[:5])
        raise DatasetError(f"{source}: {len(missing)} listed image(s) missing in {folder} (first: {first})")
    problems[paths.isna() & usable] = f"image file not found in {folder} (no file named <image_name>.<extension>)"
    frame["image_path"] = paths.astype(object).where(paths.notna(), None)
    if on_missing == "keep":
        frame[ROW_PROBLEM] = problems.astype(object).where(problems.notna(), None)
    return frame


def row_problems(frame: pd.DataFrame, lines: list[int]) -> pd.Series:
    """Each row's reason not to score it (None for a good row): the reader's own (ROW_PROBLEM), a bad name, or a
    name listed again after a good row (compared in one Unicode spelling, as files are looked up)."""
    earlier = frame[ROW_PROBLEM] if ROW_PROBLEM in frame else pd.Series(None, index=frame.index, dtype=object)
    problems = earlier.where(earlier.notna(), frame["image_id"].map(image_name_problem)).astype(object)
    first_line: dict[str, int] = {}
    for line, (row, name) in zip(lines, frame["image_id"].items(), strict=True):
        if pd.notna(problems[row]):
            continue
        key = _nfc(name)
        if key in first_line:
            problems[row] = f"line {line} lists {name!r} again (first on line {first_line[key]}); scored once"
        else:
            first_line[key] = line
    return problems


def validate_records(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    if ROW_PROBLEM in frame:
        # Per-row problems are already named in ROW_PROBLEM; the rows stay for the caller to report.
        return frame[[*RECORD_COLUMNS, ROW_PROBLEM]].reset_index(drop=True)
    duplicated = frame.loc[frame["image_id"].duplicated(), "image_id"].unique().tolist()
    if duplicated:
        raise DatasetError(f"{source}: duplicate image ids: {', '.join(map(str, duplicated[:5]))}")
    empty = frame["image_id"].astype(str).str.strip() == ""
    if empty.any():
        raise DatasetError(f"{source}: {int(empty.sum())} row(s) with an empty image id")
    return frame[RECORD_COLUMNS].reset_index(drop=True)


def parse_target(values: pd.Series, source: str, strict: bool = True) -> pd.Series:
    """Melanoma labels 0/1 (<NA> when empty). strict: any other value fails the file (training data);
    otherwise (scoring, where labels are not used) it is reported and read as unlabelled."""
    numeric = pd.to_numeric(values.replace("", None), errors="coerce")
    bad_mask = (numeric.isna() & (values.astype(str).str.strip() != "")) | (numeric.notna() & ~numeric.isin([0, 1]))
    bad = values[bad_mask]
    if len(bad):
        found = ", ".join(map(str, bad.unique()[:5]))
        if strict:
            raise DatasetError(f"{source}: labels must be 0 or 1; found {found}")
        logger.warning("%s: labels must be 0 or 1; read as unlabelled: %s", source, found)
    return numeric.where(~bad_mask).astype("Int64")


# ---------------------------------------------------------------- layouts


def read_kaggle(csv_path: Path, images_dir: Path, dataset: str = "user", on_missing: str = "raise") -> pd.DataFrame:
    """SIIM-ISIC 2020 layout: train.csv / test.csv + a folder of `<image_name>.<ext>`."""
    csv_path = Path(csv_path)
    if on_missing == "keep":  # scoring: a malformed row is reported, the others scored
        table = parse_csv(csv_path)
        frame = match_columns(table.frame, KAGGLE_COLUMNS, csv_path.name)
        frame, lines = require_columns(frame, csv_path.name, ["image_name"]), table.lines
        unreadable = pd.Series(table.problems, index=frame.index, dtype=object)
        frame.loc[unreadable.notna(), [c for c in frame.columns if c != "image_name"]] = ""
    else:
        frame = read_csv(csv_path, required=[])
        frame = require_columns(match_columns(frame, KAGGLE_COLUMNS, csv_path.name), csv_path.name, ["image_name"])
        lines, unreadable = list(range(2, len(frame) + 2)), None
    source = f"{dataset} ({csv_path.name})"
    n = len(frame)

    def column(name: str) -> pd.Series:
        return frame[name] if name in frame.columns else pd.Series([""] * n, index=frame.index)

    records = pd.DataFrame(
        {
            "image_id": frame["image_name"].str.strip(),
            "dataset": dataset,
            "sex": normalise_sex(column("sex"), source, lines),
            "age": normalise_age(column("age_approx"), source, lines),
            "site": normalise_site(column("anatom_site_general_challenge"), source, lines),
            "diagnosis": normalise_diagnosis(column("diagnosis")),
            "target": parse_target(column("target"), source, strict=on_missing == "raise")
            if "target" in frame.columns
            else pd.Series([pd.NA] * n, dtype="Int64"),
        }
    )
    patient = column("patient_id").str.strip()
    if on_missing == "keep" and "patient_id" in frame.columns:
        refused = unreadable.notna() | (records["image_id"] == "")  # reported for that, not for the patient
        records["group_id"], records[ROW_PROBLEM] = scoring_patients(patient, lines, source, refused)
    else:  # training, or no patient column: an image without a patient id is its own group
        records["group_id"] = patient.where(patient != "", records["image_id"])
    if unreadable is not None:
        records[ROW_PROBLEM] = unreadable.where(unreadable.notna(), records.get(ROW_PROBLEM))
    # The melanoma label is the ground truth; keep the diagnosis consistent with it.
    records.loc[records["target"].eq(1).fillna(False), "diagnosis"] = "melanoma"
    records = attach_paths(records, Path(images_dir), on_missing, source, lines=lines)
    return validate_records(records, source)


def patient_id_problem(value: str) -> str | None:
    """Why a patient id cannot be used (None when it can); never quotes the id, which is personal data."""
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in value):
        return "patient_id contains control or invisible characters; correct it in the CSV"
    return None


def scoring_patients(
    patient: pd.Series, lines: list[int], source: str, unread: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """For scoring: each row's patient (None when blank or a placeholder such as NA: never an invented patient,
    the image is ranked alone) and the rows refused for their patient id (ROW_PROBLEM). unread: rows the CSV
    reader could not read or that name no image, refused for that (not counted as rows without a patient)."""
    placeholder = patient.str.casefold().isin(UNKNOWN_MARKERS)
    blank = placeholder & ~unread
    problems = patient.map(patient_id_problem).astype(object)
    groups = patient.astype(object).where(~placeholder & problems.isna(), None)
    if blank.any():
        where = [line for line, b in zip(lines, blank, strict=True) if b]
        logger.warning(
            "%s: %d row(s) without a patient id (blank or a placeholder such as NA), on line(s) %s: each is scored "
            "alone, with no patient, ugly-duckling z or rank",
            source,
            len(where),
            shown_lines(where),
        )
    return groups, problems.where(problems.notna(), None)


def shown_lines(lines: list[int], limit: int = 20) -> str:
    text = ", ".join(map(str, lines[:limit]))
    return text + (f" and {len(lines) - limit} more" if len(lines) > limit else "")


def read_ham10000(root: Path, on_missing: str = "raise") -> pd.DataFrame:
    """HAM10000: one row per image; several images can show the same lesion (group = lesion_id)."""
    root = Path(root)
    frame = read_csv(root / "HAM10000_metadata.csv", ["lesion_id", "image_id", "dx", "age", "sex", "localization"])
    diagnosis = normalise_diagnosis(frame["dx"])
    records = pd.DataFrame(
        {
            "image_id": frame["image_id"].str.strip(),
            "group_id": frame["lesion_id"].str.strip(),
            "dataset": "ham10000",
            "sex": normalise_sex(frame["sex"], "ham10000"),
            "age": normalise_age(frame["age"], "ham10000"),
            "site": normalise_site(frame["localization"], "ham10000"),
            "diagnosis": diagnosis,
            "target": (diagnosis == "melanoma").astype("Int64"),
        }
    )
    records = attach_paths(records, root / "images", on_missing, "ham10000")
    return validate_records(records, "ham10000")


def read_isic2017(root: Path, on_missing: str = "raise") -> pd.DataFrame:
    """ISIC 2017 Part 3: classes CSV (melanoma 0/1) + metadata CSV (age, sex) per split."""
    root = Path(root)
    parts = []
    for split in ("Training", "Validation", "Test"):
        classes_csv = root / f"ISIC-2017_{split}_Classes.csv"
        if not classes_csv.exists():
            continue
        classes = read_csv(classes_csv, ["image_id", "melanoma"])
        meta_csv = root / f"ISIC-2017_{split}_Data_metadata.csv"
        meta = read_csv(meta_csv, ["image_id", "age_approximate", "sex"]) if meta_csv.exists() else None
        if meta is not None:
            classes = classes.merge(meta, on="image_id", how="left").fillna("")
        else:
            classes["age_approximate"] = ""
            classes["sex"] = ""
        target = parse_target(classes["melanoma"].str.replace(r"\.0$", "", regex=True), classes_csv.name)
        records = pd.DataFrame(
            {
                "image_id": classes["image_id"].str.strip(),
                "dataset": "isic2017",
                "sex": normalise_sex(classes["sex"], classes_csv.name),
                "age": normalise_age(classes["age_approximate"], classes_csv.name),
                "site": UNKNOWN,
                "diagnosis": target.map({1: "melanoma"}).astype(object).fillna(UNKNOWN),
                "target": target,
            }
        )
        records["group_id"] = records["image_id"]
        parts.append(attach_paths(records, root / f"ISIC-2017_{split}_Data", on_missing, classes_csv.name))
    if not parts:
        raise DatasetError(f"isic2017: no ISIC-2017_*_Classes.csv found in {root}")
    return validate_records(pd.concat(parts, ignore_index=True), "isic2017")


def read_folder(folder: Path, dataset: str = "folder", keep_problems: bool = False) -> pd.DataFrame:
    """A plain folder: every file in it is an image to score (non-images fail later, per file).

    keep_problems: add ROW_PROBLEM for files whose name cannot be written back safely (e.g. starts with
    '=', which a spreadsheet would run as a formula)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"image folder not found: {folder}")
    # Every entry but folders and hidden files: a broken link, a link loop or a pipe gets its own error row when
    # it is read (it was left out without a word, and the summary did not count it).
    files = sorted(p for p in folder.iterdir() if not p.is_dir() and not p.name.startswith("."))
    records = pd.DataFrame(
        {
            "image_path": [str(p) for p in files],
            "image_id": [p.stem for p in files],
            "dataset": dataset,
            "sex": UNKNOWN,
            "age": float("nan"),
            "site": UNKNOWN,
            "diagnosis": UNKNOWN,
            "target": pd.Series([pd.NA] * len(files), dtype="Int64"),
        }
    )
    # Two files with the same stem (a.jpg, a.png) are different uploads: keep both, named by filename.
    dup = records["image_id"].duplicated(keep=False)
    records.loc[dup, "image_id"] = [Path(p).name for p in records.loc[dup, "image_path"]]
    records["group_id"] = records["image_id"]
    if keep_problems:
        problems = records["image_id"].map(lambda name: image_name_problem(name, listed=False))
        records[ROW_PROBLEM] = problems.astype(object).where(problems.notna(), None)
    return validate_records(records, f"folder {folder.name}")


def read_derm7pt(root: Path, on_missing: str = "raise") -> pd.DataFrame:
    """Derm7pt (Kawahara et al. 2019): one dermoscopic image per case, no patient ids, no age.

    External test data only: EXTERNAL_ONLY keeps it out of training."""
    root = Path(root)
    frame = read_csv(root / "labels.csv", ["image_name", "diagnosis", "target", "location", "sex"])
    records = pd.DataFrame(
        {
            "image_id": frame["image_name"].str.strip(),
            "dataset": "derm7pt",
            "sex": normalise_sex(frame["sex"], "derm7pt"),
            "age": float("nan"),
            "site": normalise_site(frame["location"], "derm7pt"),
            "diagnosis": normalise_diagnosis(frame["diagnosis"]),
            "target": parse_target(frame["target"], "derm7pt"),
        }
    )
    records.loc[records["target"].eq(1).fillna(False), "diagnosis"] = "melanoma"
    records["group_id"] = records["image_id"]
    records = attach_paths(records, root / "images", on_missing, "derm7pt")
    return validate_records(records, "derm7pt")
