"""All resources in one place.

Each service is zero-configuration by default (an embedded real server under the state
folder) and a real server when its environment variable is set. `build_resources()` reads
the environment once, at code-location load, and hands secrets over as `dg.EnvVar` so
they never show in the Dagster UI.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import redis
from pydantic import PrivateAttr
from sqlalchemy import Engine

from vfr_ml_pipelines.lib import embedded, settings
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig
from vfr_ml_pipelines.lib.models.registry import ModelRegistry
from vfr_ml_pipelines.lib.warehouse import apply_migrations, create_warehouse_engine


class WarehouseResource(dg.ConfigurableResource):
    """PostgreSQL warehouse (SQLAlchemy 2 + psycopg 3). Applies pending `sql/` migrations
    when a run starts. No `database_url` means the embedded PostgreSQL."""

    database_url: str | None = None
    state_dir: str | None = None

    _engine: Engine | None = PrivateAttr(default=None)
    _embedded_state: Path | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        url = self.database_url
        if not url:
            self._embedded_state = settings.state_dir(self.state_dir)
            url = embedded.acquire_postgres(self._embedded_state)
        self._engine = create_warehouse_engine(url)
        applied = apply_migrations(self._engine, settings.sql_dir())
        if applied and context.log:
            context.log.info(f"applied migrations: {', '.join(applied)}")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._embedded_state is not None:
            embedded.release_postgres(self._embedded_state)
            self._embedded_state = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("WarehouseResource used outside a run (no engine yet)")
        return self._engine


class RedisResource(dg.ConfigurableResource):
    """The Redis the live VFR reads. VFR always reads database 0 under `key_prefix`
    (ioredis `keyPrefix`, default `veritak:mcp:`). No `redis_url` means embedded Redis."""

    redis_url: str | None = None
    key_prefix: str = settings.DEFAULT_REDIS_KEY_PREFIX
    state_dir: str | None = None

    _client: redis.Redis | None = PrivateAttr(default=None)
    _embedded_state: Path | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        url = self.redis_url
        if not url:
            self._embedded_state = settings.state_dir(self.state_dir)
            url = embedded.acquire_redis(self._embedded_state)
        self._client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)
        self._client.ping()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client.connection_pool.disconnect()
            self._client = None
        if self._embedded_state is not None:
            embedded.release_redis(self._embedded_state)
            self._embedded_state = None

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            raise RuntimeError("RedisResource used outside a run (no client yet)")
        return self._client


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking and model registry (wraps `MlflowClient`). No `tracking_uri` means a
    SQLite file with artifacts under the state folder."""

    tracking_uri: str | None = None
    state_dir: str | None = None

    _registry: ModelRegistry | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._registry = self._build()

    def _build(self) -> ModelRegistry:
        if self.tracking_uri:
            return ModelRegistry(self.tracking_uri)
        state = settings.state_dir(self.state_dir)
        return ModelRegistry(settings.mlflow_default_uri(state), artifact_root=state / "mlflow" / "artifacts")

    @property
    def registry(self) -> ModelRegistry:
        if self._registry is None:
            self._registry = self._build()
        return self._registry


class MarketDataResource(dg.ConfigurableResource):
    """Where market data comes from. First version: the deterministic synthetic market.
    `as_of` (YYYY-MM-DD) pins the last trading day; empty means the latest weekday."""

    provider: str = "synthetic"
    n_symbols: int = 50
    history_start: str = "2023-01-02"
    seed: int = 7
    as_of: str | None = None

    def synthetic_config(self) -> SyntheticMarketConfig:
        if self.provider != "synthetic":
            raise ValueError(f"unknown market data provider {self.provider!r}; available: synthetic")
        as_of = date.fromisoformat(self.as_of) if self.as_of else _latest_weekday(date.today())
        return SyntheticMarketConfig(
            as_of=as_of, start=date.fromisoformat(self.history_start), n_symbols=self.n_symbols, seed=self.seed
        )


def _latest_weekday(today: date) -> date:
    from datetime import timedelta

    while today.weekday() >= 5:
        today -= timedelta(days=1)
    return today


def _env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if settings.env_or_none(name) else None


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources from the environment (README, "Configuration")."""
    state = settings.env_or_none(settings.STATE_DIR_ENV)
    return {
        "warehouse": WarehouseResource(database_url=_env(settings.DATABASE_URL_ENV), state_dir=state),
        "redis": RedisResource(
            redis_url=_env(settings.REDIS_URL_ENV),
            key_prefix=settings.env_or_none(settings.REDIS_KEY_PREFIX_ENV) or settings.DEFAULT_REDIS_KEY_PREFIX,
            state_dir=state,
        ),
        "mlflow": MlflowResource(tracking_uri=_env(settings.MLFLOW_TRACKING_URI_ENV), state_dir=state),
        "market_data": MarketDataResource(
            n_symbols=int(settings.env_or_none("VFR_SYNTHETIC_SYMBOLS") or 50),
            history_start=settings.env_or_none("VFR_HISTORY_START") or "2023-01-02",
            as_of=settings.env_or_none("VFR_AS_OF"),
        ),
    }
