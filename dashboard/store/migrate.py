"""Programmatic Alembic: no alembic.ini, the config is built here.

``upgrade_to_head(engine)`` runs on every app start, so a database written by
an older version of the dashboard is brought up to date before use.

Developer commands::

    python -m dashboard.store.migrate current
    python -m dashboard.store.migrate upgrade [REVISION]
    python -m dashboard.store.migrate revision -m "add something" [--autogenerate]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from dashboard.store import config
from dashboard.store.db_url import database_location, error_line, sqlite_file
from dashboard.store.engine import make_engine, writer_engine

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

# Arbitrary constant: serialises concurrent app starts migrating one PostgreSQL database.
_PG_MIGRATION_LOCK = 0x7472_6961_6765  # "triage"


class NewerDatabase(RuntimeError):
    """The database carries a schema revision this code does not know: a newer release of the dashboard
    upgraded it. Alembic would say "Can't locate revision", which reads like a broken installation."""

    def __init__(self, revision: str) -> None:
        self.revision = revision
        super().__init__(
            f"this database was upgraded by a newer version of the dashboard (revision {revision}); "
            "run that version, or restore the backup taken before the update"
        )


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    # configparser interpolates "%", so escape it in the path.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def refuse_unknown_revision(conn: Connection) -> None:
    """Raise NewerDatabase when the database's revision is not one of this code's migrations."""
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    for revision in MigrationContext.configure(conn).get_current_heads():
        if revision not in known:
            raise NewerDatabase(revision)


def _migrate(engine: Engine, step: Callable[[Config], None]) -> None:
    with writer_engine(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        refuse_unknown_revision(conn)
        step(alembic_config(conn))


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` in one transaction.

    The write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL advisory lock) is
    taken before Alembic reads the current version, so two processes starting
    at once cannot both try to create the same tables. A database from a newer release raises NewerDatabase.
    """
    _migrate(engine, lambda cfg: command.upgrade(cfg, revision))


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` in one transaction (developers and the migration tests)."""
    _migrate(engine, lambda cfg: command.downgrade(cfg, revision))


def upgrade_to_head(engine: Engine) -> None:
    upgrade(engine, "head")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def main(argv: list[str] | None = None) -> int:
    parser = config.store_cli_parser("python -m dashboard.store.migrate", __doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("current", help="print the database's revision")
    up = sub.add_parser("upgrade", help="upgrade the schema")
    up.add_argument("revision", nargs="?", default="head")
    rev = sub.add_parser("revision", help="create a new migration file")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--autogenerate", action="store_true", help="diff the models against the database")
    args = parser.parse_args(argv)

    raw_url = config.database_url(args.database_url)
    try:
        url = make_url(raw_url)
    except ArgumentError:  # the text is not repeated: it may hold a password
        print(
            "error: the database URL (--database-url or $DATABASE_URL) is not a database URL; expected e.g. "
            "sqlite:///var/triage.db or postgresql+psycopg://user@host/dbname",
            file=sys.stderr,
        )
        return 2
    path = sqlite_file(url)
    if args.cmd == "current" and path is not None and not path.exists():
        # Asking for the revision must not make an empty database (and its folders) at a mistyped path.
        print(f"error: no database at {path}", file=sys.stderr)
        return 2
    # Said every time, as the users command does: stderr, so that the revision on stdout stays machine-readable.
    print(f"database: {database_location(raw_url)}", file=sys.stderr)
    engine = None
    try:
        engine = make_engine(url, read_only=args.cmd == "current")
        if args.cmd == "current":
            print(current_revision(engine) or "(empty database)")
        elif args.cmd == "upgrade":
            upgrade(engine, args.revision)
            print(current_revision(engine))
        else:
            with engine.begin() as conn:
                command.revision(alembic_config(conn), message=args.message, autogenerate=args.autogenerate)
    except NewerDatabase as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CommandError as exc:  # e.g. `upgrade nonsense`: a revision no migration has
        print(f"error: {error_line(exc, url)}", file=sys.stderr)
        return 2
    except ImportError as exc:  # create_engine could not import the URL's driver (mysql:// without MySQLdb)
        problem = error_line(exc, url)
        print(f"error: the database driver for {url.drivername}:// is not installed ({problem})", file=sys.stderr)
        return 2
    except (SQLAlchemyError, OSError) as exc:  # refused connection, locked, not a database, folder not writable
        print(f"error: could not use the case database: {error_line(exc, url)}", file=sys.stderr)
        return 2
    finally:
        if engine is not None:
            engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
