"""One record schema and one vocabulary for every dataset.

Every reader produces a DataFrame with RECORD_COLUMNS. Sites are mapped onto ISIC 2020's six
anatomic sites plus "unknown" (data/vocabulary.py); unknown is a value, not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

# The vocabulary lives in data/vocabulary.py (no pandas, for the case store); its names stay importable here.
from data.vocabulary import SEXES as SEXES
from data.vocabulary import SITES as SITES
from data.vocabulary import UNKNOWN as UNKNOWN

logger = logging.getLogger(__name__)

RECORD_COLUMNS = [
    "image_path",  # str path on disk, or None when the listed file is missing
    "image_id",
    "group_id",  # patient (ISIC 2020), lesion (HAM10000), else the image itself
    "dataset",
    "sex",
    "age",  # float years, NaN when unknown
    "site",
    "diagnosis",
    "target",  # melanoma 1/0, <NA> when unlabelled
]


# Site names seen in ISIC 2019/2020, HAM10000 and user data -> our vocabulary.
SITE_ALIASES: dict[str, str] = {
    **{s: s for s in SITES},
    "anterior torso": "torso",
    "posterior torso": "torso",
    "lateral torso": "torso",
    "trunk": "torso",
    "back": "torso",
    "chest": "torso",
    "abdomen": "torso",
    "lower extremity": "lower extremity",
    "foot": "lower extremity",
    "leg": "lower extremity",
    "upper extremity": "upper extremity",
    "hand": "upper extremity",
    "arm": "upper extremity",
    "head/neck": "head/neck",
    "face": "head/neck",
    "scalp": "head/neck",
    "ear": "head/neck",
    "neck": "head/neck",
    "head": "head/neck",
    "acral": "palms/soles",
    "palms/soles": "palms/soles",
    "oral/genital": "oral/genital",
    "genital": "oral/genital",
    "oral": "oral/genital",
    # Derm7pt's locations
    "head neck": "head/neck",
    "upper limbs": "upper extremity",
    "lower limbs": "lower extremity",
    "buttocks": "torso",
    "genital areas": "oral/genital",
    "": UNKNOWN,
    "nan": UNKNOWN,
    "none": UNKNOWN,
}

# Diagnosis vocabulary of the auxiliary head (the 2020 winners' classes, merged where our data cannot
# tell them apart). "unknown" is not a class: it is masked out of the diagnosis loss.
DIAGNOSES = ("melanoma", "nevus", "bkl", "bcc", "akiec", "vasc", "df")
DIAGNOSIS_ALIASES: dict[str, str] = {
    "melanoma": "melanoma",
    "mel": "melanoma",
    "nevus": "nevus",
    "nv": "nevus",
    "bkl": "bkl",
    "seborrheic keratosis": "bkl",
    "lentigo nos": "bkl",
    "solar lentigo": "bkl",
    "lichenoid keratosis": "bkl",
    "bcc": "bcc",
    "basal cell carcinoma": "bcc",
    "akiec": "akiec",
    "actinic keratosis": "akiec",
    "vasc": "vasc",
    "df": "df",
    "dermatofibroma": "df",
}


def normalise_site(values: pd.Series, source: str, lines: Sequence[int] | None = None) -> pd.Series:
    """Map free-text sites onto SITES; unrecognised names become unknown and are reported once, by line."""
    cleaned = values.fillna("").astype(str).str.strip().str.lower()
    mapped = cleaned.map(SITE_ALIASES)
    _report(source, "anatomic site names not recognised, treated as unknown", mapped.isna(), lines)
    return mapped.fillna(UNKNOWN)


def _report(source: str | None, problem: str, bad: pd.Series, lines: Sequence[int] | None) -> None:
    """One warning for the values of a column that were not understood: how many and where (the CSV's lines,
    or data rows counted from 1), never the values themselves, which are free text and may name a person."""
    positions = [i for i, flag in enumerate(bad.tolist()) if flag]
    if not positions:
        return
    where = [lines[i] for i in positions] if lines is not None else [i + 1 for i in positions]
    more = f" and {len(where) - SHOWN_LINES} more" if len(where) > SHOWN_LINES else ""
    logger.warning(
        "%s: %d %s (%s %s%s)",
        source or "metadata",
        len(where),
        problem,
        "lines" if lines is not None else "data rows",
        ", ".join(str(w) for w in where[:SHOWN_LINES]),
        more,
    )


# Spellings of "not recorded": unknown without a warning. Anything else that is not a valid value is
# reported (like an unknown site name) and then treated as unknown.
UNKNOWN_MARKERS = frozenset({"", "unknown", "nan", "none", "na", "n/a", "?", "-"})
SEX_ALIASES: dict[str, str] = {"male": "male", "m": "male", "female": "female", "f": "female"}
MAX_AGE = 120.0


SHOWN_LINES = 10


def normalise_sex(values: pd.Series, source: str | None = None, lines: Sequence[int] | None = None) -> pd.Series:
    """male/female (M/F accepted in any case); unrecognised values become unknown and are reported once."""
    cleaned = values.fillna("").astype(str).str.strip().str.lower()
    mapped = cleaned.map(SEX_ALIASES)
    invalid = mapped.isna() & ~cleaned.isin(UNKNOWN_MARKERS)
    _report(source, "sex values not recognised (expected male/female or M/F), treated as unknown", invalid, lines)
    return mapped.fillna(UNKNOWN)


def age_problems(values: pd.Series) -> pd.Series:
    """Per value: why it is not an age in years (None when it is one or is simply not recorded)."""
    text = values.fillna("").astype(str).str.strip()
    age = pd.to_numeric(text.where(~text.str.lower().isin(UNKNOWN_MARKERS)), errors="coerce").astype(float)
    reasons = pd.Series([None] * len(values), index=values.index, dtype=object)
    recorded = ~text.str.lower().isin(UNKNOWN_MARKERS)
    reasons[recorded & age.isna()] = "not a number"
    reasons[recorded & age.notna() & ((age < 0) | (age > MAX_AGE) | ~np.isfinite(age))] = f"outside 0-{MAX_AGE:.0f}"
    return reasons


def normalise_age(values: pd.Series, source: str | None = None, lines: Sequence[int] | None = None) -> pd.Series:
    """Age in years (float); missing, non-numeric or outside 0-120 become NaN, and invalid values are reported."""
    text = values.fillna("").astype(str).str.strip()
    age = pd.to_numeric(text, errors="coerce").astype(float)
    bad = age_problems(values).notna()
    _report(
        source, f"age values that are not an age in years (a number 0-{MAX_AGE:.0f}), treated as unknown", bad, lines
    )
    return age.where(~bad & (age >= 0) & (age <= MAX_AGE))


def normalise_diagnosis(values: pd.Series) -> pd.Series:
    cleaned = values.fillna("").astype(str).str.strip().str.lower()
    return cleaned.map(DIAGNOSIS_ALIASES).fillna(UNKNOWN)


def lesion_metadata(sites: list[str | None], sex: str | None, age: object, source: str) -> pd.DataFrame:
    """site/sex/age rows for one patient's lesions, normalised once (unknown or invalid values reported once)."""
    n = len(sites)
    return pd.DataFrame(
        {
            "site": normalise_site(pd.Series([site or UNKNOWN for site in sites], dtype=object), source),
            "sex": normalise_sex(pd.Series([sex or UNKNOWN] * n, dtype=object), source),
            "age": normalise_age(pd.Series([age] * n, dtype=object), source),
        }
    )
