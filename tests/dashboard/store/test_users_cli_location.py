"""The users command line says which database it uses, every time, without the password."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.store.db_url import database_location
from dashboard.users import main as users_main


def test_each_run_names_the_database_file_it_used(sqlite_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRIAGE_DATA_DIR", str(tmp_path / "images"))
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    assert users_main(["--database-url", sqlite_url, "list"]) == 0
    assert f"database: {db.resolve()} (does not exist yet: a new, empty database is made there)" in (
        capsys.readouterr().err
    )
    assert users_main(["--database-url", sqlite_url, "list"]) == 0
    assert capsys.readouterr().err.splitlines() == [f"database: {db.resolve()}"]


def test_a_relative_database_url_is_shown_as_the_file_it_opens(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert database_location("sqlite:///elsewhere.db").startswith(f"{tmp_path.resolve() / 'elsewhere.db'} (does not")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://triage:s3cret-pw@db.clinic:5432/triage",
            "postgresql+psycopg://triage:***@db.clinic:5432/triage",
        ),
        ("s3cret-pw nonsense", "(not a database URL)"),
    ],
)
def test_a_server_database_is_shown_without_its_password(url, shown):
    assert database_location(url) == shown


def test_a_password_in_the_urls_query_is_not_printed():
    from dashboard.store.db_url import database_location

    shown = database_location("postgresql+psycopg://triage@db.clinic/triage?password=s3cret&sslmode=require")
    assert "s3cret" not in shown and "password=hidden" in shown and "sslmode=require" in shown
    assert "pw" not in database_location("postgresql+psycopg://triage:pw@db.clinic/triage")


def test_an_in_memory_database_is_named_as_one():
    assert database_location("sqlite:///:memory:") == "an in-memory SQLite database (nothing is kept)"
    assert database_location("sqlite://") == "an in-memory SQLite database (nothing is kept)"
