"""The integrity CLI's error contract on bad locations, and module runs without import warnings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dashboard.store.integrity import EXIT_DATA_DIR, main


def test_data_dir_under_a_regular_file_is_a_clear_error_with_its_own_exit_code(
    sqlite_store, sqlite_url, tmp_path, capsys
):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    code = main(["--database-url", sqlite_url, "--data-dir", str(blocker / "images")])
    err = capsys.readouterr().err
    assert code == EXIT_DATA_DIR == 3
    assert f"lies under {blocker}, which is a file, not a directory" in err
    assert "Traceback" not in err


def test_data_dir_that_is_a_file_is_a_clear_error(sqlite_store, sqlite_url, tmp_path, capsys):
    blocker = tmp_path / "images.txt"
    blocker.write_text("x")
    assert main(["--database-url", sqlite_url, "--data-dir", str(blocker)]) == EXIT_DATA_DIR
    assert "is a file, not a directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module",
    [
        "dashboard.store.integrity",
        "dashboard.store.migrate",
        # A fresh interpreter importing torch, timm and the Grad-CAM stack (sklearn, matplotlib): ~6 s of CPU
        # for a start-up check, so with the slow ones; the CLI itself is tested in-process in tests/model.
        pytest.param("model.predict", marks=pytest.mark.slow),
    ],
)
def test_modules_run_without_import_warnings(module, subprocess_env):
    run = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", module, "--help"],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "RuntimeWarning" not in run.stderr and "sys.modules" not in run.stderr
