"""The project's settings, in one place: where things are, every environment variable it reads, and the
limits every input is checked against.

It lives in ``data``, the lowest layer, so every layer (data, model, training, the dashboard, its case
store, bench and the tests) can read it without an import against the layer direction
(tests/test_layers.py). It imports nothing of ours.

The environment is read here and nowhere else. `environment()` reads it when asked (a frozen, typed
snapshot), not once at import: the dashboard, its tests and the store's CLI point the same process at
another database or model by setting a variable, and that must keep working. The dashboard's own settings
(sign-in lockout, idle sign-out, draft retention) are read and checked apart, by `dashboard_settings()`: a bad
one stops the dashboard and the accounts CLI, which use them, not the model and training command lines.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VAR_DIR = REPO_ROOT / "var"  # the local SQLite file and image files, when nothing else is set
DEFAULT_CHECKPOINT = REPO_ROOT / "model" / "weights" / "default"
DEFAULT_SHARED_DIR = REPO_ROOT.parent / "shared"  # the read-only datasets, beside the repository

# Every environment variable the project reads (training/distributed.py also reads torchrun's own
# WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE and TORCHELASTIC_RUN_ID, which torchrun sets).
DATABASE_URL_ENV = "DATABASE_URL"  # the case database; default: a SQLite file under var/ (a relative path: from here)
DATA_DIR_ENV = "TRIAGE_DATA_DIR"  # the case store's image files; default: var/images
CHECKPOINT_ENV = "TRIAGE_CHECKPOINT"  # the model folder the dashboard loads; default: model/weights/default
SHARED_DIR_ENV = "TRIAGE_SHARED_DIR"  # the datasets; default: ../shared
IDLE_TIMEOUT_ENV = "TRIAGE_IDLE_TIMEOUT_MINUTES"  # sign-out after inactivity
LOGIN_MAX_FAILURES_ENV = "TRIAGE_LOGIN_MAX_FAILURES"  # failed sign-ins before a username is locked...
LOGIN_LOCK_MINUTES_ENV = "TRIAGE_LOGIN_LOCK_MINUTES"  # ...within (and for) this many minutes
DRAFT_KEEP_DAYS_ENV = "TRIAGE_DRAFT_KEEP_DAYS"  # an unsaved review (images, identifier) is kept this long unused
CPU_THREADS_ENV = "OMP_NUM_THREADS"  # the standard knob: CPU threads for scoring; default: every core

DEFAULT_IDLE_MINUTES = 15.0
DEFAULT_DRAFT_KEEP_DAYS = 14
DEFAULT_LOGIN_MAX_FAILURES = 5
DEFAULT_LOGIN_LOCK_MINUTES = 15.0
# The range each minutes setting must lie in, else the app stops (a typo must not weaken sign-in silently).
# At least a minute: below it the idle sign-out ends sessions mid-typing (the screen checks once a minute) and
# a lock of a fraction of a minute is no lockout at all. At most a day: a longer idle limit is no idle sign-out,
# and a longer lock lets anyone who knows a username keep its owner out for days.
MINUTES_RANGE = (1.0, 24 * 60.0)

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What every input is checked against, by every checker (upload, store, predict CLI, training data)."""

    # Clinical photos and dermoscopy exports are a few MB; 30 MB leaves room for uncompressed TIFFs while
    # still refusing accidental uploads of videos or archives.
    max_image_bytes: int = 30 * MIB
    # 100 megapixels: more than any dermatoscope or phone produces, far below a decompression bomb.
    max_pixels: int = 100_000_000
    identifier_max: int = 64  # a patient's pseudonymous identifier
    name_max: int = 128  # clinician, actor, model id/version/checksum
    label_max: int = 120  # a lesion's label
    body_region_max: int = 48
    filename_max: int = 255
    username_max: int = 64
    earliest_birth_year: int = 1900

    @property
    def max_image_mb(self) -> int:
        return self.max_image_bytes // MIB

    @property
    def max_megapixels(self) -> int:
        return round(self.max_pixels / 1e6)


LIMITS = Limits()


@dataclass(frozen=True)
class ScoreRiseMargin:
    """When a followed lesion's score counts as risen since its previous visit (dashboard/follow_up.py, which
    checks it). ``kind`` "odds_ratio": the odds of melanoma grew by more than ``value`` times; "points": the
    score rose by more than ``value`` percentage points."""

    kind: str = "odds_ratio"
    # Odds, not "+10 points": the model is calibrated to screening prevalence (threshold about 1.6%), so most
    # scores are a few per cent and a points rule would miss a lesion going from 0.5% to 9%. Six times, not
    # doubled: two photos of one unchanged lesion taken the same day (HAM10000, out of fold, v2.3.0) differ by
    # more than x2 in 20.2% of ordered benign pairs and by more than x6 in 2.9% (v2.2.0: 20.5%, 2.3%;
    # training.rephotograph_noise); between visits, lighting and device add more.
    value: float = 6.0


