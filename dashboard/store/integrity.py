"""Check stored image files against the hashes in the database.

    python -m dashboard.store.integrity [--database-url URL] [--data-dir DIR] [--json]

Exit status: 0 all referenced files present and intact, 1 missing or corrupt
files, 2 the database could not be read, 3 the data directory is not a usable
directory (it is a file, lies under a file, or cannot be read). Orphan files (on disk, no row; left
by a save that failed after writing its image) and stray temporary files are
reported but are not problems.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from dashboard.store import config
from dashboard.store.api import CaseStore
from dashboard.store.files import TEMP_PREFIX, blob_relpath, sha256_file
from dashboard.store.models import LesionImage


@dataclass(frozen=True)
class FileProblem:
    kind: Literal["missing", "corrupt", "bad_path"]
    sha256: str
    relpath: str
    detail: str


@dataclass
class IntegrityReport:
    data_dir: str
    files_checked: int = 0
    problems: list[FileProblem] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # relative paths
    temp_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def missing(self) -> list[FileProblem]:
        return [p for p in self.problems if p.kind == "missing"]

    @property
    def corrupt(self) -> list[FileProblem]:
        return [p for p in self.problems if p.kind != "missing"]

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}

    def to_text(self) -> str:
        lines = [f"data directory: {self.data_dir}", f"files checked: {self.files_checked}"]
        lines += [f"{p.kind.upper()}: {p.relpath} ({p.detail})" for p in self.problems]
        lines += [f"orphan (no database row, harmless): {rel}" for rel in self.orphans]
        lines += [f"leftover temporary file (harmless): {rel}" for rel in self.temp_files]
        lines.append("OK" if self.ok else f"PROBLEMS: {len(self.missing)} missing, {len(self.corrupt)} corrupt")
        return "\n".join(lines)


def check_integrity(store: CaseStore) -> IntegrityReport:
    root = store.blobs.root
    report = IntegrityReport(data_dir=str(root))
    with store.engine.connect() as conn:
        rows = conn.execute(select(LesionImage.sha256, LesionImage.relpath).distinct()).all()

    referenced: set[Path] = set()
    for sha, relpath in sorted(rows):
        try:
            path = store.blobs.path(relpath)
            expected_name = Path(blob_relpath(sha, Path(relpath).suffix.lstrip(".")))
        except ValueError as exc:
            report.problems.append(FileProblem("bad_path", sha, relpath, str(exc)))
            continue
        if Path(relpath) != expected_name:
            report.problems.append(FileProblem("bad_path", sha, relpath, f"expected {expected_name}"))
        referenced.add(path)
        report.files_checked += 1
        if not path.is_file():
            report.problems.append(FileProblem("missing", sha, relpath, "file not found"))
            continue
        actual = sha256_file(path)
        if actual != sha:
            report.problems.append(FileProblem("corrupt", sha, relpath, f"content hash is {actual}"))

    for path in sorted(store.blobs.iter_files()):
        if path in referenced:
            continue
        rel = path.relative_to(root).as_posix()
        (report.temp_files if path.name.startswith(TEMP_PREFIX) else report.orphans).append(rel)
    return report


EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_DATABASE = 2
EXIT_DATA_DIR = 3


def data_dir_problem(path: Path) -> str | None:
    """Why `path` cannot be the data directory to check (None when it can). A directory that does not
    exist yet is fine: nothing is stored, and every referenced file is reported missing."""
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            return f"data directory {path} cannot be read (permission denied)"
        return None
    if path.exists():
        return f"data directory {path} is a file, not a directory"
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"data directory {path} lies under {parent}, which is a file, not a directory"
            break
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboard.store.integrity",
        description="Compare stored image files with the SHA-256 hashes in the case database.",
    )
    parser.add_argument("--database-url", help=f"default: ${config.DATABASE_URL_ENV} or var/triage.db")
    parser.add_argument("--data-dir", help=f"default: ${config.DATA_DIR_ENV} or var/images")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    try:
        url = make_url(config.database_url(args.database_url))
    except ArgumentError as exc:
        print(f"error: not a database URL: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        print(f"error: database file {url.database} does not exist", file=sys.stderr)
        return EXIT_DATABASE
    data_dir = config.data_dir(args.data_dir).expanduser()
    problem = data_dir_problem(data_dir)
    if problem:
        print(f"error: {problem} (set --data-dir or ${config.DATA_DIR_ENV})", file=sys.stderr)
        return EXIT_DATA_DIR
    try:
        # upgrade=False: a check must not change what it checks.
        full_url = url.render_as_string(hide_password=False)
        with CaseStore.from_url(full_url, data_dir, upgrade=False) as store:
            report = check_integrity(store)
    except SQLAlchemyError as exc:
        print(f"error: could not read the case database: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except OSError as exc:
        print(f"error: data directory {data_dir} cannot be used: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_DATA_DIR
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.to_text())
    return EXIT_OK if report.ok else EXIT_PROBLEMS


if __name__ == "__main__":
    sys.exit(main())
