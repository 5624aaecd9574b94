"""Schema migrations: an old database is upgraded with its data intact."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from dashboard.store import CaseStore
from dashboard.store.engine import make_engine
from dashboard.store.migrate import current_revision, head_revision, upgrade, upgrade_to_head
from dashboard.store.models import Base

FIRST = "0001_initial_schema"
WHEN = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)


def _insert_first_schema_data(conn: sa.Connection, sha: str) -> None:
    """Rows as the first released schema stored them (plain SQL, no current models)."""
    md = sa.MetaData()
    t = {
        name: sa.Table(name, md, autoload_with=conn)
        for name in ("patient", "visit", "lesion", "lesion_image", "prediction", "decision")
    }
    ts = WHEN if conn.dialect.name != "sqlite" else WHEN.replace(tzinfo=None)
    conn.execute(
        t["patient"].insert(),
        {"id": 1, "identifier": "OLD-0001", "birth_year": 1950, "sex": "male", "created_at": ts},
    )
    conn.execute(
        t["visit"].insert(),
        {
            "id": 1,
            "patient_id": 1,
            "visit_time": ts,
            "clinician": "Dr. Old",
            "model_version": "v0",
            "notes": "before the upgrade",
            "created_at": ts,
        },
    )
    conn.execute(
        t["lesion"].insert(),
        {"id": 1, "patient_id": 1, "site": "torso", "label": "back mole", "created_at": ts},
    )
    conn.execute(
        t["lesion_image"].insert(),
        {
            "id": 1,
            "lesion_id": 1,
            "visit_id": 1,
            "sha256": sha,
            "relpath": f"{sha[:2]}/{sha[2:4]}/{sha}.jpg",
            "image_format": "JPEG",
            "width": 600,
            "height": 450,
            "byte_size": 1234,
            "original_filename": "old.jpg",
            "created_at": ts,
        },
    )
    conn.execute(
        t["prediction"].insert(),
        {
            "id": 1,
            "image_id": 1,
            "model_id": "v0",
            "model_checksum": "abc",
            "p_melanoma": 0.42,
            "ugly_duckling": None,
            "triage_score": 0.5,
            "rank": 1,
            "created_at": ts,
        },
    )
    conn.execute(
        t["decision"].insert(),
        {
            "id": 1,
            "lesion_id": 1,
            "visit_id": 1,
            "clinician": "Dr. Old",
            "action": "monitor",
            "comment": "recheck",
            "decided_at": ts,
        },
    )
    if conn.dialect.name == "postgresql":
        # Explicit ids do not advance PostgreSQL sequences; a real old DB would have.
        for name in t:
            conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), 1)"))


def test_upgrade_from_first_revision_keeps_data(db_url, data_dir, sample_images, make_lesion, make_review):
    engine = make_engine(db_url)
    try:
        upgrade(engine, FIRST)
        assert current_revision(engine) == FIRST
        assert "audit_event" not in sa.inspect(engine).get_table_names()
        with engine.begin() as conn:
            _insert_first_schema_data(conn, "ab" * 32)
    finally:
        engine.dispose()

    # App start: from_url upgrades to head.
    with CaseStore.from_url(db_url, data_dir) as store:
        assert current_revision(store.engine) == head_revision() != FIRST
        [patient] = store.search_patients("OLD-0001")
        assert (patient.birth_year, patient.sex, patient.visit_count) == (1950, "male", 1)
        timeline = store.patient_timeline(patient.id)
        [visit] = timeline.visits
        assert (visit.visit_time, visit.clinician, visit.notes) == (WHEN, "Dr. Old", "before the upgrade")
        [item] = visit.lesions
        assert (item.label, item.site, item.image.sha256, item.image.original_filename) == (
            "back mole",
            "torso",
            "ab" * 32,
            "old.jpg",
        )
        assert (item.prediction.p_melanoma, item.decision.action, item.decision.comment) == (
            0.42,
            "monitor",
            "recheck",
        )
        # Revision 2 backfilled the audit trail for the old review.
        [event] = store.audit_events(patient.id)
        assert (event.action, event.actor, event.detail) == (
            "review.save",
            "Dr. Old",
            {"visit_id": 1, "backfilled": True},
        )

        # And the upgraded database keeps working: follow the old lesion in a new visit.
        store.save_review(
            make_review(
                [make_lesion(sample_images[0], existing_lesion_id=1)],
                patient_identifier="OLD-0001",
                birth_year=None,
                sex="unknown",
            )
        )
        assert len(store.lesion_score_trend(1)) == 2


def test_models_match_migrated_schema(db_url):
    engine = make_engine(db_url)
    try:
        upgrade_to_head(engine)
        upgrade_to_head(engine)  # idempotent, as on every app start
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == [], "models.py and the migrations disagree; add a migration"
    finally:
        engine.dispose()


def test_sqlite_pragmas(sqlite_store):
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_default_locations_come_from_env(tmp_path, monkeypatch):
    from dashboard.store import config

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("TRIAGE_DATA_DIR", raising=False)
    assert config.database_url() == f"sqlite:///{config.REPO_ROOT / 'var' / 'triage.db'}"
    assert config.data_dir() == config.REPO_ROOT / "var" / "images"

    url = f"sqlite:///{tmp_path / 'env' / 'cases.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TRIAGE_DATA_DIR", str(tmp_path / "env-images"))
    with CaseStore.from_url() as store:
        assert str(store.engine.url) == url
        assert store.data_dir == (tmp_path / "env-images").resolve()
        assert store.data_dir.is_dir() and (tmp_path / "env" / "cases.db").is_file()


def test_follow_up_revision_upgrades_and_downgrades_with_data(
    db_url, data_dir, sample_images, make_lesion, make_review
):
    """0006: old rows get the defaults (dermoscopic image, no date taken, no region); a downgrade drops the
    new columns and the histology table and keeps every older row; the upgrade then runs again."""
    from datetime import date

    from dashboard.store.migrate import downgrade

    engine = make_engine(db_url)
    try:
        upgrade(engine, "0005_review_draft")
        with engine.begin() as conn:
            _insert_first_schema_data(conn, "cd" * 32)
        upgrade_to_head(engine)
        inspector = sa.inspect(engine)
        assert "histology" in inspector.get_table_names()
        with engine.connect() as conn:
            kind, taken_on, region, reason = conn.execute(
                sa.text(
                    "SELECT i.kind, v.taken_on, l.body_region, d.amend_reason FROM lesion_image i "
                    "JOIN visit v ON v.id = i.visit_id JOIN lesion l ON l.id = i.lesion_id "
                    "JOIN decision d ON d.lesion_id = l.id"
                )
            ).one()
        assert (kind, taken_on, region, reason) == ("dermoscopic", None, None, "")
    finally:
        engine.dispose()

    with CaseStore.from_url(db_url, data_dir) as store:
        store.record_histology(1, "benign", actor="Dr. New", reported_on=date(2024, 7, 1))
        [decision] = store.decision_history(1)
        store.amend_decision(decision.id, "excise", "", reason="grew", actor="Dr. New")
        store.save_review(
            make_review([make_lesion(sample_images[0])], patient_identifier="OLD-0001", birth_year=None, sex="unknown")
        )

    engine = make_engine(db_url)
    try:
        downgrade(engine, "0005_review_draft")
        assert current_revision(engine) == "0005_review_draft"
        inspector = sa.inspect(engine)
        assert "histology" not in inspector.get_table_names()
        assert "kind" not in {c["name"] for c in inspector.get_columns("lesion_image")}
        assert "taken_on" not in {c["name"] for c in inspector.get_columns("visit")}
        assert "amends_id" not in {c["name"] for c in inspector.get_columns("decision")}
        with engine.connect() as conn:
            counts = [conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in ("visit", "decision")]
        assert counts == [2, 2]  # the amendment row stays a (plain) decision row
        upgrade_to_head(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_source_caveat_revision_upgrades_and_downgrades_with_data(
    db_url, data_dir, sample_images, make_lesion, make_review
):
    """0007: scores saved before it get no caveat (''); a downgrade drops the column and keeps the scores."""
    from dashboard.store.migrate import downgrade

    engine = make_engine(db_url)
    try:
        upgrade(engine, "0006_follow_up_outcomes")
        with engine.begin() as conn:
            _insert_first_schema_data(conn, "ef" * 32)
        upgrade_to_head(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT source_caveat FROM prediction")).scalars().all() == [""]
    finally:
        engine.dispose()
    with CaseStore.from_url(db_url, data_dir) as store:
        store.save_review(make_review([make_lesion(sample_images[0], source_caveat="Image source differs")]))
    engine = make_engine(db_url)
    try:
        downgrade(engine, "0006_follow_up_outcomes")
        assert "source_caveat" not in {c["name"] for c in sa.inspect(engine).get_columns("prediction")}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM prediction")).scalar() == 2
        upgrade_to_head(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_database_errors_do_not_carry_the_statements_parameters(db_url):
    """An uncaught store error reaches the server log: it must not carry the identifier searched for."""
    engine = make_engine(db_url)
    try:
        with pytest.raises(sa.exc.DBAPIError) as caught, engine.connect() as conn:
            conn.execute(sa.text("SELECT * FROM no_such_table WHERE identifier = :x"), {"x": "janedoe-1970"})
        assert "janedoe-1970" not in str(caught.value)
    finally:
        engine.dispose()