SCORE_RISE = ScoreRiseMargin()


@dataclass(frozen=True)
class Environment:
    """The environment's settings, typed; None where a variable is unset (the reader then uses its default)."""

    database_url: str | None
    data_dir: Path | None
    checkpoint: Path | None
    shared_dir: Path
    cpu_threads: int | None


@dataclass(frozen=True)
class DashboardSettings:
    """The dashboard's sign-in and privacy settings, each checked against its range (``_checked_number``)."""

    idle_timeout_minutes: float = DEFAULT_IDLE_MINUTES
    login_max_failures: int = DEFAULT_LOGIN_MAX_FAILURES
    login_lock_minutes: float = DEFAULT_LOGIN_LOCK_MINUTES
    draft_keep_days: int = DEFAULT_DRAFT_KEEP_DAYS


def _text(environ: Mapping[str, str], name: str) -> str | None:
    return environ.get(name, "").strip() or None


# sqlite:///PATH with a relative PATH (not sqlite:////absolute, ~/…, :memory: or a file: URI), then any ?query.
_RELATIVE_SQLITE = re.compile(r"(sqlite(?:\+\w+)?:///)(?![/~]|:memory:|file:)([^?]+)(.*)", re.DOTALL)


def _database_url(environ: Mapping[str, str]) -> str | None:
    """DATABASE_URL, with a relative SQLite path taken from the repository folder rather than the current one:
    the dashboard and the command lines, started from any folder, open the same file (not a new empty one)."""
    url = _text(environ, DATABASE_URL_ENV)
    match = _RELATIVE_SQLITE.fullmatch(url or "")
    if not match:
        return url
    scheme, path, query = match.groups()
    return f"{scheme}{REPO_ROOT / path}{query}"


def _from_repo(path: str) -> Path:
    """A folder setting, a relative one taken from the repository folder like DATABASE_URL's SQLite path: run
    from another folder, the images must stay beside their database."""
    folder = Path(path).expanduser()
    return folder if folder.is_absolute() else REPO_ROOT / folder


def _positive_int(environ: Mapping[str, str], name: str) -> int | None:
    text = _text(environ, name)
    return int(text) if text and text.isdigit() and int(text) > 0 else None  # torch, too, ignores others


def _checked_number(
    environ: Mapping[str, str], name: str, default: float, kind: type, bounds: tuple[float, float | None]
) -> float:
    """A security setting (idle sign-out, sign-in lockout) within ``bounds`` (a None maximum: no maximum). A
    value that cannot be read or lies outside stops the app with a message naming the variable, rather than
    falling back or weakening the check silently (0 failures would lock every account, nan would never expire)."""
    text = _text(environ, name)
    if not text:
        return default
    low, high = bounds
    try:
        value = kind(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < low or (high is not None and value > high):
        whole = "whole " if kind is int else ""
        within = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
        raise ValueError(f"{name} must be a {whole}number {within}, not {text!r}")
    return value


def environment(environ: Mapping[str, str] | None = None) -> Environment:
    """The settings the environment gives now (``os.environ`` unless another mapping is passed): where things
    are and how many threads score. Every layer reads these; none of them stops a command line."""
    environ = os.environ if environ is None else environ
    checkpoint = _text(environ, CHECKPOINT_ENV)
    data_dir = _text(environ, DATA_DIR_ENV)
    return Environment(
        database_url=_database_url(environ),
        data_dir=_from_repo(data_dir) if data_dir else None,
        checkpoint=Path(checkpoint).expanduser() if checkpoint else None,
        shared_dir=Path(environ.get(SHARED_DIR_ENV) or DEFAULT_SHARED_DIR).resolve(),
        cpu_threads=_positive_int(environ, CPU_THREADS_ENV),
    )


def dashboard_settings(environ: Mapping[str, str] | None = None) -> DashboardSettings:
    """The dashboard's settings the environment gives now; a ValueError naming the variable when one cannot be
    read or is out of range. Only what uses them reads them (the dashboard, its accounts and drafts), so a typo
    here cannot stop scoring or training."""
    environ = os.environ if environ is None else environ
    return DashboardSettings(
        idle_timeout_minutes=_checked_number(environ, IDLE_TIMEOUT_ENV, DEFAULT_IDLE_MINUTES, float, MINUTES_RANGE),
        # at most 100: more is no lockout at all against a guessing script
        login_max_failures=int(
            _checked_number(environ, LOGIN_MAX_FAILURES_ENV, DEFAULT_LOGIN_MAX_FAILURES, int, (1, 100))
        ),
        login_lock_minutes=_checked_number(
            environ, LOGIN_LOCK_MINUTES_ENV, DEFAULT_LOGIN_LOCK_MINUTES, float, MINUTES_RANGE
        ),
        draft_keep_days=int(_checked_number(environ, DRAFT_KEEP_DAYS_ENV, DEFAULT_DRAFT_KEEP_DAYS, int, (1, 365))),
    )
