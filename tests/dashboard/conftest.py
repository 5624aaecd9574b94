"""Fixtures for the dashboard UI tests: an isolated app environment and real lesion images."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from data.settings import REPO_ROOT

APP = REPO_ROOT / "dashboard" / "app.py"
# An ISIC 2020 patient with 5 images (2 melanomas): the real per-patient structure the product is for.
PATIENT_ID = "IP_6648913"
# Test accounts all use this password (the policy wants 12+ characters, not containing the username).
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class AppEnv:
    database_url: str
    data_dir: Path
    checkpoint: Path

    def store(self):
        from dashboard.store import CaseStore

        return CaseStore.from_url(self.database_url, self.data_dir)

    def add_user(self, username: str, role: str = "clinician", name: str = "") -> str:
        """Create a local account (as an admin would with `python -m dashboard.users add`)."""
        from dashboard.accounts import Accounts

        with self.store() as store:
            Accounts(store).add(username, PASSWORD, role, name, actor="test-setup")
        return username


# ---------------------------------------------------------------- speed without changing what is tested


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing():
    """Hash test passwords with argon2id at its smallest cost instead of 64 MiB and 3 passes (~0.2 s a hash or
    a check, and every page test signs in). The shipped parameters are asserted on their own in
    tests/dashboard/store/test_accounts.py, against the dummy hash the module makes with them at import."""
    from argon2 import PasswordHasher

    from dashboard import passwords

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        yield


@pytest.fixture(scope="session", autouse=True)
def compile_each_page_once():
    """One Streamlit script cache for every AppTest run. AppTest makes a new ScriptCache per run, so each
    `at.run()` re-parsed and compiled app.py and its page (~40 ms for the review page); the files do not change
    during a test session, and Streamlit keys the cache by their path."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    shared = ScriptCache()
    with pytest.MonkeyPatch.context() as patch:
        for module in (app_test, local_script_runner):
            patch.setattr(module, "ScriptCache", lambda: shared)
        yield


@pytest.fixture(scope="session")
def migrated_sqlite_at(tmp_path_factory) -> Callable[[str], None]:
    """Puts an empty SQLite case database, upgraded to the newest migration, where a ``sqlite:///`` URL points:
    a copy of one made once per session, ~10× quicker than running every migration again for each test."""
    from dashboard.store import CaseStore

    folder = tmp_path_factory.mktemp("migrated_sqlite")
    template = folder / "triage.db"
    with CaseStore.from_url(f"sqlite:///{template}", folder / "images"):
        pass  # closing folds the WAL back into the file, so the one file is the whole database

    def put(url: str) -> None:
        target = Path(url.removeprefix("sqlite:///"))
        assert not target.exists(), target
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, target)

    return put


# ---------------------------------------------------------------- the app


@pytest.fixture()
def app_env(monkeypatch, tmp_path, fresh_checkpoint, migrated_sqlite_at) -> AppEnv:
    """TRIAGE_CHECKPOINT = the small fresh checkpoint; a private SQLite database (migrated) and image folder."""
    env = AppEnv(f"sqlite:///{tmp_path / 'triage.db'}", tmp_path / "images", Path(fresh_checkpoint))
    migrated_sqlite_at(env.database_url)
    monkeypatch.setenv("TRIAGE_CHECKPOINT", str(env.checkpoint))
    monkeypatch.setenv("DATABASE_URL", env.database_url)
    monkeypatch.setenv("TRIAGE_DATA_DIR", str(env.data_dir))
    return env


@dataclass(frozen=True)
class LesionFile:
    name: str
    data: bytes
    site: str
    melanoma: bool

    def upload(self) -> tuple[str, bytes, str]:
        return (self.name, self.data, "image/jpeg")


@pytest.fixture(scope="session")
def patient_lesions(datasets_dir) -> list[LesionFile]:
    """All 5 images of one real ISIC 2020 patient, with their sites and labels."""
    folder = datasets_dir / "isic2020"
    train = pd.read_csv(folder / "train.csv")
    rows = train[train["patient_id"] == PATIENT_ID]
    files = [
        LesionFile(
            name=f"{r.image_name}.jpg",
            data=(folder / "train" / f"{r.image_name}.jpg").read_bytes(),
            site=str(r.anatom_site_general_challenge)
            if isinstance(r.anatom_site_general_challenge, str)
            else "unknown",
            melanoma=bool(r.target),
        )
        for r in rows.itertuples()
    ]
    assert len(files) == 5
    return files


@pytest.fixture(scope="session")
def other_lesions(datasets_dir) -> list[LesionFile]:
    """A few HAM10000 images (200×150) for zip uploads."""
    meta = pd.read_csv(datasets_dir / "ham10000" / "HAM10000_metadata.csv").head(3)
    return [
        LesionFile(
            name=f"{r.image_id}.jpg",
            data=(datasets_dir / "ham10000" / "images" / f"{r.image_id}.jpg").read_bytes(),
            site="unknown",
            melanoma=r.dx == "mel",
        )
        for r in meta.itertuples()
    ]


@pytest.fixture
def sydney(monkeypatch):
    """The machine's local time zone is Sydney (UTC+10/+11) for the test: a local day differs from the UTC one."""
    monkeypatch.setenv("TZ", "Australia/Sydney")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# ---------------------------------------------------------------- the browser tests' server and images


@pytest.fixture()
def server(tmp_path):
    """The dashboard served as `make run` serves it, with three accounts (tests/dashboard/browser_session.py)."""
    import os

    from browser_session import running_server

    with running_server(tmp_path, dict(os.environ)) as running:
        yield running


@pytest.fixture()
def lesion_files(datasets_dir, tmp_path) -> list[Path]:
    """5 real images of one ISIC 2020 patient, plus a corrupt (truncated) JPEG."""
    train = pd.read_csv(datasets_dir / "isic2020" / "train.csv")
    names = train[train["patient_id"] == "IP_6648913"]["image_name"].tolist()[:5]
    paths = [datasets_dir / "isic2020" / "train" / f"{n}.jpg" for n in names]
    assert len(paths) == 5 and all(p.is_file() for p in paths)
    corrupt = tmp_path / "corrupt_lesion.jpg"
    corrupt.write_bytes(paths[0].read_bytes()[:2500])
    return [*paths, corrupt]
