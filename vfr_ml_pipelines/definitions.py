"""The code location: every asset, check, job, schedule and resource of vfr_ml_pipelines."""

import dagster as dg

from vfr_ml_pipelines.defs.features import assets as feature_assets
from vfr_ml_pipelines.defs.features import checks as feature_checks
from vfr_ml_pipelines.defs.market_data import assets as market_data_assets
from vfr_ml_pipelines.defs.market_data import checks as market_data_checks
from vfr_ml_pipelines.defs.models import assets as model_assets
from vfr_ml_pipelines.defs.monitoring.schedules import daily_pipeline_job, daily_pipeline_schedule
from vfr_ml_pipelines.defs.resources import build_resources
from vfr_ml_pipelines.defs.serving import assets as serving_assets

ALL_ASSETS = dg.load_assets_from_modules([market_data_assets, feature_assets, model_assets, serving_assets])
ALL_CHECKS = dg.load_asset_checks_from_modules([market_data_checks, feature_checks])

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[daily_pipeline_job],
    schedules=[daily_pipeline_schedule],
    resources=build_resources(),
)
