"""Input checks with messages a clinician can act on (all raise ValueError)."""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, date, datetime, timedelta
from pathlib import PurePosixPath

from dashboard.store.models import (
    ACTIONS,
    ANATOMIC_SITES,
    BODY_REGION_MAX,
    FILENAME_MAX,
    HISTOLOGY_RESULTS,
    IDENTIFIER_MAX,
    LABEL_MAX,
    NAME_MAX,
    REVIEW_MONTHS_MAX,
    SEXES,
)
from dashboard.store.privacy import filename_looks_personal
from data import body_sites
from data.settings import LIMITS

EARLIEST_BIRTH_YEAR = LIMITS.earliest_birth_year


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
    """The uploader's file name as display text only: no control chars, bounded, without folders (a zip's or a
    path's folder names are often the patient's), and replaced by ``image`` + its extension when it reads like
    a name or a date (store.privacy.filename_looks_personal)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"original filename must be text, got {type(value).__name__}")
    cleaned = "".join(ch for ch in value if unicodedata.category(ch) != "Cc").strip()
    base = PurePosixPath(cleaned.replace("\\", "/")).name
    if filename_looks_personal(base):
        suffix = PurePosixPath(base).suffix.lower()
        base = "image" + (suffix if len(suffix) <= 6 and suffix[1:].isalnum() else "")
    return base[:FILENAME_MAX]


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


def review_months(value: object, action: str | None) -> int | None:
    """A monitor decision's repeat-imaging interval in months (1-24), or None; other decisions have none."""
    if value is None:
        return None
    if action != "monitor":
        raise ValueError(f"a repeat-imaging interval belongs to a monitor decision, not to {action or 'no decision'}")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= REVIEW_MONTHS_MAX:
        raise ValueError(f"the repeat-imaging interval must be 1 to {REVIEW_MONTHS_MAX} months, got {value!r}")
    return value


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


def histology_result(value: object) -> str:
    return choice(value, "histology result", HISTOLOGY_RESULTS)


def body_region(value: object, site: str) -> tuple[str | None, str]:
    """A body-map region and the site it maps onto: ``(region, site)``; None/blank keeps ``site``.

    An "unknown" site takes the region's; a known site that the region does not map onto is refused
    (a region on the arm cannot be a torso lesion).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, site
    if not isinstance(value, str):
        raise ValueError(f"body region must be text, got {type(value).__name__}")
    key = value.strip()
    if len(key) > BODY_REGION_MAX:
        raise ValueError(f"body region is {len(key)} characters long; the limit is {BODY_REGION_MAX}")
    region_site = body_sites.model_site(key)  # ValueError naming the unknown key
    if site not in (region_site, "unknown"):
        label = body_sites.region(key).label
        raise ValueError(f"body region {label!r} lies on the {region_site}, not on the {site}")
    return key, region_site


# A date typed in the clinic's time zone may be "tomorrow" in UTC: one day of slack, no more.
_DATE_SLACK = timedelta(days=1)


def past_date(value: object, what: str, birth_year: int | None = None) -> date | None:
    """A calendar date that is not in the future nor before the patient's birth year (None passes)."""
    if value is None:
        return None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValueError(f"{what} must be a calendar date (datetime.date), got {type(value).__name__}")
    if value > datetime.now(UTC).date() + _DATE_SLACK:
        raise ValueError(f"{what} {value.isoformat()} is in the future")
    if birth_year is not None and value.year < birth_year:
        raise ValueError(f"{what} {value.isoformat()} is before the patient's birth year {birth_year}")
    if value.year < EARLIEST_BIRTH_YEAR:
        raise ValueError(f"{what} {value.isoformat()} is before {EARLIEST_BIRTH_YEAR}")
    return value
