"""The code location: every asset, check, job, schedule and resource of vfr_ml_pipelines."""

import dagster as dg

from vfr_ml_pipelines.defs.backtests import assets as backtest_assets
from vfr_ml_pipelines.defs.features import assets as feature_assets
from vfr_ml_pipelines.defs.features import checks as feature_checks
from vfr_ml_pipelines.defs.market_data import assets as market_data_assets
from vfr_ml_pipelines.defs.market_data import checks as market_data_checks
from vfr_ml_pipelines.defs.models import assets as model_assets
from vfr_ml_pipelines.defs.models import checks as model_checks
from vfr_ml_pipelines.defs.models.jobs import retraining_job, rollback_jobs
from vfr_ml_pipelines.defs.monitoring import drift as monitoring_drift
from vfr_ml_pipelines.defs.monitoring import health as monitoring_health
from vfr_ml_pipelines.defs.monitoring import performance as monitoring_performance
from vfr_ml_pipelines.defs.monitoring.alerts import run_failure_alert_sensor
from vfr_ml_pipelines.defs.models.schedules import weekly_retraining_schedule
from vfr_ml_pipelines.defs.pipeline.freshness import FRESHNESS_CHECKS
from vfr_ml_pipelines.defs.pipeline.jobs import daily_pipeline_job, full_pipeline_job
from vfr_ml_pipelines.defs.pipeline.schedules import daily_pipeline_schedule
from vfr_ml_pipelines.defs.resources import build_resources
from vfr_ml_pipelines.defs.serving import assets as serving_assets
from vfr_ml_pipelines.defs.serving import checks as serving_checks
from vfr_ml_pipelines.defs.serving import live as serving_live
from vfr_ml_pipelines.defs.serving.jobs import disable_ml_job, republish_job

ALL_ASSETS = [
    *dg.load_assets_from_modules([market_data_assets, feature_assets, serving_assets, serving_live]),
    *dg.load_assets_from_modules([monitoring_drift, monitoring_performance, monitoring_health]),
    *model_assets.training_assets,
    *model_assets.champion_assets,
    model_assets.live_model,
    *backtest_assets.backtest_assets,
    backtest_assets.risk_report,
    backtest_assets.live_track_record,
]
ALL_CHECKS = [
    *dg.load_asset_checks_from_modules([market_data_checks, feature_checks, serving_checks]),
    *model_checks.promotion_gates,
    *FRESHNESS_CHECKS,
]

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[full_pipeline_job, daily_pipeline_job, retraining_job, *rollback_jobs, republish_job, disable_ml_job],
    schedules=[daily_pipeline_schedule, weekly_retraining_schedule],
    sensors=[run_failure_alert_sensor, monitoring_drift.drift_sensor, monitoring_performance.decay_sensor],
    resources=build_resources(),
)
