"""All resources in one place.

Each service is zero-configuration by default (an embedded real server under the state
folder) and a real server when its environment variable is set. `build_resources()` reads
the environment once, at code-location load, and hands secrets over as `dg.EnvVar` so
they never show in the Dagster UI.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import dagster as dg
import redis
from pydantic import PrivateAttr
from sqlalchemy import Engine

from vfr_ml_pipelines.lib import embedded, settings
from vfr_ml_pipelines.lib.connections import open_redis, open_warehouse
from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data import fmp_provider as fmp
from vfr_ml_pipelines.lib.market_data.provider import MarketDataProvider
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig, SyntheticMarketProvider
from vfr_ml_pipelines.lib.models.promotion import PromotionPolicy
from vfr_ml_pipelines.lib.monitoring.alerts import Alert, DeliveryResult, WebhookClient, WebhookConfig, slack_payload
from vfr_ml_pipelines.lib.models.registry import ModelRegistry

if TYPE_CHECKING:
    from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore


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
        self._engine, applied = open_warehouse(url, settings.sql_dir(), embedded=not self.database_url)
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
    # None: each publish switches its whole set in one MULTI/EXEC (readers never see a mix,
    # and wait for it: ~1 us per entry). A number splits it (docs/serving.md, "The switch").
    publish_max_entries_per_transaction: int | None = None

    _client: redis.Redis | None = PrivateAttr(default=None)
    _embedded_state: Path | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        url = self.redis_url
        if not url:
            self._embedded_state = settings.state_dir(self.state_dir)
            url = embedded.acquire_redis(self._embedded_state)
        self._client = open_redis(url, embedded=not self.redis_url)

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


_PROMOTION_DEFAULTS = PromotionPolicy()


class PromotionPolicyResource(dg.ConfigurableResource):
    """The promotion gate's thresholds (`lib/models/promotion.py`, where the defaults are): a
    challenger must beat the champion's validation Rank IC by `margin`, load in under
    `max_load_seconds` and be at most `max_size_bytes`."""

    margin: float = _PROMOTION_DEFAULTS.margin
    max_load_seconds: float = _PROMOTION_DEFAULTS.max_load_seconds
    max_size_bytes: int = _PROMOTION_DEFAULTS.max_size_bytes
    min_validation_t: float = _PROMOTION_DEFAULTS.min_validation_t

    @property
    def policy(self) -> PromotionPolicy:
        return PromotionPolicy(
            margin=self.margin, max_load_seconds=self.max_load_seconds, max_size_bytes=self.max_size_bytes,
            min_validation_t=self.min_validation_t,
        )


class FeatureStoreResource(dg.ConfigurableResource):
    """The offline feature store: Parquet datasets per feature set (docs/feature_store.md).
    No `root` means `<VFR_ML_HOME>/feature_store`."""

    root: str | None = None
    state_dir: str | None = None

    @property
    def offline(self) -> "OfflineFeatureStore":
        from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore

        path = Path(self.root) if self.root else settings.state_dir(self.state_dir) / "feature_store"
        path.mkdir(parents=True, exist_ok=True)
        return OfflineFeatureStore(path)


class VfrModelsResource(dg.ConfigurableResource):
    """The folder VFR's live ensemble loads model files from: VFR builds
    `{its working directory}/models/{model_name}/v{model_version}/model.txt`, so a deployment
    points `VFR_MODELS_DIR` at that `models/` folder (or mounts this one there). No
    `models_dir` means `<VFR_ML_HOME>/vfr_models`."""

    models_dir: str | None = None
    state_dir: str | None = None

    @property
    def path(self) -> Path:
        path = Path(self.models_dir).expanduser().resolve() if self.models_dir else settings.state_dir(self.state_dir) / "vfr_models"
        path.mkdir(parents=True, exist_ok=True)
        return path


_WEBHOOK_DEFAULTS = WebhookConfig()
ALERT_WEBHOOK_URL_ENV = "VFR_ALERT_WEBHOOK_URL"
# "no webhook configured" is said once per process, not on every alert of every sensor tick
_said_no_webhook: list[bool] = []


class AlertWebhookResource(dg.ConfigurableResource):
    """Where alerts go: a Slack-compatible webhook (`lib/monitoring/alerts.py`, where the
    timeout and retry defaults are). The URL is a secret (`VFR_ALERT_WEBHOOK_URL`, handed over
    as a `dg.EnvVar`) and never appears in a log, metadata or exception. No URL means alerts
    are only logged."""

    url: str | None = None
    timeout_seconds: float = _WEBHOOK_DEFAULTS.timeout_seconds
    max_attempts: int = _WEBHOOK_DEFAULTS.max_attempts
    backoff_seconds: float = _WEBHOOK_DEFAULTS.backoff_seconds

    def send(self, alert: Alert, log: logging.Logger | logging.LoggerAdapter | None = None) -> DeliveryResult | None:
        """Posts `alert`; None when no webhook is configured. A delivery that fails after its
        retries is logged (redacted), not raised: an alert outage must not stop a sensor."""
        log = log or logging.getLogger(__name__)
        if not self.url:
            if not _said_no_webhook:
                _said_no_webhook.append(True)
                log.warning(f"{ALERT_WEBHOOK_URL_ENV} is not set: alerts are logged only")
            log.warning(f"alert (not sent): {slack_payload(alert)['text']}")
            return None
        config = WebhookConfig(timeout_seconds=self.timeout_seconds, max_attempts=self.max_attempts, backoff_seconds=self.backoff_seconds)
        result = WebhookClient(self.url, config=config).send(alert, raise_on_failure=False)
        if not result.delivered:
            log.warning(f"alert {alert.title!r} not delivered after {result.attempts} attempt(s): {result.error}")
        return result


class MarketDataResource(dg.ConfigurableResource):
    """Where market data comes from: one interface, one class per backend below.
    `as_of` (YYYY-MM-DD) pins "today" (the last session that may be loaded); empty means
    the real date."""

    as_of: str | None = None

    @property
    def provider_name(self) -> str:
        raise NotImplementedError

    def provider(self, end: date) -> MarketDataProvider:
        """The backend, able to serve data up to `end`."""
        raise NotImplementedError

    def today(self) -> date:
        """The pinned date, else today in New York (the market's date, not the machine's)."""
        return date.fromisoformat(self.as_of) if self.as_of else datetime.now(calendar.MARKET_TZ).date()

    def last_closed_session(self) -> date:
        """The last session that has closed, so its bars exist at the source (not: the last
        session stored in the warehouse): a pinned `as_of` counts as after its close;
        otherwise today counts only once New York has passed 16:00."""
        if self.as_of:
            return calendar.latest_trading_day(self.today())
        now = datetime.now(calendar.MARKET_TZ)
        if calendar.is_trading_day(now.date()) and now.hour >= calendar.MARKET_CLOSE_HOUR:
            return now.date()
        return calendar.previous_trading_day(now.date())


class SyntheticMarketDataResource(MarketDataResource):
    """The deterministic synthetic market (offline; the default). Its oracle measures model
    skill; `shift_start` injects a distribution shift for the drift sensor."""

    # The market's own defaults are SyntheticMarketConfig's. The history start is the
    # pipeline's (the first partition, shared with every provider), not the market's.
    n_symbols: int = SyntheticMarketConfig.n_symbols
    history_start: str = calendar.DEFAULT_HISTORY_START.isoformat()
    seed: int = SyntheticMarketConfig.seed
    shift_start: str | None = SyntheticMarketConfig.shift_start

    @property
    def provider_name(self) -> str:
        return "synthetic"

    def config(self, end: date) -> SyntheticMarketConfig:
        extra: dict = {"shift_start": date.fromisoformat(self.shift_start)} if self.shift_start else {}
        # A recent listing needs a fixed anchor, or its listing date (and so its history)
        # would move with every run; with a pinned `as_of` that is the anchor, otherwise the
        # market has no recent listing.
        if self.as_of:
            extra["listing_anchor"] = date.fromisoformat(self.as_of)
        else:
            extra["recent_listings"] = 0
        return SyntheticMarketConfig(
            as_of=end, start=date.fromisoformat(self.history_start), n_symbols=self.n_symbols, seed=self.seed, **extra
        )

    def provider(self, end: date) -> MarketDataProvider:
        return _synthetic_provider(self.config(end))


class CsvMarketDataResource(MarketDataResource):
    """A folder of per-symbol vendor exports (`prices/{SYMBOL}.csv` as
    `Date,Open,High,Low,Close,Adj Close,Volume`; docs/providers.md)."""

    directory: str

    @property
    def provider_name(self) -> str:
        return "csv"

    def provider(self, end: date) -> MarketDataProvider:
        from vfr_ml_pipelines.lib.market_data.csv_provider import CsvMarketDataProvider

        return CsvMarketDataProvider(Path(self.directory))


class FmpMarketDataResource(MarketDataResource):
    """FinancialModelingPrep's REST API (VFR's own primary provider). The API key comes from
    `FMP_API_KEY` and is never logged; `symbols` is the universe to load."""

    api_key: str
    symbols: list[str]
    base_url: str = fmp.DEFAULT_BASE_URL
    calls_per_minute: int = fmp.DEFAULT_CALLS_PER_MINUTE
    timeout_seconds: float = fmp.DEFAULT_TIMEOUT_SECONDS  # per attempt, body included
    run_deadline_seconds: float = fmp.DEFAULT_RUN_DEADLINE_SECONDS  # per provider run

    @property
    def provider_name(self) -> str:
        return "fmp"

    def provider(self, end: date) -> MarketDataProvider:
        return fmp.FmpMarketDataProvider(
            api_key=self.api_key, symbols=list(self.symbols), base_url=self.base_url, calls_per_minute=self.calls_per_minute,
            timeout=self.timeout_seconds, run_deadline=self.run_deadline_seconds,
        )


@lru_cache(maxsize=4)
def _synthetic_provider(config: SyntheticMarketConfig) -> MarketDataProvider:
    # one simulation per configuration and process, shared by all market-data assets
    return SyntheticMarketProvider(config)


PROVIDERS = ("synthetic", "csv", "fmp")


def build_market_data() -> MarketDataResource:
    choice = settings.env_choice("VFR_MARKET_DATA_PROVIDER", "synthetic", PROVIDERS)
    pinned = settings.env_date("VFR_AS_OF", None, earliest=calendar.CALENDAR_START, latest=calendar.calendar_end())
    as_of = pinned.isoformat() if pinned else None
    if choice == "synthetic":
        shift = settings.env_date("VFR_SYNTHETIC_SHIFT_START", None, earliest=calendar.CALENDAR_START, latest=calendar.calendar_end())
        return SyntheticMarketDataResource(
            n_symbols=settings.env_int("VFR_SYNTHETIC_SYMBOLS", SyntheticMarketConfig.n_symbols, minimum=2, maximum=10_000),
            history_start=calendar.history_start().isoformat(),
            seed=settings.env_int("VFR_SYNTHETIC_SEED", SyntheticMarketConfig.seed, minimum=0, maximum=2**32 - 1),
            shift_start=shift.isoformat() if shift else None,
            as_of=as_of,
        )
    if choice == "csv":
        directory = settings.env_or_none("VFR_CSV_DIR")
        if not directory:
            raise settings.ConfigError("VFR_MARKET_DATA_PROVIDER=csv needs VFR_CSV_DIR (the folder of vendor CSV exports)")
        if not Path(directory).expanduser().is_dir():
            raise settings.ConfigError(f"VFR_CSV_DIR={directory!r}: no such folder")
        return CsvMarketDataResource(directory=directory, as_of=as_of)
    symbols = [s.strip().upper() for s in (settings.env_or_none("VFR_FMP_SYMBOLS") or "").split(",") if s.strip()]
    if not symbols:
        raise settings.ConfigError("VFR_MARKET_DATA_PROVIDER=fmp needs VFR_FMP_SYMBOLS (comma-separated tickers)")
    return FmpMarketDataResource(
        api_key=dg.EnvVar("FMP_API_KEY"),
        symbols=symbols,
        base_url=settings.env_url("FMP_BASE_URL", ("https", "http")) or fmp.DEFAULT_BASE_URL,
        calls_per_minute=settings.env_int("FMP_CALLS_PER_MINUTE", fmp.DEFAULT_CALLS_PER_MINUTE, minimum=1, maximum=100_000),
        timeout_seconds=settings.env_float("FMP_TIMEOUT_SECONDS", fmp.DEFAULT_TIMEOUT_SECONDS, positive=True),
        run_deadline_seconds=settings.env_float("FMP_RUN_DEADLINE_SECONDS", fmp.DEFAULT_RUN_DEADLINE_SECONDS, positive=True),
        as_of=as_of,
    )


def _env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if settings.env_or_none(name) else None


def _database_url_env() -> dg.EnvVar | None:
    settings.env_url(settings.DATABASE_URL_ENV, ("postgresql", "postgres", "postgresql+psycopg"))
    return _env(settings.DATABASE_URL_ENV)


def _redis_url_env() -> dg.EnvVar | None:
    url = settings.env_url(settings.REDIS_URL_ENV, ("redis", "rediss", "unix"))
    if url is not None:
        database = urlsplit(url).path.strip("/") if not url.lower().startswith("unix") else ""
        if database not in ("", "0"):
            raise settings.ConfigError(
                f"{settings.REDIS_URL_ENV}={settings.safe_url(url)!r}: names database {database}, but VFR always reads "
                "database 0; give the URL without a database number (or /0)"
            )
    return _env(settings.REDIS_URL_ENV)


def _mlflow_uri_env() -> dg.EnvVar | None:
    uri = settings.env_or_none(settings.MLFLOW_TRACKING_URI_ENV)
    if uri is not None and "://" not in uri and not uri.startswith("databricks") and not Path(uri).is_absolute():
        # MLflow resolves a relative URI against each process's working directory
        raise settings.ConfigError(
            f"{settings.MLFLOW_TRACKING_URI_ENV}={uri!r}: give an absolute URI (e.g. sqlite:////abs/path/mlflow.db or http://host:5000)"
        )
    return _env(settings.MLFLOW_TRACKING_URI_ENV)


def _alert_webhook_url_env() -> dg.EnvVar | None:
    # not settings.env_url: its message shows the URL's path, and a Slack webhook's path is the credential
    url = settings.env_or_none(ALERT_WEBHOOK_URL_ENV)
    if url and urlsplit(url).scheme.lower() not in ("http", "https"):
        raise settings.ConfigError(f"{ALERT_WEBHOOK_URL_ENV} must be an http(s) URL (the value is not shown: it is a secret)")
    return _env(ALERT_WEBHOOK_URL_ENV)


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources from the environment (README, "Configuration")."""
    state = settings.env_or_none(settings.STATE_DIR_ENV)
    return {
        "warehouse": WarehouseResource(database_url=_database_url_env(), state_dir=state),
        "redis": RedisResource(
            redis_url=_redis_url_env(),
            key_prefix=settings.env_or_none(settings.REDIS_KEY_PREFIX_ENV) or settings.DEFAULT_REDIS_KEY_PREFIX,
            state_dir=state,
            publish_max_entries_per_transaction=settings.env_int(settings.PUBLISH_MAX_ENTRIES_ENV, None, minimum=1),
        ),
        "mlflow": MlflowResource(tracking_uri=_mlflow_uri_env(), state_dir=state),
        "market_data": build_market_data(),
        "feature_store": FeatureStoreResource(root=settings.env_or_none("VFR_FEATURE_STORE_DIR"), state_dir=state),
        "vfr_models": VfrModelsResource(models_dir=settings.env_or_none(settings.VFR_MODELS_DIR_ENV), state_dir=state),
        "promotion_policy": PromotionPolicyResource(
            margin=settings.env_float("VFR_PROMOTION_MARGIN", _PROMOTION_DEFAULTS.margin, minimum=0.0, maximum=1.0),
            max_load_seconds=settings.env_float("VFR_MODEL_MAX_LOAD_SECONDS", _PROMOTION_DEFAULTS.max_load_seconds, positive=True),
            max_size_bytes=settings.env_int("VFR_MODEL_MAX_BYTES", _PROMOTION_DEFAULTS.max_size_bytes, minimum=1),
            min_validation_t=settings.env_float("VFR_PROMOTION_MIN_T", _PROMOTION_DEFAULTS.min_validation_t, minimum=0.0),
        ),
        "alert_webhook": AlertWebhookResource(url=_alert_webhook_url_env()),
    }
