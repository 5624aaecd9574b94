"""One place for settings: the environment read into typed values, and the limits every checker shares."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from data import settings
from data.settings import LIMITS, dashboard_settings, environment


def test_the_environment_is_read_into_typed_values_with_the_documented_defaults():
    unset = environment({})
    assert (unset.database_url, unset.data_dir, unset.checkpoint) == (None, None, None)
    assert unset.shared_dir == settings.DEFAULT_SHARED_DIR.resolve()
    assert unset.cpu_threads is None  # every core
    unset_dashboard = dashboard_settings({})
    assert (unset_dashboard.idle_timeout_minutes, unset_dashboard.login_max_failures) == (15.0, 5)
    assert unset_dashboard.login_lock_minutes == 15.0
    given_environ = {
        "DATABASE_URL": " sqlite:///x.db ",
        "TRIAGE_DATA_DIR": "/srv/images",
        "TRIAGE_CHECKPOINT": "~/model",
        "TRIAGE_SHARED_DIR": "/data/shared",
        "TRIAGE_IDLE_TIMEOUT_MINUTES": "20",
        "TRIAGE_LOGIN_MAX_FAILURES": "3",
        "TRIAGE_LOGIN_LOCK_MINUTES": "30",
        "OMP_NUM_THREADS": "1",
    }
    given = environment(given_environ)
    assert given.database_url == f"sqlite:///{settings.REPO_ROOT / 'x.db'}" and given.data_dir == Path("/srv/images")
    assert given.checkpoint == Path("~/model").expanduser() and given.shared_dir == Path("/data/shared").resolve()
    assert given.cpu_threads == 1
    given_dashboard = dashboard_settings(given_environ)
    assert (given_dashboard.idle_timeout_minutes, given_dashboard.login_max_failures) == (20.0, 3)
    assert given_dashboard.login_lock_minutes == 30.0
    assert environment({"OMP_NUM_THREADS": "0"}).cpu_threads is None  # as torch: not a thread count


def test_every_image_checker_uses_the_one_pixel_and_byte_limit():
    from dashboard.store import config as store_config
    from dashboard.store.core import DEFAULT_MAX_IMAGE_PIXELS
    from dashboard.uploads import DEFAULT_LIMITS
    from data.images import MAX_PIXELS

    assert MAX_PIXELS == DEFAULT_MAX_IMAGE_PIXELS == DEFAULT_LIMITS.max_pixels == LIMITS.max_pixels
    assert store_config.DEFAULT_MAX_IMAGE_BYTES == DEFAULT_LIMITS.max_file_bytes == LIMITS.max_image_bytes


def test_tests_read_the_shared_folder_from_the_environment(tmp_path):
    # tests/conftest.py honours TRIAGE_SHARED_DIR, as the readers do (a fresh interpreter: read at import).
    code = "import tests.conftest as c, data.datasets as r; print(c.SHARED); print(r.shared_root())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.REPO_ROOT,
        env={"TRIAGE_SHARED_DIR": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [str(tmp_path.resolve())] * 2


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("TRIAGE_LOGIN_MAX_FAILURES", "0"),
        ("TRIAGE_LOGIN_MAX_FAILURES", "-3"),
        ("TRIAGE_LOGIN_MAX_FAILURES", "five"),
        ("TRIAGE_LOGIN_MAX_FAILURES", "2.5"),
        ("TRIAGE_LOGIN_LOCK_MINUTES", "0"),
        ("TRIAGE_LOGIN_LOCK_MINUTES", "soon"),
    ],
)
def test_a_lockout_setting_that_would_lock_everyone_or_cannot_be_read_stops_the_app(name, text):
    with pytest.raises(ValueError, match=name):
        settings.dashboard_settings({name: text})


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_lockout_setting_that_is_not_a_finite_number_names_the_variable(value):
    with pytest.raises(ValueError, match="TRIAGE_LOGIN_LOCK_MINUTES"):
        dashboard_settings({"TRIAGE_LOGIN_LOCK_MINUTES": value})


@pytest.mark.parametrize("text", ["nan", "inf", "abc", "15min", "0", "-5", "0.5", "1441"])
def test_an_idle_timeout_that_never_expires_cannot_be_read_or_signs_everyone_out_stops_the_app(text):
    # nan/inf never expired; 'abc' and '15min' fell back to 15 silently; 0 and -5 signed everyone out at once.
    with pytest.raises(ValueError, match="TRIAGE_IDLE_TIMEOUT_MINUTES must be a number from 1 to 1440"):
        dashboard_settings({"TRIAGE_IDLE_TIMEOUT_MINUTES": text})


@pytest.mark.parametrize("text", ["1e-9", "0.5", "1441"])
def test_a_lock_shorter_than_a_minute_or_longer_than_a_day_stops_the_app(text):
    # 1e-9 minutes was accepted: the lockout was effectively off.
    with pytest.raises(ValueError, match="TRIAGE_LOGIN_LOCK_MINUTES must be a number from 1 to 1440"):
        dashboard_settings({"TRIAGE_LOGIN_LOCK_MINUTES": text})


def test_minutes_settings_at_the_ends_of_their_range_are_accepted(monkeypatch):
    from dashboard.auth import idle_limit_s

    for text, minutes in [("1", 1.0), ("1440", 1440.0), (" 2.5 ", 2.5)]:
        given = dashboard_settings({"TRIAGE_IDLE_TIMEOUT_MINUTES": text, "TRIAGE_LOGIN_LOCK_MINUTES": text})
        assert (given.idle_timeout_minutes, given.login_lock_minutes) == (minutes, minutes)
    monkeypatch.setenv("TRIAGE_IDLE_TIMEOUT_MINUTES", "2.5")
    assert idle_limit_s() == 150.0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///var/triage.db", f"sqlite:///{settings.REPO_ROOT}/var/triage.db"),
        ("sqlite+pysqlite:///x.db?timeout=3", f"sqlite+pysqlite:///{settings.REPO_ROOT}/x.db?timeout=3"),
        ("sqlite:////srv/triage.db", "sqlite:////srv/triage.db"),
        ("sqlite:///~/triage.db", "sqlite:///~/triage.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite:///file:x.db?uri=true", "sqlite:///file:x.db?uri=true"),
        ("postgresql+psycopg://u:p@db/triage", "postgresql+psycopg://u:p@db/triage"),
    ],
)
def test_a_relative_sqlite_path_in_database_url_is_taken_from_the_repository_folder(url, expected):
    # Before: relative to the current folder, so a command run elsewhere made a new, empty database.
    assert environment({"DATABASE_URL": url}).database_url == expected


def test_the_store_opens_the_same_database_from_any_folder(tmp_path, monkeypatch):
    from sqlalchemy.engine import make_url

    from dashboard.store import config

    monkeypatch.setenv("DATABASE_URL", "sqlite:///var/triage.db")
    monkeypatch.chdir(tmp_path)
    assert Path(make_url(config.database_url()).database) == settings.REPO_ROOT / "var" / "triage.db"


def test_a_relative_image_folder_is_taken_from_the_repository_folder_like_the_database(tmp_path, monkeypatch):
    from dashboard.store import config

    monkeypatch.setenv("DATABASE_URL", "sqlite:///var/triage.db")
    monkeypatch.setenv("TRIAGE_DATA_DIR", "var/images")
    monkeypatch.chdir(tmp_path)  # run from elsewhere: the images stay beside their database
    assert config.data_dir() == settings.REPO_ROOT / "var" / "images"
    assert environment({"TRIAGE_DATA_DIR": str(tmp_path / "imgs")}).data_dir == tmp_path / "imgs"


def test_a_lockout_that_allows_unlimited_guesses_stops_the_app():
    with pytest.raises(ValueError, match="TRIAGE_LOGIN_MAX_FAILURES must be a whole number from 1 to 100"):
        dashboard_settings({"TRIAGE_LOGIN_MAX_FAILURES": "1000000"})
    assert dashboard_settings({"TRIAGE_LOGIN_MAX_FAILURES": "100"}).login_max_failures == 100


def test_draft_retention_is_read_from_the_environment_within_its_range():
    assert dashboard_settings({}).draft_keep_days == 14
    assert dashboard_settings({"TRIAGE_DRAFT_KEEP_DAYS": "30"}).draft_keep_days == 30
    for text in ("0", "366", "abc", "2.5"):
        with pytest.raises(ValueError, match="TRIAGE_DRAFT_KEEP_DAYS"):
            dashboard_settings({"TRIAGE_DRAFT_KEEP_DAYS": text})


BAD_DASHBOARD_SETTINGS = {
    "TRIAGE_IDLE_TIMEOUT_MINUTES": "nan",
    "TRIAGE_LOGIN_MAX_FAILURES": "0",
    "TRIAGE_LOGIN_LOCK_MINUTES": "abc",
    "TRIAGE_DRAFT_KEEP_DAYS": "never",
}


def test_a_bad_dashboard_setting_leaves_the_settings_every_layer_reads_usable(monkeypatch, tmp_path):
    # Before, environment() checked the dashboard's settings too, so a typo in one stopped the training and
    # model command lines (the shared folder, the thread count) as well as the dashboard.
    from data.datasets import shared_root

    for name, text in BAD_DASHBOARD_SETTINGS.items():
        monkeypatch.setenv(name, text)
    monkeypatch.setenv("TRIAGE_SHARED_DIR", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert environment().cpu_threads == 1 and shared_root() == tmp_path.resolve()
    for name in BAD_DASHBOARD_SETTINGS:
        with pytest.raises(ValueError, match=f"{name} must be a "):
            dashboard_settings()
        monkeypatch.delenv(name)
