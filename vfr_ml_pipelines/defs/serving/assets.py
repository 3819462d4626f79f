"""The serving assets: each calls one function of lib/serving and reports what it did.

Asset keys: `predictions`, `redis_predictions`, `ml_predictions`, `vfr_feature_export`,
`prediction_outcomes`, `ml_performance_metrics` (upstream: `feature_matrix`, `labels` and
`champion_{h}_model` for every horizon h of lib/horizons.py, and `live_1w_model`, whose
champion is published under its own id).
"""

from datetime import UTC, datetime

import dagster as dg

from vfr_ml_pipelines import __version__
from vfr_ml_pipelines.defs.pipeline.freshness import AFTER_THE_CLOSE
from vfr_ml_pipelines.defs.resources import MarketDataResource, MlflowResource, RedisResource, VfrModelsResource, WarehouseResource
from vfr_ml_pipelines.defs.serving.failures import as_failure
from vfr_ml_pipelines.lib.horizons import HORIZONS
from vfr_ml_pipelines.lib.serving.live_path import LIVE_HORIZON
from vfr_ml_pipelines.lib.serving.outcomes import fill_outcomes
from vfr_ml_pipelines.lib.serving.payloads import DirectionThresholds
from vfr_ml_pipelines.lib.serving.performance import roll_up_performance
from vfr_ml_pipelines.lib.serving.publish_plan import plan_prediction_set, publish_prediction_set
from vfr_ml_pipelines.lib.serving.redis_transport import PublishError
from vfr_ml_pipelines.lib.serving.served_models import (
    latest_prediction_session,
    require_served,
    served_versions,
    serving_verdicts,
)
from vfr_ml_pipelines.lib.serving.session_export import export_session_features
from vfr_ml_pipelines.lib.serving.session_predictions import predict_session, write_champion_predictions

_DEFAULT_THRESHOLDS = DirectionThresholds()


class PredictionConfig(dg.Config):
    buy_threshold: float = _DEFAULT_THRESHOLDS.buy
    sell_threshold: float = _DEFAULT_THRESHOLDS.sell

    @property
    def thresholds(self) -> DirectionThresholds:
        return DirectionThresholds(buy=self.buy_threshold, sell=self.sell_threshold)


@dg.asset(
    group_name="serving", kinds={"python", "postgres"},
    deps=[*(f"champion_{h}_model" for h in HORIZONS), f"live_{LIVE_HORIZON}_model", "feature_matrix"],
    freshness_policy=AFTER_THE_CLOSE,
)
def predictions(
    context: dg.AssetExecutionContext,
    config: PredictionConfig,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    market_data: MarketDataResource,
    vfr_models: VfrModelsResource,
) -> dg.MaterializeResult:
    """Every horizon's forecast for every universe symbol on the latest session, from the
    champion and (as a shadow) the challenger, mapped to VFR's expectedReturn /
    probability / direction / confidence (`vfr_ml.predictions`, one row per symbol, horizon
    and model version; lib/serving/session_predictions.py). Symbols whose latest feature
    vector is older than the session are left out and reported. A horizon without a champion
    is a normal outcome, stated in the metadata and the log (`{h}_verdict`); only a run with
    no model at all fails."""
    with as_failure():
        versions = served_versions(mlflow.registry)
        require_served(versions)
        verdicts = serving_verdicts(versions)
        for horizon, verdict in verdicts.items():
            context.log.info(f"{horizon}: {verdict}")
        made = predict_session(
            warehouse.engine, mlflow.registry, versions, today=market_data.today(), thresholds=config.thresholds,
            predicted_at=datetime.now(UTC), models_dir=vfr_models.path,
        )
    missing = made.symbols_without_fresh_features
    if missing:
        context.log.warning(f"{len(missing)} symbols without a feature vector of {made.as_of}: {missing[:10]}")
    metadata: dict = {"as_of": str(made.as_of), "symbols_without_fresh_features": len(missing)}
    metadata.update({f"{h}_verdict": v for h, v in verdicts.items()})
    metadata.update({f"{label}_{k}": v for label, values in made.by_version.items() for k, v in values.items()})
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name="serving", kinds={"redis"}, deps=[predictions], freshness_policy=AFTER_THE_CLOSE)
def redis_predictions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource, redis: RedisResource
) -> dg.MaterializeResult:
    """The predictions in the live VFR's Redis keys (VFR_CONTRACT.md): each horizon's
    champion under `vfr:ml:prediction:{SYMBOL}:{h}:default` and its own id, the challenger
    under its own id only, each served model's metadata key and the enhancement status; all
    in one MULTI/EXEC (with retries), so VFR reads either the previous set or the new one.
    Keys of symbols or models no longer served are removed in the same transaction
    (lib/serving/publish_plan.py). (`VFR_PUBLISH_MAX_ENTRIES_PER_TRANSACTION` splits it, for
    shorter waits of readers; the status and the removals then go in the last transaction.)"""
    with as_failure(PublishError):
        versions = served_versions(mlflow.registry)
        require_served(versions)
        plan = plan_prediction_set(warehouse.engine, mlflow.registry, redis.client, redis.key_prefix, versions, datetime.now(UTC))
        done = publish_prediction_set(
            redis.client, redis.key_prefix, plan, version=__version__, max_entries_per_transaction=redis.publish_max_entries_per_transaction
        )
    report = done.report
    context.log.info(
        f"published {report.written} entries ({report.bytes} bytes) in {done.seconds:.3f}s; removed {report.deleted} stale keys"
    )
    return dg.MaterializeResult(
        metadata={
            **done.plan.served,
            **{f"{h}_verdict": v for h, v in done.plan.verdicts.items()},
            "entries_written": report.written,
            "entries_compressed": report.compressed,
            "stale_keys_removed": report.deleted,
            "transactions": report.transactions,
            "bytes": report.bytes,
            "ttl_seconds": done.plan.ttl,
            "key_prefix": redis.key_prefix,
            "publish_seconds": round(done.seconds, 4),
        }
    )


