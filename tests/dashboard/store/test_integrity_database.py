"""The integrity check also checks the database (SQLite PRAGMAs, PostgreSQL read-through, consistency queries),
opens it read-only, never creates folders, and prunes orphans only when asked."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from dashboard.store import CaseStore, check_integrity
from dashboard.store import engine as engine_module
from dashboard.store.integrity import PRUNE_MIN_AGE_S
from dashboard.store.integrity import main as integrity_main


def _db_path(sqlite_url: str) -> Path:
    return Path(sqlite_url.removeprefix("sqlite:///"))


def _save(store, sample_images, make_lesion, make_review, n: int = 3) -> int:
    lesions = [make_lesion(img, rank=i + 1, decision_action="monitor") for i, img in enumerate(sample_images[:n])]
    return store.save_review(make_review(lesions))


def test_consistent_database_passes_on_both_backends(store, sample_images, make_lesion, make_review):
    _save(store, sample_images, make_lesion, make_review)
    report = check_integrity(store)
    assert report.ok and report.database_problems == []


def test_inconsistent_rows_are_problems_on_both_backends(store, sample_images, make_lesion, make_review):
    visit_id = _save(store, sample_images, make_lesion, make_review)
    other = store.find_or_create_patient("PSEUDO-OTHER", None, "unknown", "test")
    with store.engine.begin() as conn:  # what no code path does: move a lesion to another patient
        lesion_id = conn.execute(
            text("SELECT lesion_id FROM lesion_image WHERE visit_id = :v"), {"v": visit_id}
        ).first()
        conn.execute(text("UPDATE lesion SET patient_id = :p WHERE id = :l"), {"p": other.id, "l": lesion_id[0]})
    report = check_integrity(store)
    assert not report.ok
    assert any("images whose lesion belongs to another patient" in p for p in report.database_problems)
    assert any("decisions whose lesion belongs to another patient" in p for p in report.database_problems)


def test_corrupt_sqlite_page_fails_the_check(sqlite_url, data_dir, sample_images, make_lesion, make_review, capsys):
    with CaseStore.from_url(sqlite_url, data_dir) as store:
        _save(store, sample_images, make_lesion, make_review)
    path = _db_path(sqlite_url)
    with sqlite3.connect(path) as conn:  # closed: the WAL is checkpointed into the file
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'prediction'").fetchone()[0]
    conn.close()
    assert not path.with_name(path.name + "-wal").exists() or path.with_name(path.name + "-wal").stat().st_size == 0
    data = bytearray(path.read_bytes())
    offset = (root - 1) * page_size
    data[offset + 3 : offset + 5] = b"\x7f\xff"  # the page's cell count: far more cells than fit
    path.write_bytes(bytes(data))

    code = integrity_main(["--database-url", sqlite_url, "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    assert code == 1
    assert "DATABASE: PRAGMA integrity_check" in out and "malformed" in out
    assert "in the database" in out.splitlines()[-1]


def test_read_only_database_is_opened_read_only_and_said_so(
    sqlite_url, data_dir, sample_images, make_lesion, make_review, capsys, monkeypatch
):
    with CaseStore.from_url(sqlite_url, data_dir) as store:
        _save(store, sample_images, make_lesion, make_review)
    path = _db_path(sqlite_url)
    before = path.read_bytes()
    # A read-only mount (root ignores file modes, so the check for writability is what we stand in for).
    monkeypatch.setattr(engine_module.os, "access", lambda p, mode: not (mode & engine_module.os.W_OK))
    assert integrity_main(["--database-url", sqlite_url, "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr()
    assert "is read-only" in out.err and "opened read-only" in out.err
    assert out.out.strip().endswith("OK")
    assert path.read_bytes() == before
    assert not path.with_name(path.name + "-shm").exists()


def test_read_only_store_cannot_write(db_url, data_dir, sample_images, make_lesion, make_review):
    with CaseStore.from_url(db_url, data_dir) as store:
        _save(store, sample_images, make_lesion, make_review)
    with CaseStore.from_url(db_url, data_dir, read_only=True) as ro:
        assert ro.search_patients("PSEUDO")
        with pytest.raises(DBAPIError, match="readonly|read-only|attempt to write"):
            ro.record_event("test", "patient.view")


def test_check_never_creates_folders_and_prunes_orphans_only_when_asked(
    sqlite_store, sqlite_url, data_dir, sample_images, make_lesion, make_review, capsys, tmp_path
):
    _save(sqlite_store, sample_images, make_lesion, make_review)
    typo = tmp_path / "imgaes"
    assert integrity_main(["--database-url", sqlite_url, "--data-dir", str(typo)]) == 1  # all files "missing"
    assert not typo.exists()
    capsys.readouterr()

    orphan = data_dir / "ab" / "cd" / ("abcd" + "c" * 60 + ".jpg")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a failed save")
    old = time.time() - PRUNE_MIN_AGE_S - 60  # pruning leaves younger files (a save may be writing them)
    os.utime(orphan, (old, old))
    assert integrity_main(["--database-url", sqlite_url, "--data-dir", str(data_dir)]) == 0
    assert "orphan (no database row, harmless)" in capsys.readouterr().out and orphan.exists()
    assert integrity_main(["--database-url", sqlite_url, "--data-dir", str(data_dir), "--prune-orphans"]) == 0
    assert f"removed: ab/cd/{orphan.name}" in capsys.readouterr().out
    assert not orphan.exists()
    assert check_integrity(sqlite_store).orphans == []


def test_follow_up_rows_are_checked_on_both_backends(store, sample_images, make_lesion, make_review):
    """Revision 0006: a scored overview photo, an amendment of another lesion's decision and an unknown body
    region are problems; the check itself reads the new columns on both backends."""
    visit_id = _save(store, sample_images, make_lesion, make_review)
    pid = store.load_visit(visit_id).patient_id
    first, second = store.decision_history(pid)[:2]
    store.amend_decision(first.id, "biopsy", reason="second look", actor="dr.ada")
    assert check_integrity(store).ok
    with store.engine.begin() as conn:  # what no code path does
        conn.execute(text("UPDATE lesion_image SET kind = 'overview' WHERE id = (SELECT min(id) FROM lesion_image)"))
        conn.execute(text("UPDATE decision SET lesion_id = :l WHERE amends_id IS NOT NULL"), {"l": second.lesion_id})
        conn.execute(text("UPDATE lesion SET body_region = 'elbow_pit'"))
    problems = check_integrity(store).database_problems
    assert any("scores of an overview photo" in p for p in problems)
    assert any("amendments of a decision on another lesion" in p for p in problems)
    assert any("body region that data.body_sites does not know: 3 row(s)" in p for p in problems)


def test_a_database_before_revision_0006_is_checked_without_its_follow_up_checks(db_url, data_dir):
    """A backup from before the upgrade: the check (which never upgrades) skips the new checks and says so."""
    from dashboard.store.engine import make_engine
    from dashboard.store.migrate import upgrade

    engine = make_engine(db_url)
    try:
        upgrade(engine, "0005_review_draft")
    finally:
        engine.dispose()
    with CaseStore.from_url(db_url, data_dir, upgrade=False) as store:
        report = check_integrity(store)
    assert report.ok and report.database_problems == []
    assert ["revision 0006" in note for note in report.notes] == [True]
    assert "note: database older than revision 0006" in report.to_text()


def test_postgresql_read_through_reads_every_row_of_every_table(store):
    """Each table is read as text, row by row (heap and TOAST): a count(*) can be answered from an index alone
    after VACUUM and never reads a TOASTed value. Draft tables (patient images) are read too."""
    import sqlalchemy as sa

    from dashboard.store.integrity import TABLES, database_problems

    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite is checked by PRAGMA integrity_check instead")
    sent: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda _c, _k, sql, *_: sent.append(sql))
    assert database_problems(store) == []
    read = {sql.split(" FROM ")[1].split()[0] for sql in sent if sql.startswith("SELECT sum(length(t::text))")}
    assert read == set(TABLES) and {"review_draft", "review_draft_image"} <= read
    assert not [sql for sql in sent if sql.startswith("SELECT count(*) FROM") and " WHERE " not in sql]
    # A table a later revision added may be missing (an older database); any other missing table is a problem.
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE review_draft_image"))
        conn.execute(sa.text("DROP TABLE app_user CASCADE"))
    assert database_problems(store) == ["table app_user is missing"]
