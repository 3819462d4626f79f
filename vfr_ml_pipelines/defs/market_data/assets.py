"""Market-data assets, one partition per NYSE session (defs/market_data/partitions.py).

Asset keys: `universe`, `raw_prices`, `raw_fundamentals`, `raw_news`, `synthetic_oracle`.
Each body is wiring: the provider and the warehouse in, one call to
`lib/market_data/loads.py`, metadata out.
"""

from collections.abc import Callable
from datetime import date

import dagster as dg

from vfr_ml_pipelines.defs.market_data.partitions import single_run_backfill, trading_day_partitions
from vfr_ml_pipelines.defs.pipeline.freshness import AFTER_THE_CLOSE
from vfr_ml_pipelines.defs.resources import MarketDataResource, WarehouseResource
from vfr_ml_pipelines.lib.market_data import loads

# Prices must be loaded by the morning after each session (the evening run loads them).


def partition_dates(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """First and last session of the run's partition (range, for single-run backfills)."""
    keys = context.partition_key_range
    return date.fromisoformat(keys.start), date.fromisoformat(keys.end)


def _load_range(
    context: dg.AssetExecutionContext, market_data: MarketDataResource, warehouse: WarehouseResource,
    load_dataset: Callable[..., loads.RangeLoad],
) -> loads.RangeLoad:
    """`load_dataset` (loads.load_prices, ...) on the run's partition range."""
    start, end = partition_dates(context)
    return load_dataset(
        warehouse.engine, market_data.provider(end), start, end, today=market_data.today(), run_id=context.run_id, log=context.log,
    )


def _stored(load: loads.RangeLoad) -> dict:
    return {
        "rows": len(load.result.clean), "quarantined": len(load.result.rejected),
        "quarantined_by_field": dg.MetadataValue.json(load.quarantined_by_field()),
        "symbols_refused": dg.MetadataValue.json(load.refused),
    }


@dg.asset(
    group_name="market_data", kinds={"postgres"}, partitions_def=trading_day_partitions,
    backfill_policy=single_run_backfill,
)
def universe(context: dg.AssetExecutionContext, market_data: MarketDataResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The symbols covered on each session: the symbol master `vfr_ml.universe` (sector,
    listing and delisting dates) and daily membership `vfr_ml.universe_membership`."""
    start, end = partition_dates(context)
    load = loads.load_universe(warehouse.engine, market_data.provider(end), start, end, run_id=context.run_id, log=context.log)
    return dg.MaterializeResult(
        metadata={
            "sessions": load.sessions, "symbols": load.symbols, "sectors": load.sectors, "provider": load.provider,
            "quarantined": len(load.result.rejected), "symbols_refused": dg.MetadataValue.json(load.refused),
        }
    )


@dg.asset(
    group_name="market_data", kinds={"postgres"}, deps=[universe], partitions_def=trading_day_partitions,
    backfill_policy=single_run_backfill, freshness_policy=AFTER_THE_CLOSE,
)
def raw_prices(context: dg.AssetExecutionContext, market_data: MarketDataResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Daily OHLCV bars of the session's universe (`vfr_ml.raw_prices`): raw traded prices
    plus split and dividend events on their ex-dates (adjusted series are derived from
    these). Rows failing validation, bars of sessions where their symbol is not listed, and
    a symbol's bars from an unexplained jump on (a possible unadjusted split) go to
    `vfr_ml.quarantine` with the reason; the other symbols go on."""
    start, end = partition_dates(context)
    load = _load_range(context, market_data, warehouse, loads.load_prices)
    return dg.MaterializeResult(
        metadata={
            **_stored(load), "symbols": load.symbols, "first_day": str(start), "last_day": str(end),
            "symbols_held_out_for_unexplained_jumps": dg.MetadataValue.json(load.held_out),
        }
    )


@dg.asset(
    group_name="market_data", kinds={"postgres"}, deps=[universe], partitions_def=trading_day_partitions,
    backfill_policy=single_run_backfill,
)
def raw_fundamentals(context: dg.AssetExecutionContext, market_data: MarketDataResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Quarterly reports by filing day (`vfr_ml.raw_fundamentals`): the partition of a report
    is the session it was filed on, the only day from which a model may use it."""
    return dg.MaterializeResult(metadata=_stored(_load_range(context, market_data, warehouse, loads.load_fundamentals)))


@dg.asset(
    group_name="market_data", kinds={"postgres"}, deps=[universe], partitions_def=trading_day_partitions,
    backfill_policy=single_run_backfill,
)
def raw_news(context: dg.AssetExecutionContext, market_data: MarketDataResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Headlines by session (`vfr_ml.raw_news`): news after the 16:00 close or on a closed
    day belongs to the next session, so a session's news is known by its close."""
    return dg.MaterializeResult(metadata=_stored(_load_range(context, market_data, warehouse, loads.load_news)))


@dg.asset(
    group_name="market_data", kinds={"postgres"}, deps=[universe], partitions_def=trading_day_partitions,
    backfill_policy=single_run_backfill,
)
def synthetic_oracle(context: dg.AssetExecutionContext, market_data: MarketDataResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The synthetic market's planted expected forward return per symbol, session and horizon
    (`vfr_ml_oracle.expected_returns`, a schema no feature reads). It measures how close a
    model gets to the best possible forecast; a model above it has seen the future. Only the
    synthetic provider has one: with another provider nothing is stored (`rows` 0). It is
    still materialized, never skipped: training depends on it, and a skipped dependency
    would skip training for every real provider."""
    start, end = partition_dates(context)
    load = loads.load_oracle(warehouse.engine, market_data.provider(end), start, end, log=context.log)
    return dg.MaterializeResult(metadata={"rows": load.rows, "provider": load.provider, "horizons": load.horizons})
