import dagster as dg

from vfr_ml_pipelines.defs.resources import MarketDataResource, MlflowResource, WarehouseResource
from vfr_ml_pipelines.defs.serving.assets import PredictionConfig, predictions
from vfr_ml_pipelines.defs.serving.served import latest_predictions, latest_session, served_models, universe
from vfr_ml_pipelines.lib.serving.payloads import DirectionThresholds
from vfr_ml_pipelines.lib.serving.prediction_checks import check_predictions, direction_share_problems

MIN_COVERAGE = 0.95


@dg.asset_check(asset=predictions, blocking=True)
def predictions_are_publishable(
    warehouse: WarehouseResource, mlflow: MlflowResource, market_data: MarketDataResource
) -> dg.AssetCheckResult:
    """Gate before Redis and VFR's tables: each served model covers >= 95 % of the session's
    universe, once per symbol, with finite values, probability and confidence in 0..1, a
    direction consistent with the probability, a probability and an expected return that
    never point opposite ways, BUY / SELL / HOLD shares close to those the model gave its
    validation period, plausible expected returns, and values that fit `ml_predictions`'
    CHECK constraints and decimal precisions."""
    day = latest_session(warehouse, market_data)
    members = universe(warehouse, day)
    defaults = PredictionConfig()
    thresholds = DirectionThresholds(buy=defaults.buy_threshold, sell=defaults.sell_threshold)
    problems: list[str] = []
    metadata: dict = {"as_of": str(day), "universe": len(members)}
    for served in served_models(mlflow):
        rows = latest_predictions(warehouse, served)
        label = f"{served.horizon}_{served.role}"
        if rows.empty or rows["as_of_date"].iloc[0] != day:
            problems.append(f"{served.version.model_id}: no predictions of {day}")
            continue
        result = check_predictions(rows, members, min_coverage=MIN_COVERAGE, thresholds=thresholds)
        metadata[f"{label}_coverage"] = round(result.coverage, 4)
        problems.extend(f"{served.version.model_id}: {p}" for p in result.problems)
        calibration = mlflow.registry.load_serving_model(served.version.name, served.version.version).model.calibration
        validation = calibration.direction_shares(thresholds.buy, thresholds.sell)
        share_problems, distance = direction_share_problems(rows, validation, served.version.model_id)
        metadata[f"{label}_direction_share_distance"] = round(distance, 4)
        problems.extend(share_problems)
    return dg.AssetCheckResult(
        passed=not problems,
        description="all served predictions are publishable" if not problems else "; ".join(problems[:20]),
        metadata={**metadata, "problems": len(problems)},
    )
