"""Fixtures for the case-store tests: backends, stores, sample images, review factories.

Every store test that touches a database runs on SQLite, and on PostgreSQL
when one is reachable: ``$TEST_POSTGRES_URL`` if set (then it must work), else
postgres:postgres@127.0.0.1:5432. ``eval "$(bash .ci/postgres.sh)"`` starts
one. Each PostgreSQL test gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import functools
import io
import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from dashboard.store import CaseStore, LesionReview, ReviewToSave
from data.settings import REPO_ROOT, environment

SHARED_DIR = environment().shared_dir
HAM_IMAGES = SHARED_DIR / "datasets" / "ham10000" / "images"
WRITER_SCRIPT = Path(__file__).resolve().with_name("store_writer.py")

DEFAULT_PG_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"


# ------------------------------------------------------------------ backends


@dataclass(frozen=True)
class _PgProbe:
    url: URL | None
    reason: str
    explicit: bool


@functools.cache
def _probe_postgres() -> _PgProbe:
    explicit = os.environ.get("TEST_POSTGRES_URL", "").strip()
    url = make_url(explicit or DEFAULT_PG_URL)
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if not explicit:
        # Cheap check first so machines without a server skip instantly.
        try:
            with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=1):
                pass
        except OSError:
            return _PgProbe(None, f"no PostgreSQL server reachable at {where} (run .ci/postgres.sh)", False)
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        reason = (
            f"no PostgreSQL server reachable at {where} as user {url.username}: {first_line} "
            "(start one with .ci/postgres.sh, or point TEST_POSTGRES_URL at one)"
        )
        return _PgProbe(None, reason, bool(explicit))
    finally:
        engine.dispose()
    return _PgProbe(url, "", bool(explicit))


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[tuple[URL, object]]:
    probe = _probe_postgres()
    if probe.url is None:
        if probe.explicit:
            pytest.fail(f"TEST_POSTGRES_URL is set but unusable: {probe.reason}")
        pytest.skip(probe.reason)
    engine = create_engine(probe.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    yield probe.url, engine
    engine.dispose()


def _fresh_postgres_schema(request: pytest.FixtureRequest) -> str:
    base_url, admin = request.getfixturevalue("postgres_admin")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as conn:  # type: ignore[attr-defined]
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))

    request.addfinalizer(drop)
    # Every connection made from this URL (also in subprocesses) lives in the schema.
    url = base_url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for an empty database, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'triage.db'}"
    return _fresh_postgres_schema(request)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'triage.db'}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "images"


@pytest.fixture
def store(db_url: str, data_dir: Path, migrated_sqlite_at: Callable[[str], None]) -> Iterator[CaseStore]:
    """The store on ``db_url``: on SQLite a copy of the migrated template (the store's upgrade on open then
    finds nothing to do), on PostgreSQL migrated in its schema."""
    if db_url.startswith("sqlite:///"):
        migrated_sqlite_at(db_url)
    with CaseStore.from_url(db_url, data_dir) as s:
        yield s


@pytest.fixture
def sqlite_store(sqlite_url: str, data_dir: Path, migrated_sqlite_at: Callable[[str], None]) -> Iterator[CaseStore]:
    migrated_sqlite_at(sqlite_url)
    with CaseStore.from_url(sqlite_url, data_dir) as s:
        yield s


# ------------------------------------------------------------------ images


def generated_image(seed: int, size: tuple[int, int] = (48, 40), fmt: str = "PNG") -> bytes:
    """A small deterministic image, different for every seed."""
    img = Image.new("RGB", size, ((seed * 53) % 256, (seed * 97) % 256, (seed * 29) % 256))
    img.putpixel((seed % size[0], (seed // size[0]) % size[1]), (255 - seed % 256, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def make_image() -> Callable[..., bytes]:
    return generated_image


@pytest.fixture(scope="session")
def sample_images() -> list[bytes]:
    """Six distinct small dermoscopic images (real HAM10000 JPEGs when the shared data is there)."""
    if HAM_IMAGES.is_dir():
        paths = sorted(HAM_IMAGES.glob("ISIC_*.jpg"))[:6]
        if len(paths) == 6:
            return [p.read_bytes() for p in paths]
    return [generated_image(i, fmt="JPEG") for i in range(6)]


# ------------------------------------------------------------------ reviews


def lesion(image: bytes, **overrides: object) -> LesionReview:
    fields: dict[str, object] = {
        "image_bytes": image,
        "original_filename": "upload.jpg",
        "site": "torso",
        "lesion_label": "lesion",
        "p_melanoma": 0.5,
        "ugly_duckling": None,
        "triage_score": 0.5,
        "rank": 1,
    }
    fields.update(overrides)
    return LesionReview(**fields)  # type: ignore[arg-type]


def review(lesions: list[LesionReview], **overrides: object) -> ReviewToSave:
    fields: dict[str, object] = {
        "patient_identifier": "PSEUDO-0001",
        "birth_year": 1968,
        "sex": "female",
        "clinician": "Dr. Ada",
        "model_version": "effnet-lite0-v1",
        "model_checksum": "sha256:" + "0" * 64,
        "notes": "",
        "lesions": lesions,
    }
    fields.update(overrides)
    return ReviewToSave(**fields)  # type: ignore[arg-type]


@pytest.fixture
def make_lesion() -> Callable[..., LesionReview]:
    return lesion


@pytest.fixture
def make_review() -> Callable[..., ReviewToSave]:
    return review


# ------------------------------------------------------------------ subprocesses


@pytest.fixture
def writer_cmd() -> Callable[..., list[str]]:
    """Command line for the helper process that saves reviews (see store_writer.py)."""

    def cmd(*args: str) -> list[str]:
        return [sys.executable, str(WRITER_SCRIPT), *args]

    return cmd


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env
