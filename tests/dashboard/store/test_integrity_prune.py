"""--prune-orphans never deletes the image of a visit being saved while it runs (a save writes its file first
and commits its row after), and says what it kept."""

from __future__ import annotations

import math
import os
import time

import pytest
import sqlalchemy as sa

from dashboard.store import check_integrity, core
from dashboard.store import integrity as integrity_module
from dashboard.store.files import BlobStore, blob_relpath, inspect_image
from dashboard.store.integrity import PRUNE_MIN_AGE_S
from dashboard.store.integrity import main as integrity_main


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _save_during_the_file_walk(monkeypatch, store, visit, saved: list[int], then=lambda: None) -> None:
    """A clinician saves ``visit`` after the check has listed the rows and before it walks the files."""
    walk = BlobStore.iter_files

    def iter_files(self):
        saved.append(store.save_review(visit))
        then()
        yield from walk(self)

    monkeypatch.setattr(BlobStore, "iter_files", iter_files)


def test_a_visit_saved_while_pruning_keeps_its_new_image(
    sqlite_store, sqlite_url, data_dir, sample_images, make_lesion, make_review, monkeypatch, capsys
):
    sqlite_store.save_review(make_review([make_lesion(sample_images[0])]))
    saved: list[int] = []
    visit = make_review([make_lesion(sample_images[1])], patient_identifier="PSEUDO-0002")
    _save_during_the_file_walk(monkeypatch, sqlite_store, visit, saved)
    assert integrity_main(["--database-url", sqlite_url, "--data-dir", str(data_dir), "--prune-orphans"]) == 0
    out = capsys.readouterr().out
    assert saved and "kept: " in out and "changed within the last hour: a save may be writing it" in out
    assert "removed:" not in out
    monkeypatch.undo()
    assert check_integrity(sqlite_store).ok  # the new visit's image is still there


def test_an_old_file_a_visit_saved_meanwhile_refers_to_is_kept(
    sqlite_store, data_dir, sample_images, make_lesion, make_review, monkeypatch
):
    # Identical bytes reuse the file already on disk (the save marks it recent, see the next test); should the
    # file still look old (a save between the age check and the delete), the database is asked again first.
    reused = sample_images[2]
    sqlite_store.blobs.put(reused, inspect_image(reused, max_bytes=10**7, max_pixels=10**8))
    (old_file,) = [p for p in data_dir.rglob("*") if p.is_file()]
    _age(old_file, PRUNE_MIN_AGE_S + 60)
    saved: list[int] = []
    visit = make_review([make_lesion(reused)])
    _save_during_the_file_walk(
        monkeypatch, sqlite_store, visit, saved, then=lambda: _age(old_file, PRUNE_MIN_AGE_S + 60)
    )
    report = check_integrity(sqlite_store)
    assert report.orphans == [old_file.relative_to(data_dir).as_posix()]  # listed before the row arrived
    integrity_module.prune(sqlite_store, report)
    assert report.pruned == [] and report.kept == {report.orphans[0]: "a visit saved since the check refers to it"}
    monkeypatch.undo()
    assert check_integrity(sqlite_store).ok


def test_old_orphans_and_leftover_temporary_files_are_removed_fresh_ones_kept(sqlite_store, data_dir):
    old_orphan = data_dir / "ab" / "cd" / ("abcd" + "c" * 60 + ".jpg")
    old_orphan.parent.mkdir(parents=True)
    old_orphan.write_bytes(b"left by a failed save")
    old_temp, fresh_temp = (old_orphan.parent / ".tmp-old.part"), (old_orphan.parent / ".tmp-new.part")
    old_temp.write_bytes(b"half")
    fresh_temp.write_bytes(b"being written")
    _age(old_orphan, PRUNE_MIN_AGE_S + 60)
    _age(old_temp, PRUNE_MIN_AGE_S + 60)
    report = check_integrity(sqlite_store)
    integrity_module.prune(sqlite_store, report)
    assert sorted(report.pruned) == ["ab/cd/.tmp-old.part", f"ab/cd/{old_orphan.name}"]
    assert list(report.kept) == ["ab/cd/.tmp-new.part"] and fresh_temp.exists()
    assert not old_orphan.exists() and not old_temp.exists()
    assert "kept: ab/cd/.tmp-new.part (changed within the last hour" in report.to_text()


def test_a_save_that_reuses_an_old_orphan_keeps_it_from_the_pruner(
    sqlite_store, data_dir, sample_images, make_lesion, make_review
):
    reused = sample_images[2]
    sqlite_store.blobs.put(reused, inspect_image(reused, max_bytes=10**7, max_pixels=10**8))
    (old_file,) = [p for p in data_dir.rglob("*") if p.is_file()]
    _age(old_file, PRUNE_MIN_AGE_S + 60)  # an orphan from years ago
    report = check_integrity(sqlite_store)
    assert report.orphans == [old_file.relative_to(data_dir).as_posix()]
    sqlite_store.save_review(make_review([make_lesion(reused)]))  # a save reuses it before the prune acts
    integrity_module.prune(sqlite_store, report)
    assert report.pruned == [] and old_file.exists()


