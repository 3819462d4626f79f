"""The serving jobs. Jobs: `disable_ml_job` (op `disable_vfr_ml`: the kill switch) and
`republish_job` (the publishing assets `PUBLISH_ASSETS` plus the `feature_matrix_is_valid` gate)."""

import dagster as dg

from vfr_ml_pipelines import __version__
from vfr_ml_pipelines.defs.pipeline.freshness import FRESHNESS_CHECKS
from vfr_ml_pipelines.defs.resources import RedisResource, WarehouseResource
from vfr_ml_pipelines.lib.serving.kill_switch import INCLUDE_FEATURES_DEFAULT, switch_ml_off

PUBLISH_ASSETS = ["predictions", "redis_predictions", "ml_predictions", "vfr_feature_export", "vfr_live_model"]
# Every path to VFR passes the same gates: a job that publishes without rebuilding the
# feature matrix still runs its blocking check (on the stored matrix), and a failure stops
# the publishing assets before anything reaches Redis or VFR's tables.
FEATURE_GATE = dg.AssetSelection.checks(dg.AssetCheckKey(dg.AssetKey("feature_matrix"), "feature_matrix_is_valid"))
# the freshness checks observe publishing from outside (defs/pipeline/freshness.py)
PUBLISH_SELECTION = (dg.AssetSelection.assets(*PUBLISH_ASSETS) | FEATURE_GATE) - dg.AssetSelection.checks(*FRESHNESS_CHECKS)


class KillSwitchConfig(dg.Config):
    include_features: bool = INCLUDE_FEATURES_DEFAULT


@dg.op
def disable_vfr_ml(
    context: dg.OpExecutionContext, config: KillSwitchConfig, redis: RedisResource, warehouse: WarehouseResource
) -> None:
    """Turn off everything of ours that either VFR path reads: our `deployed` rows of
    `ml_models` (VFR's live ensemble) leave `deployed` first, recorded for the next publish to
    restore; then every prediction, model-metadata (and feature-vector) key this project wrote
    goes (VFR's own keys stay) and the enhancement status says unavailable (the cache path)
    (lib/serving/kill_switch.py)."""
    done = switch_ml_off(
        warehouse.engine, redis.client, redis.key_prefix, include_features=config.include_features, version=__version__
    )
    report = done.report
    context.log.info(f"ML disabled for VFR in {done.seconds:.2f}s: undeployed {done.undeployed}; {report}")
    context.log_event(
        dg.AssetObservation(
            asset_key="redis_predictions",
            metadata={
                "disabled": True,
                "prediction_keys_removed": report.prediction_keys_removed,
                "feature_keys_removed": report.feature_keys_removed,
                "metadata_keys_removed": report.metadata_keys_removed,
                "foreign_keys_kept": report.foreign_keys_kept,
                "seconds": round(done.seconds, 3),
            },
        )
    )
    context.log_event(
        dg.AssetObservation(
            asset_key="vfr_live_model",
            metadata={"disabled": True, "ml_models_undeployed": ", ".join(done.undeployed) or "none"},
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
