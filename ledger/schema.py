"""The ledger's schema: numbered SQL files applied in order, each once, each in a transaction.

Plain SQL files rather than alembic: the project has no ORM, the schema is a handful of
tables, and SQL files are what a DBA reviews; alembic would bring SQLAlchemy for DDL only.
``schema_migrations`` records each applied file with its SHA-256, so an applied migration
that was edited afterwards is refused (write a new file instead). A transaction-level
advisory lock lets several processes (the stack, a writer, a test) migrate at once safely.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from config.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_LOCK_KEY = 7_316_001  # any constant shared by every migrating process


class MigrationError(RuntimeError):
    """The database's schema history disagrees with the migration files."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files, ``NNNN_name.sql``, in version order."""
    found = []
    for path in sorted(folder.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        if not number.isdigit():
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        found.append(Migration(int(number), name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a number in {folder}")
    return found


def migrate(conninfo: str, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet applied; return one line per migration."""
    import psycopg

    lines = []
    with psycopg.connect(conninfo) as connection, connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        connection.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                           " version integer PRIMARY KEY, name text NOT NULL,"
                           " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        applied: dict[int, str] = dict(
            connection.execute("SELECT version, checksum FROM schema_migrations").fetchall())
        for migration in migrations(folder):
            label = f"ledger schema {migration.version:04d}_{migration.name}"
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(f"{label} was changed after it was applied; add a new "
                                         "migration instead of editing it")
                lines.append(f"{label}: applied")
                continue
            connection.execute(migration.sql.encode())
            connection.execute("INSERT INTO schema_migrations (version, name, checksum) "
                               "VALUES (%s, %s, %s)",
                               (migration.version, migration.name, migration.checksum))
            lines.append(f"{label}: applied now")
    return lines


def let_console_role_log_in(conninfo: str, role: str, password: str) -> None:
    """Give the console's role (made NOLOGIN by the migrations) its login and password."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))


@contextmanager
def temporary_database(settings: Settings, prefix: str = "tmp") -> Iterator[Settings]:
    """A fresh, migrated database on the same PostgreSQL server, dropped afterwards: the
    settings to reach it (for benchmarks and tests that must not touch the real ledger)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = settings.model_copy(update={"postgres_database": "postgres"}).postgres_conninfo()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    own = settings.model_copy(update={"postgres_database": name})
    migrate(own.postgres_conninfo())
    try:
        yield own
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
