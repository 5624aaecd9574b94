"""Fixtures for the dashboard UI tests: an isolated app environment and real lesion images."""

from __future__ import annotations

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
        from dashboard.auth import Accounts

        with self.store() as store:
            Accounts(store).add(username, PASSWORD, role, name, actor="test-setup")
        return username


@pytest.fixture()
def app_env(monkeypatch, tmp_path, fresh_checkpoint) -> AppEnv:
    """TRIAGE_CHECKPOINT = the small fresh checkpoint; a private SQLite database and image folder."""
    env = AppEnv(f"sqlite:///{tmp_path / 'triage.db'}", tmp_path / "images", Path(fresh_checkpoint))
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
