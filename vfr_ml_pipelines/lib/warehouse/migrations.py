"""Numbered SQL migrations (`sql/NNN_name.sql`), each applied once and recorded.

Two processes starting together (two Dagster step processes, a test and a job) serialise
on a PostgreSQL advisory lock, so each file runs exactly once per database.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

# An arbitrary constant: the advisory-lock id that all migrators of this project share.
_MIGRATION_LOCK_ID = 0x5F4D4C5F  # "_ML_"
_FILE_PATTERN = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(sql_dir: Path) -> list[Migration]:
    migrations: list[Migration] = []
    for path in sorted(sql_dir.glob("*.sql")):
        match = _FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNN_snake_case.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{sql_dir}: two migrations share a number: {versions}")
    return migrations


def apply_migrations(engine: Engine, sql_dir: Path) -> list[str]:
    """Apply pending migrations; returns the names applied now. A migration whose file
    changed after it was applied is an error, never silently re-run."""
    migrations = discover(sql_dir)
    applied_now: list[str] = []
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        try:
            conn.execute(
                text(
                    """
                    CREATE TABLE IF NOT EXISTS vfr_ml_schema_migrations (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        checksum text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )
                    """
                )
            )
            conn.commit()
            done = {
                row.version: row.checksum
                for row in conn.execute(text("SELECT version, checksum FROM vfr_ml_schema_migrations"))
            }
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"{migration.path.name} changed after it was applied; add a new "
                            "numbered migration instead of editing an applied one"
                        )
                    continue
                try:
                    conn.exec_driver_sql(migration.sql)
                    conn.execute(
                        text(
                            "INSERT INTO vfr_ml_schema_migrations (version, name, checksum) "
                            "VALUES (:v, :n, :c)"
                        ),
                        {"v": migration.version, "n": migration.name, "c": migration.checksum},
                    )
                    conn.commit()
                except Exception as exc:
                    conn.rollback()
                    raise MigrationError(f"{migration.path.name} failed: {exc}") from exc
                applied_now.append(migration.path.name)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID})
            conn.commit()
    return applied_now