def test_files_the_store_did_not_write_are_never_pruned(sqlite_url, data_dir, migrated_sqlite_at, tmp_path):
    """--data-dir naming a folder above the images (here: the one holding the database too) must not delete the
    database, exports or notes: only paths shaped like the store's images and their temporary files are its."""
    folder = tmp_path / "var"
    folder.mkdir()
    database = folder / "case.db"
    url = f"sqlite:///{database}"
    migrated_sqlite_at(url)
    mine = folder / "ab" / "cd" / ("abcd" + "e" * 60 + ".jpg")
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"an orphan image file")
    export, note = folder / "export.csv", folder / "backup" / "notes.txt"
    note.parent.mkdir()
    export.write_text("a,b\n")
    note.write_text("keep me")
    wrong_shape = folder / "ab" / "cd" / ("ffff" + "e" * 60 + ".jpg")  # not where the store would put it
    wrong_shape.write_bytes(b"x")
    for path in (database, mine, export, note, wrong_shape):
        _age(path, PRUNE_MIN_AGE_S + 60)
    assert integrity_main(["--database-url", url, "--data-dir", str(folder), "--prune-orphans"]) == 0
    assert not mine.exists()  # the store's orphan goes
    assert database.exists() and export.exists() and note.exists() and wrong_shape.exists()


@pytest.mark.parametrize("in_list_max", [core.IN_LIST_MAX, 3])
def test_prune_removes_exactly_the_old_unreferenced_files_and_asks_the_database_once_per_batch(
    store, data_dir, sample_images, make_lesion, make_review, monkeypatch, in_list_max
):
    """Several files of each kind: old orphans and old temporary files go; fresh ones, orphans a visit saved since
    the check refers to, files listed but gone meanwhile, the store's referenced images and files that are not the
    store's stay. The database is asked in one transaction, one query per IN list, not once per orphan."""
    old = PRUNE_MIN_AGE_S + 60
    store.save_review(make_review([make_lesion(sample_images[0])], patient_identifier="PSEUDO-KEEP"))

    def write(rel: str, age: float) -> str:
        path = data_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left by a failed save")
        _age(path, age)
        return rel

    old_orphans = [write(blob_relpath(f"{n:02x}" * 32, "jpg"), old) for n in (1, 2, 3, 4)]
    fresh_orphans = [write(blob_relpath(f"{n:02x}" * 32, "png"), 60) for n in (5, 6)]
    old_temps = [write(f"{rel[:5]}/.tmp-{n}.part", old) for n, rel in enumerate(old_orphans[:3])]
    fresh_temps = [write(f"{old_orphans[0][:5]}/.tmp-new-{n}.part", 60) for n in range(2)]
    gone = write(blob_relpath("0f" * 32, "jpg"), old)
    foreign = [write("notes.txt", old), write(f"{old_orphans[1][:5]}/{'ee' * 32}.jpg", old)]  # not where it belongs
    reused = []
    for image in sample_images[1:3]:
        info = inspect_image(image, max_bytes=10**7, max_pixels=10**8)
        store.blobs.put(image, info)
        _age(data_dir / info.relpath, old)
        reused.append(info.relpath)

    report = check_integrity(store)
    assert sorted(report.orphans) == sorted([*old_orphans, *fresh_orphans, gone, *reused])
    assert sorted(report.temp_files) == sorted([*old_temps, *fresh_temps])
    assert sorted(report.foreign) == sorted(foreign)
    # After the check: a visit reuses two orphans (their files still look old), and one orphan is gone.
    store.save_review(make_review([make_lesion(image, rank=n) for n, image in enumerate(sample_images[1:3], 1)]))
    for rel in reused:
        _age(data_dir / rel, old)
    (data_dir / gone).unlink()
    before = {p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file()}

    monkeypatch.setattr(core, "IN_LIST_MAX", in_list_max)
    asked: list[str] = []

    def record(_conn, _cursor, statement, *_rest):
        if "lesion_image" in statement:
            asked.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        integrity_module.prune(store, report)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)

    assert len(asked) == math.ceil(len(report.orphans) / in_list_max)
    assert sorted(report.pruned) == sorted([*old_orphans, *old_temps])
    young = "changed within the last hour: a save may be writing it"
    assert report.kept == {
        **{rel: young for rel in fresh_orphans},
        **{rel: "a visit saved since the check refers to it" for rel in reused},
        **{rel: young for rel in fresh_temps},
    }
    after = {p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file()}
    assert after == before - set(report.pruned)
    assert check_integrity(store).ok
