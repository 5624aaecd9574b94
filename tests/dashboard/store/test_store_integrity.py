"""The integrity check finds missing and corrupt image files; orphans are harmless."""

from __future__ import annotations

import json
import subprocess
import sys

from dashboard.store import check_integrity
from dashboard.store.integrity import main as integrity_main


def _save_three(store, sample_images, make_lesion, make_review) -> list:
    visit = store.save_review(make_review([make_lesion(img, rank=i + 1) for i, img in enumerate(sample_images[:3])]))
    return [les.image for les in store.load_visit(visit).lesions]


def test_clean_store_passes(sqlite_store, sample_images, make_lesion, make_review):
    _save_three(sqlite_store, sample_images, make_lesion, make_review)
    report = check_integrity(sqlite_store)
    assert report.ok and report.files_checked == 3
    assert report.problems == [] and report.orphans == []


def test_corrupt_and_missing_files_are_reported(
    sqlite_store, sqlite_url, data_dir, sample_images, make_lesion, make_review, capsys
):
    corrupted, deleted, intact = _save_three(sqlite_store, sample_images, make_lesion, make_review)
    corrupted.path.write_bytes(corrupted.path.read_bytes()[:-10] + b"0123456789")
    deleted.path.unlink()
    orphan = data_dir / "ff" / "ff" / ("f" * 64 + ".png")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a save whose transaction failed")
    (intact.path.parent / ".tmp-abc.part").write_bytes(b"half")

    report = check_integrity(sqlite_store)
    assert not report.ok
    assert [(p.kind, p.sha256) for p in report.missing] == [("missing", deleted.sha256)]
    assert [(p.kind, p.sha256) for p in report.corrupt] == [("corrupt", corrupted.sha256)]
    assert report.orphans == ["ff/ff/" + "f" * 64 + ".png"]
    assert len(report.temp_files) == 1

    # The CLI (in-process) exits non-zero and names the problems.
    assert integrity_main(["--database-url", sqlite_url, "--data-dir", str(data_dir)]) == 1
    out = capsys.readouterr().out
    assert f"MISSING: {deleted.relpath}" in out and f"CORRUPT: {corrupted.relpath}" in out
    assert "PROBLEMS: 1 missing, 1 corrupt" in out
    assert integrity_main(["--database-url", sqlite_url, "--data-dir", str(data_dir), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and len(doc["problems"]) == 2

    # Uploading the same bytes again repairs both files.
    _save_three(sqlite_store, sample_images, make_lesion, make_review)
    report = check_integrity(sqlite_store)
    assert report.ok and report.orphans  # the orphan stays, and is not a problem


def test_cli_module_runs(
    sqlite_store,
    sqlite_url,
    data_dir,
    sample_images,
    make_lesion,
    make_review,
    subprocess_env,
    tmp_path,
    monkeypatch,
    capsys,
):
    """The module runs in a process of its own, on the database and folder the environment names; its other
    exit codes through main(), as that process calls it (each process start imports the store again, ~1.5 s)."""
    [img, *_] = _save_three(sqlite_store, sample_images, make_lesion, make_review)
    env = {**subprocess_env, "DATABASE_URL": sqlite_url, "TRIAGE_DATA_DIR": str(data_dir)}
    ok = subprocess.run(
        [sys.executable, "-m", "dashboard.store.integrity"], env=env, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith("OK")

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TRIAGE_DATA_DIR", str(data_dir))
    img.path.unlink()
    assert integrity_main([]) == 1
    assert "MISSING" in capsys.readouterr().out

    assert integrity_main(["--database-url", f"sqlite:///{tmp_path / 'nope.db'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
