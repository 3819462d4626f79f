from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url


def normalize_database_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` forms and use the psycopg 3 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got backend {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def create_warehouse_engine(url: str, *, connect_timeout: int | None = None) -> Engine:
    """An engine on `url`; `connect_timeout` (seconds) bounds each new connection."""
    connect_args = {"connect_timeout": connect_timeout} if connect_timeout else {}
    return create_engine(normalize_database_url(url), pool_pre_ping=True, future=True, connect_args=connect_args)
