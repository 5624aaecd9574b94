"""The SQLite case database (identifiers, notes, password hashes) is readable by the app's account only."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from dashboard.store import CaseStore
from dashboard.store.engine import make_engine


@pytest.fixture
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default, under which files come out world-readable
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_the_folders_made_for_it_are_private(tmp_path, usual_umask):
    os.chmod(tmp_path, 0o755)
    var = tmp_path / "clinic" / "var"
    with CaseStore.from_url(f"sqlite:///{var}/triage.db", var / "images") as store:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert _mode(tmp_path / "clinic") == _mode(var) == 0o700
        assert {name: _mode(var / name) for name in ("triage.db", "triage.db-wal", "triage.db-shm")} == {
            "triage.db": 0o600,
            "triage.db-wal": 0o600,
            "triage.db-shm": 0o600,
        }
    assert _mode(tmp_path) == 0o755  # a folder that existed (the user's choice) keeps its permissions


def test_a_database_an_earlier_version_left_world_readable_is_made_private(tmp_path, usual_umask):
    db = tmp_path / "triage.db"
    for path in (db, tmp_path / "triage.db-wal"):
        path.touch()
        os.chmod(path, 0o644)
    make_engine(f"sqlite:///{db}").dispose()
    assert (_mode(db), _mode(tmp_path / "triage.db-wal")) == (0o600, 0o600)


def test_a_read_only_database_stays_read_only(tmp_path, usual_umask):
    """Taking group and other access away must never add the owner's write bit (0444 became 0600)."""
    db = tmp_path / "triage.db"
    make_engine(f"sqlite:///{db}").dispose()
    os.chmod(db, 0o444)
    make_engine(f"sqlite:///{db}").dispose()
    assert _mode(db) == 0o400


def test_opening_read_only_creates_and_changes_nothing(tmp_path, usual_umask):
    db = tmp_path / "triage.db"
    make_engine(f"sqlite:///{db}").dispose()
    os.chmod(db, 0o644)
    make_engine(f"sqlite:///{db}", read_only=True).dispose()
    make_engine(f"sqlite:///{tmp_path / 'new' / 'triage.db'}", read_only=True).dispose()
    assert _mode(db) == 0o644 and not (tmp_path / "new").exists()


def test_image_folders_are_private_wherever_the_data_folder_is(tmp_path, usual_umask, sample_images):
    from dashboard.store.files import BlobStore, inspect_image

    os.chmod(tmp_path, 0o755)
    blobs = BlobStore(tmp_path / "elsewhere" / "images")
    info = inspect_image(sample_images[0], max_bytes=30_000_000, max_pixels=100_000_000)
    assert blobs.put(sample_images[0], info)
    target = blobs.path(info.relpath)
    made = [tmp_path / "elsewhere", blobs.root, target.parent.parent, target.parent]  # root/ab/cd/<file>
    assert [_mode(folder) for folder in made] == [0o700] * 4
    assert _mode(target) == 0o600


def test_reusing_a_stored_file_marks_it_recent_for_the_orphan_pruner(tmp_path, sample_images):
    from dashboard.store.files import BlobStore, inspect_image

    blobs = BlobStore(tmp_path / "images")
    info = inspect_image(sample_images[0], max_bytes=30_000_000, max_pixels=100_000_000)
    blobs.put(sample_images[0], info)
    target = blobs.path(info.relpath)
    os.utime(target, (1_000_000_000, 1_000_000_000))  # left by a review years ago, no longer referenced
    assert not blobs.put(sample_images[0], info)  # the same bytes: not written again
    assert target.stat().st_mtime > 1_000_000_000 + 3600  # but changed "now", so a prune spares it


def test_a_url_naming_a_folder_leaves_the_folders_permissions_alone(tmp_path, usual_umask):
    folder = tmp_path / "var"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    with contextlib.suppress(Exception):  # SQLite may refuse a folder; what matters is the folder's mode after
        make_engine(f"sqlite:///{folder}").dispose()  # a typo: the folder, not a file in it
    assert _mode(folder) == 0o755  # still enterable (it lost its execute bit: 0600)
