import time
from datetime import UTC, datetime

import dagster as dg

from vfr_ml_pipelines import __version__
from vfr_ml_pipelines.defs.resources import RedisResource
from vfr_ml_pipelines.lib.serving.kill_switch import disable_ml

PUBLISH_ASSETS = ["predictions", "redis_predictions", "ml_predictions", "vfr_feature_export"]
# Every path to VFR passes the same gates: a job that publishes without rebuilding the
# feature matrix still runs its blocking check (on the stored matrix), and a failure stops
# the publishing assets before anything reaches Redis or VFR's tables.
FEATURE_GATE = dg.AssetSelection.checks(dg.AssetCheckKey(dg.AssetKey("feature_matrix"), "feature_matrix_is_valid"))
PUBLISH_SELECTION = dg.AssetSelection.assets(*PUBLISH_ASSETS) | FEATURE_GATE


class KillSwitchConfig(dg.Config):
    include_features: bool = True


@dg.op
def disable_vfr_ml(context: dg.OpExecutionContext, config: KillSwitchConfig, redis: RedisResource) -> None:
    """Remove every prediction (and feature-vector) key this project published and mark the
    enhancement status unavailable: VFR falls back to its classic path on the next read."""
    started = time.perf_counter()
    report = disable_ml(
        redis.client, redis.key_prefix, include_features=config.include_features,
        now_ms=int(datetime.now(UTC).timestamp() * 1000), version=__version__,
    )
    context.log.info(f"ML disabled for VFR in {time.perf_counter() - started:.2f}s: {report}")
    context.log_event(
        dg.AssetObservation(
            asset_key="redis_predictions",
            metadata={
                "disabled": True,
                "prediction_keys_removed": report.prediction_keys_removed,
                "feature_keys_removed": report.feature_keys_removed,
                "metadata_keys_removed": report.metadata_keys_removed,
            },
        )
    )


@dg.job(description="Kill switch: remove all of this project's prediction keys from VFR's Redis and mark ML unavailable. Run republish_job to turn it back on.")
def disable_ml_job():
    disable_vfr_ml()


republish_job = dg.define_asset_job(
    name="republish_job",
    selection=PUBLISH_SELECTION,
    description="Predict with the current champions and publish predictions and feature vectors to VFR's Redis and tables (turns ML back on after disable_ml_job).",
)
