"""``python -m dashboard.store.migrate`` on a database it cannot use: one line saying what is wrong, exit 2, never a
traceback and never the URL's password; ``current`` never makes a database at a mistyped path and says on stderr
which database it read."""

from __future__ import annotations

import importlib.util
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from dashboard.store import engine as store_engine
from dashboard.store.migrate import head_revision, main

SECRET = "s3cret-Pw"


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def run_process(subprocess_env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dashboard.store.migrate", *args],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_error_line(err: str) -> str:
    """The one ``error:`` line of stderr (the others say which database was used)."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert all(line.startswith(("error:", "database:")) for line in err.splitlines()), err
    return errors[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--database-url", f"notaurl-{SECRET}", "current"], "is not a database URL"),
        (["--database-url", f"postgresql+psycopg://triage:{SECRET}@127.0.0.1:1/x", "current"], "Connection refused"),
        (["--database-url", f"mysql://triage:{SECRET}@localhost/x", "upgrade"], "driver for mysql:// is not installed"),
    ],
    ids=["not-a-url", "refused-postgresql", "missing-driver"],
)
def test_a_database_that_cannot_be_reached_is_one_line_in_a_process_of_its_own(subprocess_env, args, words):
    if "mysql" in args[1] and importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("MySQLdb is installed here")
    run = run_process(subprocess_env, *args)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and SECRET not in run.stderr + run.stdout
    assert words in one_error_line(run.stderr)
    if "127.0.0.1:1" in args[1]:
        assert "database: postgresql+psycopg://triage:***@127.0.0.1:1/x" in run.stderr


@pytest.mark.parametrize("cmd", ["current", "upgrade"])
def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path, capsys, cmd):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database, " * 300)
    before = notes.read_bytes()
    code, out, err = run_main(capsys, "--database-url", f"sqlite:///{notes}", cmd)
    assert code == 2 and out == ""
    assert one_error_line(err) == "error: could not use the case database: file is not a database"
    assert f"database: {notes}" in err
    assert notes.read_bytes() == before


def test_an_unknown_revision_to_upgrade_to_is_one_line(sqlite_url, capsys):
    code, out, err = run_main(capsys, "--database-url", sqlite_url, "upgrade", "nonsense")
    assert code == 2 and out == ""
    assert one_error_line(err) == "error: Can't locate revision identified by 'nonsense'"


def test_a_locked_database_is_one_line(sqlite_url, capsys, monkeypatch):
    assert main(["--database-url", sqlite_url, "upgrade", "0001"]) == 0  # something left to upgrade
    capsys.readouterr()
    monkeypatch.setattr(store_engine, "SQLITE_BUSY_TIMEOUT_MS", 200)  # not 30 s
    holder = sqlite3.connect(make_url(sqlite_url).database, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process writing
        code, out, err = run_main(capsys, "--database-url", sqlite_url, "upgrade")
    finally:
        holder.close()
    assert code == 2 and out == ""
    assert one_error_line(err) == "error: could not use the case database: database is locked"


def test_wrong_postgresql_password_is_one_line_without_the_password(postgres_admin, capsys):
    base_url, _admin = postgres_admin
    url = base_url.set(password=SECRET).render_as_string(hide_password=False)
    code, out, err = run_main(capsys, "--database-url", url, "current")
    assert code == 2 and out == ""
    assert "could not use the case database" in one_error_line(err) and SECRET not in err
    assert f"database: {base_url.render_as_string(hide_password=True)}" in err


def test_current_on_a_mistyped_path_makes_nothing(tmp_path, capsys):
    typo = tmp_path / "vra" / "triage.db"
    code, out, err = run_main(capsys, "--database-url", f"sqlite:///{typo}", "current")
    assert code == 2 and out == ""
    assert one_error_line(err) == f"error: no database at {typo}"
    assert not typo.parent.exists()


def test_current_says_which_database_it_read(db_url, capsys):
    """stdout stays the revision alone (scripts read it); the location goes to stderr, password masked."""
    url = make_url(db_url)
    path = Path(url.database) if url.get_backend_name() == "sqlite" else None
    assert main(["--database-url", db_url, "upgrade"]) == 0
    capsys.readouterr()
    code, out, err = run_main(capsys, "--database-url", db_url, "current")
    assert code == 0 and out.strip() == head_revision()
    if path is not None:
        assert err.strip() == f"database: {path}"
    else:
        assert err.strip() == f"database: {url.render_as_string(hide_password=True)}"


def test_current_on_an_existing_empty_database_still_reads_it(tmp_path, capsys):
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    code, out, err = run_main(capsys, "--database-url", f"sqlite:///{empty}", "current")
    assert code == 0 and out.strip() == "(empty database)" and f"database: {empty}" in err
