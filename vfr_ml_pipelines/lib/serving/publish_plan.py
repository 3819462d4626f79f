"""The prediction set published to VFR's Redis: what to write, what to remove, and the
publish itself.

Each horizon's champion goes under `vfr:ml:prediction:{SYMBOL}:{h}:default` and its own id,
a challenger under its own id only; each served version's metadata key and the enhancement
status go with them. Keys of this project (model id `default` or `vfr-*`) that the new set no
longer holds are removed in the same publish (vfr_writer.publish: one MULTI/EXEC).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import redis
from sqlalchemy import Connection, Engine

from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.horizons import HORIZONS
from vfr_ml_pipelines.lib.models.catalog import vfr_payload_type
from vfr_ml_pipelines.lib.models.registry import ModelRegistry
from vfr_ml_pipelines.lib.serving import payloads
from vfr_ml_pipelines.lib.serving.redis_transport import scan_keys
from vfr_ml_pipelines.lib.serving.served_models import (
    NothingToServe,
    ServedVersion,
    close_ms,
    latest_predictions,
    serving_verdicts,
)
from vfr_ml_pipelines.lib.serving.ttl import publish_ttl_seconds
from vfr_ml_pipelines.lib.serving.vfr_keys import (
    ENHANCEMENT_STATUS_KEY,
    base_key,
    model_metadata_key,
    model_metadata_pattern,
    parse_model_metadata_key,
    parse_prediction_key,
    prediction_key,
    prediction_pattern,
)
from vfr_ml_pipelines.lib.serving.vfr_writer import CacheWrite, PublishReport, publish

log = logging.getLogger(__name__)

# the model ids this project publishes under: VFR's own models have other (uuid) ids
OUR_MODEL_ID_START = "vfr-"


def prediction_writes(served: ServedVersion, rows: pd.DataFrame, now_ms: int, ttl: int) -> list[CacheWrite]:
    """The champion under `default` and its own id; a challenger under its own id only."""
    model_ids = [payloads.DEFAULT_MODEL_ID, served.version.model_id] if served.is_champion else [served.version.model_id]
    as_of_ms = close_ms(rows["as_of_date"].iloc[0])
    stored = [rec if isinstance(rec, dict) else json.loads(rec) for rec in rows["features"]]
    # completeness over the features that have a source (a price-only market has no
    # fundamental or news features): those some symbol of the session has, as the vector export
    expected = catalog.raw_names_in(set().union(*stored))
    writes = []
    for rec, values in zip(rows.itertuples(index=False), stored):
        vector = payloads.feature_vector(rec.symbol, values, expected, as_of_ms, rec.feature_quality_score)
        for model_id in model_ids:
            # the payload names the real model under every key, `default` included (VFR's
            # reader copies cached.modelId into its result)
            payload = payloads.ml_prediction(
                symbol=rec.symbol, model_id=served.version.model_id, model_version=served.version.version,
                horizon=served.horizon,
                expected_return=rec.expected_return, probability=rec.probability, direction=rec.direction,
                confidence=rec.confidence, features=vector, made_at_ms=now_ms, ttl_seconds=ttl,
            )
            writes.append(CacheWrite(prediction_key(rec.symbol, served.horizon, model_id), payload, ttl))
    return writes


def metadata_write(served: ServedVersion, registry: ModelRegistry, now_ms: int, ttl: int) -> CacheWrite:
    version = served.version
    config = payloads.model_config(
        model_id=version.model_id, model_type=vfr_payload_type(version.tags.get("algorithm", "")),
        version=version.version, status="ACTIVE" if served.is_active else "INACTIVE", horizon=served.horizon,
        features=json.loads(version.tags.get("feature_names", "[]")),
        hyperparameters=registry.run_params(version.run_id), metrics=registry.run_metrics(version.run_id),
        created_at_ms=now_ms, updated_at_ms=now_ms, deployed_at_ms=now_ms if served.is_active else None,
    )
    return CacheWrite(model_metadata_key(version.model_id), config, ttl, compressible=False)


def is_our_model_id(model_id: str) -> bool:
    return model_id == payloads.DEFAULT_MODEL_ID or model_id.startswith(OUR_MODEL_ID_START)


def _model_id(key: str) -> str | None:
    parsed = parse_prediction_key(key)
    return parsed.model_id if parsed is not None else parse_model_metadata_key(key)


def stale_keys(client: redis.Redis, prefix: str, served_keys: set[str]) -> list[str]:
    """This project's prediction and model-metadata keys (model id `default` or `vfr-*`, our
    horizons) that the new set does not contain, with their `:meta`/`:compressed` variants."""
    patterns = [prediction_pattern(prefix, horizon=h) for h in HORIZONS]
    patterns.append(model_metadata_pattern(prefix, OUR_MODEL_ID_START))
    stale = []
    for pattern in patterns:
        for full in scan_keys(client, pattern):
            key = full[len(prefix) :]
            model_id = _model_id(key)
            if base_key(key) not in served_keys and model_id is not None and is_our_model_id(model_id):
                stale.append(key)
    return stale


@dataclass
class PredictionSet:
    """What one publish writes and removes, with a line per served version for the run's record."""

    writes: list[CacheWrite]
    deletes: list[str]
    now_ms: int
    ttl: int
    served: dict[str, str] = field(default_factory=dict)  # "{h}_{role}" -> model id, symbols, as of
    verdicts: dict[str, str] = field(default_factory=dict)


