"""Connecting to the configured servers, with errors a person can act on.

A wrong `DATABASE_URL` or `REDIS_URL` (a host that does not answer, a refused password)
otherwise surfaces as a driver's traceback deep in a run. Here it becomes one error that
names the variable, the server (password masked) and the reason, raised before any work
starts. Connection attempts are bounded in time, so a host that drops packets cannot hang
a run either.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import redis
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from vfr_ml_pipelines.lib import settings
from vfr_ml_pipelines.lib.serving.redis_transport import make_client
from vfr_ml_pipelines.lib.warehouse import apply_migrations, create_warehouse_engine

CONNECT_TIMEOUT_SECONDS = 10


class ServerUnavailable(ConnectionError):
    """A configured server cannot be used: unreachable, or it refused the credentials."""


def _where(url: str, variable: str, embedded: bool) -> str:
    return f"the embedded server ({settings.safe_url(url)})" if embedded else f"{variable} ({settings.safe_url(url)})"


def open_warehouse(url: str, sql_dir: Path, *, embedded: bool = False) -> tuple[Engine, list[str]]:
    """A migrated engine on `url` and the migrations it applied. Raises ServerUnavailable
    naming the server when it cannot be reached or refuses the login."""
    engine = create_warehouse_engine(url, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        engine.dispose()
        reason = " ".join(str(error.orig or error).split())
        raise ServerUnavailable(
            f"PostgreSQL at {_where(url, settings.DATABASE_URL_ENV, embedded)} cannot be used: {settings.safe_url(reason)}"
        ) from None
    return engine, apply_migrations(engine, sql_dir)


def open_redis(url: str, *, embedded: bool = False) -> redis.Redis:
    """A client on `url` that has answered a PING. Raises ServerUnavailable naming the
    server on a refused password, a refused connection or a timeout."""
    client = make_client(url, socket_timeout=CONNECT_TIMEOUT_SECONDS, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        client.ping()
    except (redis.AuthenticationError, redis.ResponseError) as error:
        client.close()
        if not isinstance(error, redis.AuthenticationError) and not str(error).startswith(("NOAUTH", "WRONGPASS")):
            raise
        where = _where(url, settings.REDIS_URL_ENV, embedded)
        problem = "refused the credentials" if urlsplit(url).password else "needs a password"
        raise ServerUnavailable(
            f"Redis at {where} {problem} ({error}); put the password in the URL: redis://:PASSWORD@host:6379"
        ) from None
    except (redis.ConnectionError, redis.TimeoutError) as error:
        client.close()
        raise ServerUnavailable(f"Redis at {_where(url, settings.REDIS_URL_ENV, embedded)} cannot be reached: {error}") from None
    return client
