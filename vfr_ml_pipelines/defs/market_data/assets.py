import dagster as dg
from sqlalchemy import text

from vfr_ml_pipelines.defs.resources import MarketDataResource, WarehouseResource
from vfr_ml_pipelines.lib.market_data.synthetic import generate_prices, generate_universe
from vfr_ml_pipelines.lib.warehouse import upsert_frame


@dg.asset(group_name="market_data", kinds={"python", "postgres"})
def universe(market_data: MarketDataResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The symbols this project covers, with sector and listing date (`vfr_ml.universe`).
    Symbols that left the universe are removed, so downstream assets never serve them."""
    config = market_data.synthetic_config()
    frame = generate_universe(config).assign(source=market_data.provider)
    with warehouse.engine.begin() as conn:
        upsert_frame(conn, "vfr_ml.universe", frame, ["symbol"])
        conn.execute(text("DELETE FROM vfr_ml.universe WHERE NOT (symbol = ANY(:symbols))"), {"symbols": list(frame["symbol"])})
    return dg.MaterializeResult(
        metadata={
            "symbols": len(frame),
            "sectors": frame["sector"].nunique(),
            "provider": market_data.provider,
        }
    )


@dg.asset(group_name="market_data", kinds={"python", "postgres"}, deps=[universe])
def raw_prices(context: dg.AssetExecutionContext, market_data: MarketDataResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Daily OHLCV bars per symbol (`vfr_ml.raw_prices`), upserted by (symbol, trade_date)
    so a re-run rewrites the same rows and never duplicates them."""
    config = market_data.synthetic_config()
    frame = generate_prices(config).assign(source=market_data.provider)
    written = upsert_frame(warehouse.engine, "vfr_ml.raw_prices", frame, ["symbol", "trade_date"])
    context.log.info(f"upserted {written} price rows")
    return dg.MaterializeResult(
        metadata={
            "rows": len(frame),
            "symbols": frame["symbol"].nunique(),
            "first_day": str(frame["trade_date"].min()),
            "last_day": str(frame["trade_date"].max()),
        }
    )
