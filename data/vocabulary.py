"""The anatomic sites and sexes every record, upload and stored lesion uses (ISIC 2020's six sites plus
"unknown"; unknown is a value, not an error). Kept apart from schema.py, which maps other datasets' names onto
them with pandas, so that the case store and its command-line tools read them without importing pandas."""

from __future__ import annotations

UNKNOWN = "unknown"
SITES = (
    "torso",
    "lower extremity",
    "upper extremity",
    "head/neck",
    "palms/soles",
    "oral/genital",
    UNKNOWN,
)
SEXES = ("male", "female", UNKNOWN)
