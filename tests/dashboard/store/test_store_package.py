"""Package-level guarantees: light imports, thread safety, the migrate CLI."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from dashboard.store import CaseStore
from dashboard.store.migrate import head_revision


def test_import_needs_neither_streamlit_torch_nor_pandas(subprocess_env):
    """The store and its command-line tools start without the UI, the model or pandas (~0.4 s a start)."""
    code = (
        "import sys, dashboard.store, dashboard.store.integrity, dashboard.store.migrate, dashboard.users;"
        "heavy = {'streamlit', 'torch', 'torchvision', 'pandas'} & set(sys.modules);"
        "assert not heavy, heavy"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_threads_share_one_store(store, make_image, make_lesion, make_review):
    """Streamlit serves each browser session on its own thread, all with one CaseStore."""

    def save(n: int) -> int:
        return store.save_review(
            make_review([make_lesion(make_image(100 + n), lesion_label=f"T{n}")], patient_identifier="THREADS")
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        visit_ids = list(pool.map(save, range(12)))
    assert len(set(visit_ids)) == 12
    [patient] = store.search_patients("THREADS")
    assert patient.visit_count == 12
    assert sorted(les.label for les in store.list_lesions(patient.id)) == sorted(f"T{n}" for n in range(12))


def test_migrate_cli(sqlite_url, subprocess_env, tmp_path, capsys):
    """``upgrade`` in a process of its own; ``current`` through main(), as that process calls it."""
    from dashboard.store.migrate import main

    cmd = [sys.executable, "-m", "dashboard.store.migrate", "--database-url", sqlite_url]
    up = subprocess.run([*cmd, "upgrade"], env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == head_revision()  # it prints the revision it reached
    assert main(["--database-url", sqlite_url, "current"]) == 0
    assert capsys.readouterr().out.strip() == head_revision() == "0010_audit_event_time_indexes"
    with CaseStore.from_url(sqlite_url, tmp_path / "images", upgrade=False) as store:
        assert store.search_patients("x") == []


def test_reprs_hide_identifier_and_bytes(make_lesion, make_review, sample_images):
    review = make_review([make_lesion(sample_images[0])], patient_identifier="HIDDEN-123")
    text = repr(review)
    assert "HIDDEN-123" not in text
    assert "JFIF" not in text and len(text) < 2000