@dg.asset(group_name="serving", kinds={"postgres"}, deps=[predictions])
def ml_predictions(warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """The champions' predictions as rows of VFR's `ml_predictions` table (one per symbol,
    session and horizon, under the horizon's enhancement definition `vfr_ml_pipelines_{h}`,
    in VFR's `direction` meaning); re-runs update the same rows. Shadow predictions stay in
    `vfr_ml.predictions`; a horizon without a champion writes nothing (stated in metadata)."""
    with as_failure():
        versions = served_versions(mlflow.registry)
        written = write_champion_predictions(warehouse.engine, versions)
    metadata: dict = {f"{h}_verdict": v for h, v in serving_verdicts(versions).items()}
    metadata.update({f"{h}_{k}": v for h, values in written.items() for k, v in values.items()})
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    group_name="serving", kinds={"postgres", "redis"},
    deps=["feature_matrix", f"live_{LIVE_HORIZON}_model", f"champion_{LIVE_HORIZON}_model"],
)
def vfr_feature_export(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    redis: RedisResource,
    market_data: MarketDataResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    """The latest session's raw features where VFR reads them: `ml_feature_definitions`
    (one row per feature), `ml_feature_store` (one row per symbol and feature; `valid` when
    finite and in range, else `invalid`) and Redis `vfr:ml:feature:vector:{SYMBOL}`
    (`MLFeatureVector`, one MULTI/EXEC with the same TTL policy as predictions). With a
    model on VFR's live path (the live model's champion, `live_1w_model`; else, the fallback,
    the `1w` champion: `live_path.choose_live_model`, metadata `live_design`), also that
    model's inputs for VFR's live ensemble (`vfr_live_{name}` for each input a split reads,
    every symbol, in SQL and in the vectors; lib/serving/session_export.py)."""
    with as_failure():
        done = export_session_features(
            warehouse.engine, mlflow.registry, redis.client, redis.key_prefix, provider=market_data.provider_name,
            today=market_data.today(), now=datetime.now(UTC), version=__version__,
            max_entries_per_transaction=redis.publish_max_entries_per_transaction,
        )
    for warning in done.warnings:
        context.log.warning(warning)
    context.log.info(
        f"exported {done.feature_store_rows} feature values of {done.as_of} ({done.invalid_values} invalid, "
        f"{done.missing_values} missing) and {done.redis_vectors} vectors"
    )
    if done.retired:
        context.log.info(f"{len(done.retired)} feature definitions no longer produced are now inactive: "
                         f"{', '.join(done.retired[:10])}" + (" ..." if len(done.retired) > 10 else ""))
    return dg.MaterializeResult(metadata=done.counts())


class OutcomeConfig(dg.Config):
    """`full_recompute`: compute every known outcome again (backfills, a changed label
    definition) instead of only the pending ones and those a re-loaded price restated."""

    full_recompute: bool = False


@dg.asset(group_name="serving", kinds={"postgres"}, deps=[ml_predictions, "labels"])
def prediction_outcomes(
    context: dg.AssetExecutionContext, config: OutcomeConfig, warehouse: WarehouseResource, market_data: MarketDataResource
) -> dg.MaterializeResult:
    """Realized outcomes with VFR's definitions: once a prediction's horizon has passed (its
    label is known), one `ml_outcomes` row (what VFR's /api/ml/metrics reads, through its
    views, refreshed here) and the outcome columns of its `ml_predictions` row
    (lib/serving/outcomes.py); re-runs change nothing. Computes only the outcomes still
    pending and those whose label window reaches a price re-loaded since the last fill,
    unless `full_recompute`."""
    with warehouse.engine.begin() as conn:
        report = fill_outcomes(conn, today=market_data.today(), full_recompute=config.full_recompute)
    context.log.info(
        f"filled {report.rows_updated} outcomes ({report.outcomes_written} ml_outcomes rows written, "
        f"{report.outcomes_skipped} outside VFR's range) of {report.considered} computed ({report.mode}); "
        f"{report.pending} predictions still pending"
    )
    return dg.MaterializeResult(
        metadata={
            "mode": report.mode,
            "outcomes_computed": report.considered,
            "restated_from": str(report.restated_from) if report.restated_from else "none",
            "rows_updated": report.rows_updated,
            **{f"{h}_rows_updated": n for h, n in report.horizons.items()},
            "ml_outcomes_written": report.outcomes_written,
            "ml_outcomes_skipped": report.outcomes_skipped,
            "pending": report.pending,
            "oldest_pending": str(report.oldest_pending) if report.oldest_pending else "none",
        }
    )


@dg.asset(group_name="serving", kinds={"postgres"}, deps=[prediction_outcomes])
def ml_performance_metrics(warehouse: WarehouseResource, market_data: MarketDataResource) -> dg.MaterializeResult:
    """The daily roll-up in VFR's `ml_performance_metrics` for the latest session:
    predictions made, and the realized accuracy of the outcomes that became known that day
    (lib/serving/performance.py)."""
    with as_failure():
        day = latest_prediction_session(warehouse.engine, market_data.today())
    with warehouse.engine.begin() as conn:
        row = roll_up_performance(conn, metric_date=day)
    return dg.MaterializeResult(
        metadata={"metric_date": str(day), **{k: v for k, v in row.items() if v is not None}}
    )
