import time
from datetime import UTC, datetime

import dagster as dg

from vfr_ml_pipelines import __version__
from vfr_ml_pipelines.defs.resources import RedisResource, WarehouseResource
from vfr_ml_pipelines.lib.serving.kill_switch import disable_ml
from vfr_ml_pipelines.lib.serving.live_path import disable_live_path

PUBLISH_ASSETS = ["predictions", "redis_predictions", "ml_predictions", "vfr_feature_export", "vfr_live_model"]
# Every path to VFR passes the same gates: a job that publishes without rebuilding the
# feature matrix still runs its blocking check (on the stored matrix), and a failure stops
# the publishing assets before anything reaches Redis or VFR's tables.
FEATURE_GATE = dg.AssetSelection.checks(dg.AssetCheckKey(dg.AssetKey("feature_matrix"), "feature_matrix_is_valid"))
PUBLISH_SELECTION = dg.AssetSelection.assets(*PUBLISH_ASSETS) | FEATURE_GATE


class KillSwitchConfig(dg.Config):
    include_features: bool = True


@dg.op
def disable_vfr_ml(
    context: dg.OpExecutionContext, config: KillSwitchConfig, redis: RedisResource, warehouse: WarehouseResource
) -> None:
    """Turn off everything of ours that either VFR path reads: our `deployed` rows of
    `ml_models` (VFR's live ensemble) leave `deployed` first, recorded for the next publish to
    restore; then every prediction, model-metadata (and feature-vector) key this project wrote
    goes (VFR's own keys stay) and the enhancement status says unavailable (the cache path)."""
    started = time.perf_counter()
    with warehouse.engine.begin() as conn:
        undeployed = disable_live_path(conn)
    report = disable_ml(
        redis.client, redis.key_prefix, include_features=config.include_features,
        now_ms=int(datetime.now(UTC).timestamp() * 1000), version=__version__,
    )
    seconds = time.perf_counter() - started
    context.log.info(f"ML disabled for VFR in {seconds:.2f}s: undeployed {undeployed}; {report}")
    context.log_event(
        dg.AssetObservation(
            asset_key="redis_predictions",
            metadata={
                "disabled": True,
                "prediction_keys_removed": report.prediction_keys_removed,
                "feature_keys_removed": report.feature_keys_removed,
                "metadata_keys_removed": report.metadata_keys_removed,
                "foreign_keys_kept": report.foreign_keys_kept,
                "seconds": round(seconds, 3),
            },
        )
    )
    context.log_event(
        dg.AssetObservation(
            asset_key="vfr_live_model",
            metadata={"disabled": True, "ml_models_undeployed": ", ".join(undeployed) or "none"},
        )
    )


@dg.job(
    description=(
        "Kill switch: our deployed ml_models rows leave 'deployed' (VFR's live ensemble), our prediction, metadata and "
        "feature-vector keys leave VFR's Redis and ML is marked unavailable (VFR's cache path). "
        "Run republish_job to turn it back on."
    )
)
def disable_ml_job():
    disable_vfr_ml()


republish_job = dg.define_asset_job(
    name="republish_job",
    selection=PUBLISH_SELECTION,
    description="Predict with the current champions and publish predictions and feature vectors to VFR's Redis and tables (turns ML back on after disable_ml_job).",
)
