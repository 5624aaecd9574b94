"""Engine and session factories for SQLite and PostgreSQL.

SQLite needs help to behave like a server database: foreign keys are off by
default, readers and a writer block each other without WAL, and Python's
sqlite3 driver (legacy transaction control, Python < 3.12) does not emit BEGIN
before SELECT. We follow SQLAlchemy's documented recipe and emit BEGIN
ourselves, so each ``Session.begin()`` is one real transaction.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from dashboard.store.db_url import is_sqlite_memory, sqlite_file
from dashboard.store.permissions import PRIVATE_FILE_MODE, make_private_dirs

# Execution option read by the BEGIN hook: write transactions use
# ``BEGIN IMMEDIATE`` so that two writers queue on the busy timeout instead of
# one failing with SQLITE_BUSY when it upgrades a read lock to a write lock.
SQLITE_BEGIN_OPTION = "triage_sqlite_begin"
_BEGIN_MODES = {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"}

SQLITE_BUSY_TIMEOUT_MS = 30_000
# libpq waits for an unreachable server as long as the operating system does (minutes): a page or command would
# hang instead of saying the database is unavailable. A URL's own ?connect_timeout= wins.
POSTGRES_CONNECT_TIMEOUT_S = 10

# The case database holds identifiers, notes and password hashes: only the account the app runs as may read it.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's own files beside the database, holding its pages


def _set_wal(cursor: Any) -> None:
    """Switch to WAL, retrying: the switch needs an exclusive lock, and when two processes open a new
    database at once SQLite reports SQLITE_BUSY immediately (deadlock avoidance) instead of waiting
    on the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it would use 0644 under the usual umask 022; it gives
    its -wal/-shm files the database's mode), and take group and other access away from files an earlier version
    created, never adding any (a read-only copy stays read-only: 0444 becomes 0400, not 0600). Files of another
    account are left alone (chmod is not ours to do)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_SIDE_FILES)):
        try:
            info = file.stat()
            # Regular files only: a URL naming a folder by mistake must not lose the folder's execute bit.
            if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077 and info.st_uid == os.getuid():
                os.chmod(file, stat.S_IMODE(info.st_mode) & ~0o077)
        except FileNotFoundError:
            continue


def sqlite_read_only_url(url: URL) -> tuple[URL, bool]:
    """A SQLite URL that opens the file read-only (``mode=ro``); ``immutable=1`` too when its folder is not
    writable (a read-only mount: SQLite could not even create the WAL index to read). Returns (url, immutable).
    The file is the one the writable engine opens (``sqlite_file``); a ``file:`` URI stays the caller's own."""
    path = sqlite_file(url)
    if path is None:  # a file: URI (an in-memory database is never opened read-only)
        return url.update_query_dict({"mode": "ro"}), False
    immutable = not os.access(path.parent, os.W_OK) or not os.access(path, os.W_OK)
    query = {"mode": "ro", "uri": "true", **({"immutable": "1"} if immutable else {})}
    return url.set(database=f"file:{path}").update_query_dict(query), immutable


def make_engine(url: str | URL, *, read_only: bool = False, **kwargs: Any) -> Engine:
    """Create an engine configured for the store's consistency needs.

    ``read_only``: nothing is created or written — no folder, no WAL switch; PostgreSQL sessions are
    READ ONLY and SQLite files are opened with ``mode=ro`` (see ``sqlite_read_only_url``).
    """
    url = make_url(url)
    # SQL parameters hold patient identifiers and free text: an error's message (which reaches the server
    # log when a page does not catch it) shows the statement without them.
    kwargs.setdefault("hide_parameters", True)
    if url.get_backend_name() != "sqlite":
        # pre_ping: a long-running dashboard survives a database restart.
        kwargs.setdefault("pool_pre_ping", True)
        if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
            kwargs["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S, **kwargs.get("connect_args", {})}
        engine = create_engine(url, **kwargs)
        if read_only:

            @event.listens_for(engine, "connect")
            def _read_only(dbapi_connection: Any, _record: Any) -> None:
                with dbapi_connection.cursor() as cursor:
                    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                dbapi_connection.commit()

        return engine

    memory = is_sqlite_memory(url)
    # The file as sqlite_file resolves it, for both engines: the driver itself expands no "~" (it opened
    # ./~/case.db, or failed, where the read-only engine and the checks used $HOME/case.db).
    path = sqlite_file(url)  # None: in memory, or a file: URI (the caller's own business)
    if read_only and not memory:
        url, _immutable = sqlite_read_only_url(url)
    elif path is not None:
        url = url.set(database=str(path))
    if memory:
        # One shared connection, otherwise every checkout is a new empty DB.
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    elif not read_only and path is not None:
        make_private_dirs(path.parent)
        _private_sqlite_file(path)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the driver (see module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not memory and not read_only:
                # WAL: readers never block the writer; a killed writer leaves
                # only an uncommitted WAL tail that the next opener discards.
                _set_wal(cursor)
            if read_only:
                cursor.execute("PRAGMA query_only = ON")
            else:
                # FULL: a committed review survives power loss, not just a crash.
                cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = str(conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")).upper()
        if mode not in _BEGIN_MODES:
            raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def writer_engine(engine: Engine) -> Engine:
    """The same pool, but transactions take the write lock up front (SQLite)."""
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})


def session_factories(engine: Engine) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    """(reader, writer) session factories.

    ``expire_on_commit=False`` because results are copied into plain
    dataclasses inside the transaction; nothing lazy-loads after commit.
    """
    read = sessionmaker(engine, expire_on_commit=False)
    write = sessionmaker(writer_engine(engine), expire_on_commit=False)
    return read, write
