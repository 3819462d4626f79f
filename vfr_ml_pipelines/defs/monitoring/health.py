"""Serving health: is what VFR reads complete, lasting and recent?

Defines the asset `serving_health` (group `monitoring`, after `redis_predictions`, in the daily
job) with its checks `redis_coverage_is_complete` (blocking: every served symbol x champion
horizon has its `default` prediction key in Redis, not expiring before the next publish) and
`serving_is_healthy` (warning: universe members without a prediction, stale champions, the
Redis memory of our keys, the BUY/HOLD/SELL shares in metadata).
"""

from datetime import UTC, datetime

import dagster as dg

from vfr_ml_pipelines.defs.monitoring.reports import table_metadata
from vfr_ml_pipelines.defs.resources import MlflowResource, RedisResource, WarehouseResource
from vfr_ml_pipelines.lib.monitoring.serving_health import ServingHealthConfig
from vfr_ml_pipelines.lib.monitoring.serving_state import coverage_table, serving_state

_HEALTH = ServingHealthConfig()
COVERAGE_CHECK, HEALTH_CHECK = "redis_coverage_is_complete", "serving_is_healthy"
COVERAGE_COLUMNS = ["horizon", "expected", "covered", "missing", "expiring_early", "coverage", "unpredicted_members", "model_age_days"]


class ServingHealthAssetConfig(dg.Config):
    """`lib/monitoring/serving_health.py`'s `ServingHealthConfig` holds the defaults and why."""

    margin_seconds: int = _HEALTH.margin_seconds
    max_model_age_days: float = _HEALTH.max_model_age_days


@dg.asset(group_name="monitoring", kinds={"redis"}, deps=["redis_predictions"], check_specs=[
    dg.AssetCheckSpec(COVERAGE_CHECK, asset="serving_health", blocking=True,
                      description="Every served symbol x champion horizon is in Redis and outlives the next publish"),
    dg.AssetCheckSpec(HEALTH_CHECK, asset="serving_health",
                      description="No unpredicted universe member, no stale champion (warning)"),
])
def serving_health(config: ServingHealthAssetConfig, warehouse: WarehouseResource, mlflow: MlflowResource,
                   redis: RedisResource) -> dg.MaterializeResult:
    """Coverage and TTLs of the prediction keys, champion ages, direction shares and the memory of our keys."""
    settings = ServingHealthConfig(margin_seconds=config.margin_seconds, max_model_age_days=config.max_model_age_days)
    state = serving_state(warehouse.engine, mlflow.registry, redis.client, redis.key_prefix, datetime.now(UTC), settings)
    holes = [f"{s}:{h}" for s, h in (*state.coverage.missing, *state.coverage.expiring)]
    stale = sorted(h for h, age in state.ages.items() if age.stale)
    unpredicted = sum(state.unpredicted.values())
    return dg.MaterializeResult(
        metadata={"session": str(state.session), "coverage": state.coverage.coverage, "table": table_metadata(coverage_table(state), COVERAGE_COLUMNS),
                  "directions": dg.MetadataValue.json(state.directions), "redis_keys": state.memory.keys,
                  "redis_bytes_estimated": state.memory.estimated_bytes},
        check_results=[
            dg.AssetCheckResult(check_name=COVERAGE_CHECK, passed=not holes,
                                metadata={"holes": len(holes), "first_holes": ", ".join(holes[:20]) or "none"}),
            dg.AssetCheckResult(check_name=HEALTH_CHECK, passed=not stale and not unpredicted, severity=dg.AssetCheckSeverity.WARN,
                                metadata={"stale_champions": ", ".join(stale) or "none", "unpredicted_members": unpredicted}),
        ],
    )
