"""The PostgreSQL a benchmark talks to: DATABASE_URL, else an embedded server in a temp dir.
Each benchmark uses a database of its own, dropped at the end."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from vfr_ml_pipelines.lib import embedded


def psql_binary() -> str:
    found = shutil.which("psql")
    if found:
        return found
    import pgserver

    return str(Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql")


@contextmanager
def scratch_database() -> Iterator[str]:
    """Yields a libpq URL (postgresql://...) of a fresh database."""
    admin = os.environ.get("DATABASE_URL")
    state = None
    if not admin:
        state = Path(tempfile.mkdtemp(prefix="vfr-bench-"))
        admin = embedded.acquire_postgres(state)
    admin_libpq = make_url(admin).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"vfr_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_libpq, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_libpq).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_libpq, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if state is not None:
            embedded.release_postgres(state)
            shutil.rmtree(state, ignore_errors=True)
