"""A database URL as the store reads it (dashboard/store/db_url.py): the SQLite file it names, the URL shown
without its passwords, and an error about it on one line without them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from dashboard.store.db_url import MESSAGE_CHARS, error_line, is_sqlite_memory, redacted, sqlite_file
from dashboard.store.engine import make_engine
from dashboard.store.integrity import main as integrity_main


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///x.db?mode=memory"])
def test_in_memory_sqlite_names_no_file(url):
    assert is_sqlite_memory(make_url(url)) and sqlite_file(make_url(url)) is None


def test_the_sqlite_file_is_the_one_the_engine_opens(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert sqlite_file(make_url("sqlite:///~/case.db")) == (tmp_path / "case.db").resolve()
    assert sqlite_file(make_url("sqlite:///rel/case.db")) == (tmp_path / "rel" / "case.db").resolve()
    assert sqlite_file(make_url("sqlite:///file:case.db?uri=true")) is None  # a file: URI: the caller's own
    assert sqlite_file(make_url("postgresql+psycopg://u@h/db")) is None


@pytest.mark.parametrize(
    ("url", "file"),
    [
        ("sqlite:///rel/case.db", "work/rel/case.db"),
        ("sqlite:///./rel/../case.db", "work/case.db"),
        ("sqlite:///~/case.db", "home/case.db"),
        ("sqlite:///file:case.db?uri=true", "work/case.db"),
    ],
)
def test_the_read_only_engine_opens_the_file_the_writable_engine_does(url, file, tmp_path, monkeypatch):
    """Both engines take the file from sqlite_file (the writable one opened ./~/case.db for a "~" path, the
    read-only one a file named "file:case.db" for a file: URI)."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)

    def opened(engine, write: bool) -> Path:
        try:
            with engine.begin() as conn:
                if write:
                    conn.execute(text("CREATE TABLE marker (x INTEGER)"))
                assert conn.execute(text("SELECT count(*) FROM marker")).scalar() == 0
                return Path(conn.execute(text("PRAGMA database_list")).all()[0][2])
        finally:
            engine.dispose()

    written = opened(make_engine(url), write=True)
    assert written == (tmp_path / file).resolve()
    assert opened(make_engine(url, read_only=True), write=False) == written
    assert sqlite_file(make_url(url)) in (written, None)  # None: a file: URI, the caller's own


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://triage:s3cret@db.clinic/triage",
        "postgresql+psycopg://triage@db.clinic/triage?password=s3cret&sslmode=require",
        "postgresql+psycopg://triage@db.clinic/triage?PassWord=s3cret",
    ],
)
def test_a_shown_url_never_carries_its_password(url):
    shown = redacted(url)
    assert "s3cret" not in shown and "db.clinic/triage" in shown


def test_text_that_is_not_a_url_is_not_repeated():
    assert redacted("s3cret pasted here") == "(not a database URL)"


def test_an_error_line_hides_the_urls_passwords_and_keeps_the_drivers_message():
    url = "postgresql+psycopg://triage:pw-one@db/triage?password=pw-two"

    class DriverError(Exception):
        pass

    driver = DriverError('connection to "db" failed: password=pw-two rejected\nIs the server running?')
    exc = OperationalError("SELECT 1", {}, driver)  # str(exc) adds the statement and a link on later lines
    line = error_line(exc, url)
    assert line == 'connection to "db" failed: password=*** rejected Is the server running?'
    assert error_line(RuntimeError("pw-one leaked"), url) == "*** leaked"
    duplicate = DriverError("duplicate key value violates unique constraint\nDETAIL:  Key (identifier)=(PT-7) exists.")
    assert error_line(OperationalError("INSERT", {}, duplicate)) == "duplicate key value violates unique constraint"
    assert error_line(RuntimeError(""), url) == "RuntimeError"
    assert len(error_line(RuntimeError("x" * 1000))) == MESSAGE_CHARS


def test_integrity_finds_a_sqlite_file_under_home(sqlite_url, data_dir, monkeypatch, capsys, sqlite_store):
    """``sqlite:///~/…`` names the file the engine opens; the check said "does not exist" (no ``~`` expansion)."""
    db = Path(sqlite_url.removeprefix("sqlite:///")).resolve()
    monkeypatch.setenv("HOME", str(db.parent))
    code = integrity_main(["--database-url", f"sqlite:///~/{db.name}", "--data-dir", str(data_dir)])
    assert "does not exist" not in capsys.readouterr().err
    assert code == 0
