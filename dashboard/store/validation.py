"""Input checks with messages a clinician can act on (all raise ValueError)."""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime

from dashboard.store.models import (
    ACTIONS,
    ANATOMIC_SITES,
    FILENAME_MAX,
    IDENTIFIER_MAX,
    LABEL_MAX,
    NAME_MAX,
    SEXES,
)

EARLIEST_BIRTH_YEAR = 1900


def _has_control_chars(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def text(value: object, what: str, *, max_len: int, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > max_len:
        raise ValueError(f"{what} is {len(value)} characters long; the limit is {max_len}")
    return value


def identifier(value: object) -> str:
    value = text(value, "patient identifier", max_len=IDENTIFIER_MAX)
    if _has_control_chars(value):
        raise ValueError("patient identifier contains control characters")
    return value


def name(value: object, what: str) -> str:
    value = text(value, what, max_len=NAME_MAX)
    if _has_control_chars(value):
        raise ValueError(f"{what} contains control characters")
    return value


def free_text(value: object, what: str, max_len: int = 10_000) -> str:
    # Notes and comments: optional, multi-line allowed.
    return text(value, what, max_len=max_len, required=False)


def label(value: object) -> str:
    return text(value, "lesion label", max_len=LABEL_MAX)


def original_filename(value: object) -> str:
    """Keep the uploader's filename as display text only: no control chars, bounded."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"original filename must be text, got {type(value).__name__}")
    cleaned = "".join(ch for ch in value if unicodedata.category(ch) != "Cc").strip()
    return cleaned[:FILENAME_MAX]


def choice(value: object, what: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of: " + ", ".join(allowed))
    return value


def site(value: object) -> str:
    return choice(value, "anatomic site", ANATOMIC_SITES)


def sex(value: object) -> str:
    return choice(value, "sex", SEXES)


def action(value: object) -> str:
    return choice(value, "decision action", ACTIONS)


def birth_year(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"birth year must be a whole number, got {value!r}")
    this_year = datetime.now(UTC).year
    if not EARLIEST_BIRTH_YEAR <= value <= this_year:
        raise ValueError(f"birth year {value} is outside {EARLIEST_BIRTH_YEAR}–{this_year}")
    return value


def score(value: object, what: str, *, unit_interval: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value}")
    if unit_interval and not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be between 0 and 1, got {value}")
    return value


def rank(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"rank must be a whole number ≥ 1, got {value!r}")
    return value


def positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a whole number ≥ 1, got {value!r}")
    return value


def aware_time(value: object, what: str) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (e.g. datetime.now(UTC))")
    return value.astimezone(UTC)
