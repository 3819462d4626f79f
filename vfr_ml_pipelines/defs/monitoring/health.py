"""Serving health: is what VFR reads complete, lasting and recent?

Defines the asset `serving_health` (group `monitoring`, after `redis_predictions`, in the daily
job) with its checks `redis_coverage_is_complete` (blocking: every served symbol x champion
horizon has its `default` prediction key in Redis, not expiring before the next publish) and
`serving_is_healthy` (warning: universe members without a prediction, stale champions, the
Redis memory of our keys, the BUY/HOLD/SELL shares in metadata) and
`predictions_match_validation` (warning: each champion's latest session against its validation
record: BUY/HOLD/SELL shares by chi-square, expected-return spread by ratio). The metadata also
gives the inference latency of the last publish (`predictions`' scoring time per horizon).
"""

from datetime import UTC, datetime

import dagster as dg

from vfr_ml_pipelines.defs.monitoring.reports import metadata_record, table_metadata
from vfr_ml_pipelines.defs.resources import MlflowResource, RedisResource, WarehouseResource
from vfr_ml_pipelines.lib.monitoring.serving_health import NO_RECORD, ServingHealthConfig, inference_latency
from vfr_ml_pipelines.lib.monitoring.serving_state import coverage_table, serving_state

_HEALTH = ServingHealthConfig()
COVERAGE_CHECK, HEALTH_CHECK = "redis_coverage_is_complete", "serving_is_healthy"
DISTRIBUTION_CHECK = "predictions_match_validation"
COVERAGE_COLUMNS = ["horizon", "expected", "covered", "missing", "expiring_early", "coverage", "unpredicted_members", "model_age_days"]


class ServingHealthAssetConfig(dg.Config):
    """`lib/monitoring/serving_health.py`'s `ServingHealthConfig` holds the defaults and why."""

    margin_seconds: int = _HEALTH.margin_seconds
    max_model_age_days: float = _HEALTH.max_model_age_days
    min_predictions: int = _HEALTH.min_predictions
    max_spread_ratio: float = _HEALTH.max_spread_ratio


@dg.asset(group_name="monitoring", kinds={"redis"}, deps=["redis_predictions"], check_specs=[
    dg.AssetCheckSpec(COVERAGE_CHECK, asset="serving_health", blocking=True,
                      description="Every served symbol x champion horizon is in Redis and outlives the next publish"),
    dg.AssetCheckSpec(HEALTH_CHECK, asset="serving_health",
                      description="No unpredicted universe member, no stale champion (warning)"),
    dg.AssetCheckSpec(DISTRIBUTION_CHECK, asset="serving_health",
                      description="Each champion's served BUY/HOLD/SELL shares and spread match its validation period (warning)"),
])
def serving_health(context: dg.AssetExecutionContext, config: ServingHealthAssetConfig, warehouse: WarehouseResource,
                   mlflow: MlflowResource, redis: RedisResource) -> dg.MaterializeResult:
    """Coverage and TTLs of the prediction keys, champion ages, direction shares against the
    validation period, the last publish's inference latency and the memory of our keys."""
    settings = ServingHealthConfig(margin_seconds=config.margin_seconds, max_model_age_days=config.max_model_age_days,
                                   min_predictions=config.min_predictions, max_spread_ratio=config.max_spread_ratio)
    state = serving_state(warehouse.engine, mlflow.registry, redis.client, redis.key_prefix, datetime.now(UTC), settings)
    holes = [f"{s}:{h}" for s, h in (*state.coverage.missing, *state.coverage.expiring)]
    stale = sorted(h for h, age in state.ages.items() if age.stale)
    unpredicted = sum(state.unpredicted.values())
    distributions = {h: d.summary() for h, d in state.distributions.items()}
    shifted = sorted(h for h, d in state.distributions.items() if d.flagged)
    unrecorded = sorted(h for h, d in state.distributions.items() if d.status == NO_RECORD)
    latency = inference_latency(metadata_record(context.instance, dg.AssetKey("predictions")) or {}, sorted(state.ages))
    return dg.MaterializeResult(
        metadata={"session": str(state.session), "coverage": state.coverage.coverage, "table": table_metadata(coverage_table(state), COVERAGE_COLUMNS),
                  "directions": dg.MetadataValue.json(state.directions), "redis_keys": state.memory.keys,
                  "redis_bytes_estimated": state.memory.estimated_bytes, "distribution": dg.MetadataValue.json(distributions),
                  "inference_seconds": dg.MetadataValue.json(latency) if latency else "no timed publish recorded"},
        check_results=[
            dg.AssetCheckResult(check_name=COVERAGE_CHECK, passed=not holes,
                                metadata={"holes": len(holes), "first_holes": ", ".join(holes[:20]) or "none"}),
            dg.AssetCheckResult(check_name=HEALTH_CHECK, passed=not stale and not unpredicted, severity=dg.AssetCheckSeverity.WARN,
                                metadata={"stale_champions": ", ".join(stale) or "none", "unpredicted_members": unpredicted}),
            dg.AssetCheckResult(check_name=DISTRIBUTION_CHECK, passed=not shifted, severity=dg.AssetCheckSeverity.WARN,
                                metadata={"shifted_horizons": ", ".join(shifted) or "none",
                                          "without_validation_record": ", ".join(unrecorded) or "none"}),
        ],
    )
