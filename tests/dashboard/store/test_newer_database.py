"""A database a newer release upgraded (a revision this code does not know) is refused with what to do, by the
app, the users CLI and the migrate CLI, and left unchanged."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from dashboard import resources
from dashboard.store import CaseStore
from dashboard.store.engine import make_engine
from dashboard.store.migrate import NewerDatabase, current_revision
from dashboard.store.migrate import main as migrate_main
from dashboard.users import main as users_main

NEWER = "0009_from_a_newer_release"
ADVICE = (
    f"this database was upgraded by a newer version of the dashboard (revision {NEWER}); "
    "run that version, or restore the backup taken before the update"
)


@pytest.fixture
def newer_db(db_url, data_dir) -> str:
    CaseStore.from_url(db_url, data_dir).close()
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :rev"), {"rev": NEWER})
    engine.dispose()
    return db_url


def test_opening_the_store_says_a_newer_version_upgraded_it(newer_db, data_dir):
    with pytest.raises(NewerDatabase, match="restore the backup") as caught:
        CaseStore.from_url(newer_db, data_dir)
    assert str(caught.value) == ADVICE and caught.value.revision == NEWER
    engine = make_engine(newer_db)
    assert current_revision(engine) == NEWER  # nothing changed
    engine.dispose()


def test_the_users_and_migrate_commands_say_so_too(newer_db, data_dir, monkeypatch, capsys):
    monkeypatch.setenv("TRIAGE_DATA_DIR", str(data_dir))
    assert users_main(["--database-url", newer_db, "list"]) == 2
    assert f"error: {ADVICE}" in capsys.readouterr().err
    assert migrate_main(["--database-url", newer_db, "upgrade"]) == 2
    assert f"error: {ADVICE}" in capsys.readouterr().err


def test_the_page_says_so_without_try_again(newer_db, data_dir, monkeypatch):
    shown: list[tuple[str, str, str | None]] = []

    def stop_with(title: str, message: str, hint: str | None = None):
        shown.append((title, message, hint))
        raise RuntimeError("page stopped")

    monkeypatch.setattr(resources, "_stop_with", stop_with)
    monkeypatch.setattr(resources, "store_location", lambda: (newer_db, str(data_dir)))
    with pytest.raises(RuntimeError, match="page stopped"):
        resources.get_store()
    ((title, message, hint),) = shown
    assert title == "The case database is from a newer version" and ADVICE in message
    assert "try again" not in f"{message} {hint}"
