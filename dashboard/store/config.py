"""Where the case store keeps its database and image files.

``DATABASE_URL`` and ``TRIAGE_DATA_DIR`` are a contract with deployment: the
dashboard, the integrity CLI and CI all resolve locations through here.
"""

from __future__ import annotations

import os
from pathlib import Path

DATABASE_URL_ENV = "DATABASE_URL"
DATA_DIR_ENV = "TRIAGE_DATA_DIR"

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VAR_DIR = REPO_ROOT / "var"

# Clinical photos and dermoscopy exports are a few MB; 30 MB leaves room for
# uncompressed TIFFs while still refusing accidental uploads of videos/archives.
DEFAULT_MAX_IMAGE_BYTES = 30 * 1024 * 1024


def database_url(url: str | None = None) -> str:
    """Explicit URL, else ``$DATABASE_URL``, else a SQLite file under ``var/``."""
    if url:
        return url
    env = os.environ.get(DATABASE_URL_ENV, "").strip()
    if env:
        return env
    return f"sqlite:///{DEFAULT_VAR_DIR / 'triage.db'}"


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Explicit directory, else ``$TRIAGE_DATA_DIR``, else ``var/images``."""
    if path:
        return Path(path)
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if env:
        return Path(env)
    return DEFAULT_VAR_DIR / "images"
