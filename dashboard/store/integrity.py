"""Check the case database itself and the stored image files against its hashes.

    python -m dashboard.store.integrity [--database-url URL] [--data-dir DIR] [--json] [--prune-orphans]

The database is checked first: SQLite ``PRAGMA integrity_check`` and ``foreign_key_check``; on
PostgreSQL every table is read through (a damaged page fails the read); on both, consistency queries
(rows pointing at missing rows, images and decisions whose lesion belongs to another patient than their
visit, scores outside [0, 1], scored overview photos, amendments of another lesion's decision, unknown body
regions). The check opens the database read-only (a read-only mount works, and is
said so) and never creates a folder; only ``--prune-orphans`` changes anything: it deletes the orphan
and temporary files it lists, except a file changed within the last hour (a save in progress writes its file
before its row, and may reuse a file) or one the database refers to by the time it would be deleted; those are
listed as kept, with the reason.

Exit status: 0 database consistent and all referenced files present and intact, 1 database problems or
missing or corrupt files, 2 the database could not be read, 3 the data directory is not a usable
directory (it is a file, lies under a file, or cannot be read). Orphan files (on disk, no row; left
by a save that failed after writing its image) and stray temporary files are
reported but are not problems.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from dashboard.store import config
from dashboard.store.api import CaseStore
from dashboard.store.core import id_batches
from dashboard.store.db_url import error_line, sqlite_file
from dashboard.store.engine import sqlite_read_only_url
from dashboard.store.files import STORED_EXTENSIONS, TEMP_PREFIX, blob_relpath, is_sha256
from dashboard.store.models import Base, LesionImage
from data.body_sites import REGIONS
from data.hashing import sha256_file


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
    # Files the store did not write (not an image's or a save's temporary name where the store keeps them):
    # listed, never pruned; many of them suggest --data-dir names a folder above the images.
    foreign: list[str] = field(default_factory=list)
    database_problems: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)  # relative paths deleted by --prune-orphans
    kept: dict[str, str] = field(default_factory=dict)  # relative path: why --prune-orphans left it
    notes: list[str] = field(default_factory=list)  # checks skipped, and why (not problems)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.database_problems

    @property
    def missing(self) -> list[FileProblem]:
        return [p for p in self.problems if p.kind == "missing"]

    @property
    def corrupt(self) -> list[FileProblem]:
        return [p for p in self.problems if p.kind != "missing"]

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}

    def to_text(self) -> str:
        lines = [f"DATABASE: {problem}" for problem in self.database_problems]
        lines += [f"note: {note}" for note in self.notes]
        lines += [f"data directory: {self.data_dir}", f"files checked: {self.files_checked}"]
        lines += [f"{p.kind.upper()}: {p.relpath} ({p.detail})" for p in self.problems]
        lines += [f"orphan (no database row, harmless): {rel}" for rel in self.orphans if rel not in self.pruned]
        lines += [f"leftover temporary file (harmless): {rel}" for rel in self.temp_files if rel not in self.pruned]
        lines += [f"not the store's file (left alone): {rel}" for rel in self.foreign]
        lines += [f"removed: {rel}" for rel in self.pruned]
        lines += [f"kept: {rel} ({why})" for rel, why in self.kept.items()]
        summary = f"PROBLEMS: {len(self.missing)} missing, {len(self.corrupt)} corrupt"
        if self.database_problems:
            summary += f", {len(self.database_problems)} in the database"
        lines.append("OK" if self.ok else summary)
        return "\n".join(lines)


# Rows that the schema's constraints should make impossible; any count above zero is a problem.
CONSISTENCY_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "visits of a missing patient",
        "SELECT count(*) FROM visit v LEFT JOIN patient p ON p.id = v.patient_id WHERE p.id IS NULL",
    ),
    (
        "images of a missing lesion or visit",
        "SELECT count(*) FROM lesion_image i LEFT JOIN lesion l ON "
        "l.id = i.lesion_id LEFT JOIN visit v ON v.id = i.visit_id WHERE l.id IS NULL OR v.id IS NULL",
    ),
    (
        "scores of a missing image",
        "SELECT count(*) FROM prediction s LEFT JOIN lesion_image i ON i.id = s.image_id WHERE i.id IS NULL",
    ),
    (
        "images whose lesion belongs to another patient than their visit",
        "SELECT count(*) FROM lesion_image i "
        "JOIN lesion l ON l.id = i.lesion_id JOIN visit v ON v.id = i.visit_id WHERE l.patient_id <> v.patient_id",
    ),
    (
        "decisions whose lesion belongs to another patient than their visit",
        "SELECT count(*) FROM decision d "
        "JOIN lesion l ON l.id = d.lesion_id JOIN visit v ON v.id = d.visit_id WHERE l.patient_id <> v.patient_id",
    ),
    (
        "scores outside [0, 1]",
        "SELECT count(*) FROM prediction WHERE p_melanoma IS NULL OR p_melanoma < 0 OR p_melanoma > 1",
    ),
)
# Checks of revision 0006's columns; skipped (and said so) on a database not yet upgraded, e.g. a backup.
FOLLOW_UP_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "scores of an overview photo (only dermoscopic images are scored)",
        "SELECT count(*) FROM prediction s JOIN lesion_image i ON i.id = s.image_id WHERE i.kind <> 'dermoscopic'",
    ),
    (
        "amendments of a decision on another lesion or visit",
        "SELECT count(*) FROM decision a JOIN decision d ON d.id = a.amends_id "
        "WHERE a.lesion_id <> d.lesion_id OR a.visit_id <> d.visit_id",
    ),
    (
        "histology results of a missing lesion",
        "SELECT count(*) FROM histology h LEFT JOIN lesion l ON l.id = h.lesion_id WHERE l.id IS NULL",
    ),
    (
        "lesions on a body region that data.body_sites does not know",
        "SELECT count(*) FROM lesion WHERE body_region IS NOT NULL AND body_region NOT IN "
        + "("
        + ", ".join("'" + key.replace("'", "''") + "'" for key in REGIONS)
        + ")",
    ),
)
# Every table of the schema, read through on PostgreSQL (from the models, so a new table is never left out).
TABLES = tuple(Base.metadata.tables)
# Tables a database of an older revision (before 0005 / 0006) lacks: the app adds them on upgrade.
ADDED_LATER = frozenset({"review_draft", "review_draft_image", "histology"})


def database_problems(store: CaseStore, notes: list[str] | None = None) -> list[str]:
    """What is wrong inside the database itself (empty when consistent); checks that were skipped are
    appended to ``notes``."""
    problems: list[str] = []
    with store.engine.connect() as conn:
        existing = set(inspect(conn).get_table_names())
        upgraded = "histology" in existing

        def run(label: str, sql: str) -> object:
            try:
                return conn.execute(text(sql)).all()
            except SQLAlchemyError as exc:
                conn.rollback()
                problems.append(f"{label}: {error_line(exc)}")
                return None

        if conn.dialect.name == "sqlite":
            rows = run("PRAGMA integrity_check", "PRAGMA integrity_check")
            if rows is not None and [str(r[0]) for r in rows] != ["ok"]:
                problems += [f"PRAGMA integrity_check: {r[0]}" for r in rows[:20]]
            for table, rowid, parent, _fk in (run("PRAGMA foreign_key_check", "PRAGMA foreign_key_check") or [])[:20]:
                problems.append(f"{table} row {rowid} refers to a {parent} row that does not exist")
        else:
            # Every column of every row as text: each heap page and each TOASTed value (notes, JSON, draft
            # images) is read, so damage fails the read. A count(*) was answered from an index alone (an
            # index-only scan after VACUUM) and never read TOASTed values (scale audit).
            for table in TABLES:
                if table not in existing:
                    if table not in ADDED_LATER:
                        problems.append(f"table {table} is missing")
                    continue
                run(f"table {table} cannot be read through", f"SELECT sum(length(t::text)) FROM {table} t")
        queries = CONSISTENCY_QUERIES + (FOLLOW_UP_QUERIES if upgraded else ())
        if not upgraded and notes is not None:
            notes.append("database older than revision 0006: its follow-up checks were skipped (the app upgrades it)")
        for label, sql in queries:
            rows = run(label, sql)
            if rows and rows[0][0]:
                problems.append(f"{label}: {rows[0][0]} row(s)")
    return problems


def check_integrity(store: CaseStore) -> IntegrityReport:
    root = store.blobs.root
    report = IntegrityReport(data_dir=str(root))
    report.database_problems = database_problems(store, report.notes)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(LesionImage.sha256, LesionImage.relpath).distinct()).all()
    except SQLAlchemyError as exc:
        report.database_problems.append(f"the image list cannot be read: {error_line(exc)}")
        return report

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
        kind = store_file_kind(rel)
        {"image": report.orphans, "temporary": report.temp_files}.get(kind, report.foreign).append(rel)
    if report.foreign:
        report.notes.append(
            f"{len(report.foreign)} file(s) under the data directory are not the store's (an image is stored as "
            "ab/cd/<sha256>.<ext>): they are never pruned. Is --data-dir the images folder?"
        )
    return report


_EXTENSIONS = frozenset(STORED_EXTENSIONS.values())


def store_file_kind(rel: str) -> str | None:
    """ "image" for a path shaped as the store names an image (``ab/cd/<sha256>.<ext>``), "temporary" for a
    save's temporary file beside one, None for anything else (never the store's to delete)."""
    parts = rel.split("/")
    if len(parts) != 3 or not all(len(p) == 2 for p in parts[:2]):
        return None
    name = parts[2]
    if name.startswith(TEMP_PREFIX):
        return "temporary"
    stem, _, extension = name.partition(".")
    if is_sha256(stem) and extension in _EXTENSIONS and rel == blob_relpath(stem, extension):
        return "image"
    return None


# A save writes its image file first and commits its row after: a file younger than this may be one whose row
# is about to arrive (a save takes seconds; an hour leaves room for a stalled one), so pruning leaves it.
PRUNE_MIN_AGE_S = 3600


def _referenced_now(store: CaseStore, orphans: list[str]) -> set[str]:
    """Those of ``orphans`` the database refers to (by their content) now: a save may have committed its row
    since the check listed the rows. One transaction, one query per IN_LIST_MAX orphans (one per orphan was
    slow on a large store)."""
    # By hash alone, which is indexed: an orphan's name is the store's (<sha256>.<ext>, store_file_kind), and
    # "relpath OR sha256" scanned the whole image table.
    if not orphans:
        return set()
    found: set[str] = set()
    with store.engine.connect() as conn:  # a new transaction: sees rows committed since the check
        for batch in id_batches(Path(rel).stem for rel in orphans):
            found.update(conn.scalars(select(LesionImage.sha256).where(LesionImage.sha256.in_(batch)).distinct()))
    return {rel for rel in orphans if Path(rel).stem in found}


def prune(store: CaseStore, report: IntegrityReport, now: float | None = None) -> None:
    """Delete the orphan and temporary files ``report`` lists, except those a save may still be writing or has
    just referred to (recorded in ``report.kept`` with the reason)."""
    now = time.time() if now is None else now
    # The database first, each file's age just before its delete: a save touches its file before it commits, so
    # one committing after the question shows as a fresh file (unless it touches it between that age check and
    # the delete, a window as narrow as it can be).
    referenced = _referenced_now(store, report.orphans)
    for rel in [*report.orphans, *report.temp_files]:
        try:
            age_s = now - store.blobs.path(rel).stat().st_mtime
        except FileNotFoundError:
            continue  # gone meanwhile (a save renamed its temporary file into place)
        if age_s < PRUNE_MIN_AGE_S:
            report.kept[rel] = "changed within the last hour: a save may be writing it"
        elif rel in referenced:
            report.kept[rel] = "a visit saved since the check refers to it"
        else:
            store.blobs.remove(rel)
            report.pruned.append(rel)


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
    parser = config.store_cli_parser(
        "python -m dashboard.store.integrity",
        "Compare stored image files with the SHA-256 hashes in the case database.",
    )
    parser.add_argument("--data-dir", help=f"default: ${config.DATA_DIR_ENV} or var/images")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--prune-orphans", action="store_true", help="delete the orphan and temporary files the check lists"
    )
    args = parser.parse_args(argv)

    try:
        url = make_url(config.database_url(args.database_url))
    except ArgumentError:  # the text is not repeated: it may hold a password
        print("error: the database URL (--database-url or $DATABASE_URL) is not a database URL", file=sys.stderr)
        return EXIT_DATABASE
    path = sqlite_file(url)
    if path is not None and not path.exists():
        print(f"error: database file {path} does not exist", file=sys.stderr)
        return EXIT_DATABASE
    data_dir = config.data_dir(args.data_dir).expanduser()
    problem = data_dir_problem(data_dir)
    if problem:
        print(f"error: {problem} (set --data-dir or ${config.DATA_DIR_ENV})", file=sys.stderr)
        return EXIT_DATA_DIR
    try:
        # upgrade=False: a check must not change what it checks.
        full_url = url.render_as_string(hide_password=False)
        if path is not None and sqlite_read_only_url(url)[1]:
            print(
                f"note: {path} (or its folder) is read-only, e.g. a read-only mount or backup copy: "
                "opened read-only; the check writes nothing to it",
                file=sys.stderr,
            )
        with CaseStore.from_url(full_url, data_dir, read_only=True) as store:
            report = check_integrity(store)
            if args.prune_orphans:
                prune(store, report)
    except SQLAlchemyError as exc:
        print(f"error: could not read the case database: {type(exc).__name__}: {error_line(exc, url)}", file=sys.stderr)
        return EXIT_DATABASE
    except OSError as exc:
        print(f"error: data directory {data_dir} cannot be used: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_DATA_DIR
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.to_text())
    return EXIT_OK if report.ok else EXIT_PROBLEMS


if __name__ == "__main__":
    sys.exit(main())
