"""What the `serving_health` asset reads from the live systems before `serving_health.py`
judges it: the TTL of each expected prediction key (one pipelined TTL per key), the memory of
our keys (MEMORY USAGE on a SCAN sample, scaled to the key count), the champions' ages from
the registry, their latest stored predictions' directions, and those predictions against each
champion's validation record (its MLflow tag, `models.validation_record`).

The expected set is each champion's latest stored predictions (the symbols the run served):
what the publish must have put in Redis. Universe members the run could not predict (no
feature vector) are reported apart, as `unpredicted`: that gap is upstream of serving.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
import redis
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.market_data import store as market_store
from vfr_ml_pipelines.lib.models.registry import ModelRegistry
from vfr_ml_pipelines.lib.models.validation_record import from_tags
from vfr_ml_pipelines.lib.monitoring.serving_health import (
    CoverageReport, ModelAge, ServedDistribution, ServingHealthConfig, coverage, direction_counts, model_age,
    seconds_to_next_publish, served_distribution,
)
from vfr_ml_pipelines.lib.serving.payloads import DEFAULT_MODEL_ID
from vfr_ml_pipelines.lib.serving.served_models import latest_predictions, served_versions
from vfr_ml_pipelines.lib.serving.vfr_keys import prediction_key, prediction_pattern

MEMORY_SAMPLE_KEYS = 200  # MEMORY USAGE is O(1) per key; 200 keys bound a tick to milliseconds


@dataclass(frozen=True)
class MemorySample:
    keys: int  # prediction keys (and companions) under our prefix
    sampled: int
    sampled_bytes: int

    @property
    def estimated_bytes(self) -> int:
        return round(self.sampled_bytes / self.sampled * self.keys) if self.sampled else 0


def memory_sample(client: redis.Redis, prefix: str, sample: int = MEMORY_SAMPLE_KEYS) -> MemorySample:
    keys = [key for key in client.scan_iter(match=prediction_pattern(prefix), count=1000)]
    with client.pipeline(transaction=False) as pipe:
        for key in keys[:sample]:
            pipe.memory_usage(key)
        sizes = [size for size in pipe.execute() if size is not None]
    return MemorySample(len(keys), len(sizes), int(sum(sizes)))


@dataclass(frozen=True)
class ServingState:
    session: date | None
    coverage: CoverageReport
    unpredicted: dict[str, int]  # per horizon: universe members without a prediction
    ages: dict[str, ModelAge]  # per horizon: the champion's age
    directions: dict[str, dict[str, int]]  # per horizon: BUY / HOLD / SELL counts
    memory: MemorySample
    distributions: dict[str, ServedDistribution]  # per horizon: the latest session vs the validation record


def serving_state(engine: Engine, registry: ModelRegistry, client: redis.Redis, prefix: str, now: datetime,
                  config: ServingHealthConfig = ServingHealthConfig()) -> ServingState:
    champions = [s for s in served_versions(registry) if s.is_champion]
    latest = {s.horizon: latest_predictions(engine, s) for s in champions}
    session = max((p["as_of_date"].max() for p in latest.values() if len(p)), default=None)
    symbols = sorted({symbol for p in latest.values() for symbol in p["symbol"]})
    keys = {h: [prefix + prediction_key(symbol, h, DEFAULT_MODEL_ID) for symbol in symbols] for h in latest}
    with client.pipeline(transaction=False) as pipe:
        for key in (k for ks in keys.values() for k in ks):
            pipe.ttl(key)
        ttls = dict(zip((k for ks in keys.values() for k in ks), pipe.execute()))
    report = coverage(symbols, list(latest), ttls, seconds_to_publish=seconds_to_next_publish(now), margin_seconds=config.margin_seconds,
                      key_for=lambda symbol, horizon: prefix + prediction_key(symbol, horizon, DEFAULT_MODEL_ID))
    members = set(market_store.universe(engine, session, session)) if session else set()
    unpredicted = {h: len(members - set(p["symbol"])) for h, p in latest.items()}
    ages = {s.horizon: model_age(_created(registry, s.version.name, s.version.version), now, config) for s in champions}
    directions = {h: direction_counts(p["direction"].tolist()) for h, p in latest.items()}
    distributions = {s.horizon: served_distribution(from_tags(s.version.tags), latest[s.horizon]["probability"].tolist(),
                                                    latest[s.horizon]["expected_return"].tolist(), config)
                     for s in champions}
    return ServingState(session, report, unpredicted, ages, directions, memory_sample(client, prefix), distributions)


def _created(registry: ModelRegistry, name: str, version: str) -> datetime:
    milliseconds = registry.client.get_model_version(name, version).creation_timestamp
    return datetime.fromtimestamp(milliseconds / 1000, UTC)


def coverage_table(state: ServingState) -> pd.DataFrame:
    table = state.coverage.table()
    table["unpredicted_members"] = table["horizon"].map(state.unpredicted).fillna(0).astype(int)
    table["model_age_days"] = table["horizon"].map({h: round(a.days, 2) for h, a in state.ages.items()})
    return table