def plan_prediction_set(
    engine: Engine | Connection,
    registry: ModelRegistry,
    client: redis.Redis,
    prefix: str,
    versions: list[ServedVersion],
    now: datetime,
) -> PredictionSet:
    """Every served version's stored predictions of its latest day and its metadata, the
    enhancement status, and the stale keys to remove. A served version without stored
    predictions is breakage (NothingToServe)."""
    now_ms = int(now.timestamp() * 1000)
    ttl = publish_ttl_seconds(now)
    writes: list[CacheWrite] = []
    served: dict[str, str] = {}
    for version in versions:
        rows = latest_predictions(engine, version)
        if rows.empty:
            raise NothingToServe(f"no stored predictions of {version.version.model_id}; materialize predictions first")
        writes.extend(prediction_writes(version, rows, now_ms, ttl))
        writes.append(metadata_write(version, registry, now_ms, ttl))
        served[f"{version.horizon}_{version.role}"] = (
            f"{version.version.model_id} ({len(rows)} symbols, as of {rows['as_of_date'].iloc[0]})"
        )
    champions = sum(v.is_champion for v in versions)
    # with no champion at all VFR is told ML is unavailable (its classic path serves)
    status = payloads.enhancement_status(available=champions > 0, models_loaded=champions, features_ready=True, now_ms=now_ms)
    writes.append(CacheWrite(ENHANCEMENT_STATUS_KEY, status, ttl, compressible=False))
    deletes = stale_keys(client, prefix, {w.key for w in writes})
    return PredictionSet(writes, deletes, now_ms, ttl, served, serving_verdicts(versions))


@dataclass(frozen=True)
class PredictionPublish:
    plan: PredictionSet
    report: PublishReport
    seconds: float


def publish_prediction_set(
    client: redis.Redis, prefix: str, plan: PredictionSet, *, version: str, max_entries_per_transaction: int | None = None
) -> PredictionPublish:
    """Publish a planned set (vfr_writer.publish: all or nothing, with retries; PublishError
    when it cannot be applied)."""
    started = time.perf_counter()
    report = publish(
        client, prefix, plan.writes, version=version, deletes=plan.deletes, now_ms=plan.now_ms,
        max_entries_per_transaction=max_entries_per_transaction,
    )
    for line in horizon_lines(plan):
        log.info(line)
    return PredictionPublish(plan, report, time.perf_counter() - started)


def horizon_lines(plan: PredictionSet) -> list[str]:
    """Per horizon, the prediction keys a publish wrote, by model id (what an operator checks
    after a run: every horizon served, under `default` and its own id), or why none."""
    by_horizon: dict[str, Counter] = {h: Counter() for h in HORIZONS}
    for write in plan.writes:
        parsed = parse_prediction_key(write.key)
        if parsed is not None:
            by_horizon.setdefault(parsed.horizon, Counter())[parsed.model_id] += 1
    lines = []
    for horizon, counts in by_horizon.items():
        if counts:
            ids = ", ".join(f"{model_id}: {n:,}" for model_id, n in sorted(counts.items()))
            total = sum(counts.values())
            line = f"Redis publish, {horizon}: {total:,} prediction key{'' if total == 1 else 's'} written ({ids})"
            # shadows only: say why nothing is under `default`
            lines.append(line if "default" in counts else f"{line}; {plan.verdicts.get(horizon, 'no champion')}")
        else:
            lines.append(f"Redis publish, {horizon}: no prediction keys ({plan.verdicts.get(horizon, 'no model served')})")
    return lines
