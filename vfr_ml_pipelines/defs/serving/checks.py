"""The serving gate. Asset check: `predictions_are_publishable` (on `predictions`, blocking)."""

import dagster as dg

from vfr_ml_pipelines.defs.resources import MarketDataResource, MlflowResource, VfrModelsResource, WarehouseResource
from vfr_ml_pipelines.defs.serving.assets import PredictionConfig, predictions
from vfr_ml_pipelines.defs.serving.failures import as_failure
from vfr_ml_pipelines.lib.serving.publish_gate import check_served_predictions


@dg.asset_check(asset=predictions, blocking=True)
def predictions_are_publishable(
    warehouse: WarehouseResource, mlflow: MlflowResource, market_data: MarketDataResource, vfr_models: VfrModelsResource
) -> dg.AssetCheckResult:
    """Gate before Redis and VFR's tables: each served model covers >= 95 % of the session's
    universe, once per symbol, with finite values, probability and confidence in 0..1, a
    direction consistent with the probability, a probability and an expected return that
    never point opposite ways, BUY / SELL / HOLD shares close to those the model gave its
    validation period, plausible expected returns, and values that fit `ml_predictions`'
    CHECK constraints and decimal precisions (lib/serving/publish_gate.py)."""
    with as_failure():
        verdict = check_served_predictions(
            warehouse.engine, mlflow.registry, today=market_data.today(), thresholds=PredictionConfig().thresholds,
            models_dir=vfr_models.path,
        )
    problems = verdict.problems
    return dg.AssetCheckResult(
        passed=not problems,
        description="all served predictions are publishable" if not problems else "; ".join(problems[:20]),
        metadata={**verdict.metadata, "problems": len(problems)},
    )
