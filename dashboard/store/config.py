"""Where the case store keeps its database and image files.

``DATABASE_URL`` and ``TRIAGE_DATA_DIR`` are a contract with deployment: the
dashboard, the integrity CLI and CI all resolve locations through here.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from data.settings import DATA_DIR_ENV, DATABASE_URL_ENV, DEFAULT_VAR_DIR, LIMITS, REPO_ROOT, environment

__all__ = ["DATABASE_URL_ENV", "DATA_DIR_ENV", "DEFAULT_MAX_IMAGE_BYTES", "DEFAULT_VAR_DIR", "REPO_ROOT"]
__all__ += ["data_dir", "database_url", "store_cli_parser"]

DEFAULT_MAX_IMAGE_BYTES = LIMITS.max_image_bytes  # per image (data/settings.py)


def database_url(url: str | None = None) -> str:
    """Explicit URL, else ``$DATABASE_URL``, else a SQLite file under ``var/``."""
    if url:
        return url
    env = environment().database_url
    if env:
        return env
    return f"sqlite:///{DEFAULT_VAR_DIR / 'triage.db'}"


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Explicit directory, else ``$TRIAGE_DATA_DIR``, else ``var/images``."""
    if path:
        return Path(path)
    env = environment().data_dir
    if env:
        return env
    return DEFAULT_VAR_DIR / "images"


def store_cli_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The parser each case-store command line starts from: its ``--database-url``, resolved by database_url()."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help=f"default: ${DATABASE_URL_ENV} or var/triage.db")
    return parser
