import dagster as dg
from sqlalchemy import text

from vfr_ml_pipelines.defs.resources import WarehouseResource
from vfr_ml_pipelines.lib.features import technical
from vfr_ml_pipelines.lib.features.labels import compute_labels
from vfr_ml_pipelines.lib.market_data.adjust import adjust_prices
from vfr_ml_pipelines.lib.warehouse import read_frame, upsert_frame

PRICES_SQL = """
SELECT symbol, trade_date, open, high, low, close, adj_close, volume, dividend, split_ratio
FROM vfr_ml.raw_prices ORDER BY symbol, trade_date
"""


def read_adjusted_prices(warehouse: WarehouseResource):
    """All stored bars with adj_close recomputed from split and dividend events."""
    return adjust_prices(read_frame(warehouse.engine, PRICES_SQL))


@dg.asset(group_name="features", kinds={"python", "postgres"}, deps=["raw_prices"])
def technical_features(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """TA-Lib technical indicators per symbol and day (`vfr_ml.feature_values`, feature set
    `technical-v2`). Warm-up windows are stored as NULL, not filled."""
    prices = read_adjusted_prices(warehouse)
    wide = technical.compute_technical_features(prices)
    long = technical.to_long(wide)
    written = upsert_frame(warehouse.engine, "vfr_ml.feature_values", long, ["feature_set", "trade_date", "symbol", "feature_name"])
    context.log.info(f"upserted {written} feature values")
    latest = wide[wide["trade_date"] == wide["trade_date"].max()]
    return dg.MaterializeResult(
        metadata={
            "feature_set": technical.FEATURE_SET_VERSION,
            "features": len(technical.FEATURE_NAMES),
            "rows": len(wide),
            "latest_day": str(wide["trade_date"].max()),
            "latest_day_missing_share": float(latest[list(technical.FEATURE_NAMES)].isna().mean().mean()),
        }
    )


@dg.asset(group_name="features", kinds={"python", "postgres"}, deps=["raw_prices"])
def labels(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Forward 1-week returns (and excess over the universe) with the day each becomes
    known (`vfr_ml.labels`). Rows for days whose horizon has not passed do not exist."""
    prices = read_adjusted_prices(warehouse)
    frame = compute_labels(prices, "1w")
    with warehouse.engine.begin() as conn:
        conn.execute(text("DELETE FROM vfr_ml.labels WHERE horizon = '1w' AND NOT (symbol = ANY(:symbols))"), {"symbols": list(frame["symbol"].unique())})
        upsert_frame(conn, "vfr_ml.labels", frame, ["horizon", "trade_date", "symbol"])
    return dg.MaterializeResult(
        metadata={
            "horizon": "1w",
            "rows": len(frame),
            "last_labelled_day": str(frame["trade_date"].max()),
            "mean_forward_return": float(frame["forward_return"].mean()),
        }
    )
