import hashlib
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from vfr_ml_pipelines.defs.market_data.partitions import single_run_backfill, trading_day_partitions
from vfr_ml_pipelines.defs.resources import MarketDataResource, WarehouseResource
from vfr_ml_pipelines.lib.market_data import calendar, price_store, validation
from vfr_ml_pipelines.lib.market_data.provider import ProviderLoad
from vfr_ml_pipelines.lib.market_data.schema import FUNDAMENTAL_COLUMNS, PRICE_COLUMNS
from vfr_ml_pipelines.lib.warehouse import read_frame, upsert_frame
from vfr_ml_pipelines.lib.warehouse.partitions import replace_date_range, replace_quarantine

# Prices must be loaded by the morning after each session (the evening run loads them).
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=30), warn_window=timedelta(hours=26))


def partition_dates(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """First and last session of the run's partition (range, for single-run backfills)."""
    keys = context.partition_key_range
    return date.fromisoformat(keys.start), date.fromisoformat(keys.end)


def members(warehouse: WarehouseResource, start: date, end: date) -> list[str]:
    frame = read_frame(
        warehouse.engine,
        "SELECT DISTINCT symbol FROM vfr_ml.universe_membership WHERE trade_date BETWEEN :s AND :e ORDER BY symbol",
        {"s": start, "e": end},
    )
    return frame["symbol"].tolist()


def _store(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, *, dataset: str, table: str, date_column: str,
    provider: str, start: date, end: date, result: validation.ValidationResult,
) -> None:
    with warehouse.engine.begin() as conn:
        replace_date_range(conn, table, result.clean, date_column, start, end)
        replace_quarantine(conn, dataset, provider, start, end, result.rejected, context.run_id)
    if not result.rejected.empty:
        context.log.warning(
            f"{dataset}: {len(result.rejected)} rows quarantined, e.g. "
            + "; ".join(f"{r.symbol} {r.day} {r.field}: {r.reason}" for r in result.rejected.head(3).itertuples())
        )


def _rejections(result: validation.ValidationResult) -> dict:
    reasons = result.rejected["field"].value_counts().head(10).to_dict() if not result.rejected.empty else {}
    return {"rows": len(result.clean), "quarantined": len(result.rejected), "quarantined_by_field": dg.MetadataValue.json(reasons)}


def _with_refused_files(
    context: dg.AssetExecutionContext, dataset: str, load: ProviderLoad, result: validation.ValidationResult,
) -> tuple[validation.ValidationResult, dict]:
    """The load's refused sources (one row per symbol, `load.rejected`) join the
    quarantine; each is logged as an error naming the symbol and why, and listed in the
    metadata. The other symbols are stored: the coverage check decides if that is enough."""
    refused = {str(r.symbol): str(r.reason) for r in load.rejected.itertuples(index=False)}
    for symbol, reason in refused.items():
        context.log.error(f"{dataset}: symbol {symbol} refused as a whole, its rows are not loaded: {reason}")
    rejected = pd.concat([f for f in (result.rejected, load.rejected) if not f.empty] or [result.rejected], ignore_index=True)
    metadata = {"symbols_refused": dg.MetadataValue.json(refused)}
    return validation.ValidationResult(result.clean, rejected, result.duplicates_dropped), metadata


@dg.asset(
    group_name="market_data", kinds={"postgres"}, partitions_def=trading_day_partitions,
    backfill_policy=single_run_backfill,
)
def universe(context: dg.AssetExecutionContext, market_data: MarketDataResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The symbols covered on each session: the symbol master `vfr_ml.universe` (sector,
    listing and delisting dates) and daily membership `vfr_ml.universe_membership`."""
    start, end = partition_dates(context)
    provider = market_data.provider(end)
    load = provider.load_universe(end)
    result, refused = _with_refused_files(context, "universe", load, validation.validate_universe(load.frame, source=provider.name))
    master = result.clean.assign(source=provider.name)
    sessions = calendar.trading_days(start, end)
    rows = [
        (day, m.symbol, m.sector)
        for m in master.itertuples(index=False)
        for day in sessions
        if m.listed_on <= day and (pd.isna(m.delisted_on) or day < m.delisted_on)
    ]
    membership = pd.DataFrame(rows, columns=["trade_date", "symbol", "sector"]).assign(source=provider.name)
    with warehouse.engine.begin() as conn:
        upsert_frame(conn, "vfr_ml.universe", master[["symbol", "name", "sector", "listed_on", "delisted_on", "source"]], ["symbol"])
        replace_date_range(conn, "vfr_ml.universe_membership", membership, "trade_date", start, end)
        replace_quarantine(conn, "universe", provider.name, start, end, result.rejected, context.run_id)
    return dg.MaterializeResult(
        metadata={
            "sessions": len(sessions),
            "symbols": int(membership["symbol"].nunique()) if not membership.empty else 0,
            "sectors": int(master["sector"].nunique()),
            "provider": provider.name,
            "quarantined": len(result.rejected),
            **refused,
        }
    )


@dg.asset(
    group_name="market_data", kinds={"postgres"}, deps=[universe], partitions_def=trading_day_partitions,
    backfill_policy=single_run_backfill, freshness_policy=DAILY_FRESHNESS,
)
def raw_prices(context: dg.AssetExecutionContext, market_data: MarketDataResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Daily OHLCV bars of the session's universe (`vfr_ml.raw_prices`): raw traded prices
    plus split and dividend events on their ex-dates (adjusted series are derived from
    these). Rows failing validation, bars of sessions where their symbol is not listed, and
    a symbol's bars from an unexplained jump on (a possible unadjusted split) go to
    `vfr_ml.quarantine` with the reason; the other symbols go on."""
    start, end = partition_dates(context)
    provider = market_data.provider(end)
    symbols = members(warehouse, start, end)
    load = provider.load_prices(symbols, start, end)
    result = validation.validate_prices(
        load.frame, start=start, end=end, today=market_data.today(), known_symbols=set(symbols), source=provider.name
    )
    result = price_store.screen_loaded_prices(warehouse.engine, result, start, end, provider.confirmed_moves())
    result, refused = _with_refused_files(context, "prices", load, result)
    result = validation.ValidationResult(result.clean[list(PRICE_COLUMNS)].assign(source=provider.name), result.rejected)
    held = price_store.held_out_symbols(result.rejected)
    _store(context, warehouse, dataset="prices", table="vfr_ml.raw_prices", date_column="trade_date",
           provider=provider.name, start=start, end=end, result=result)
    return dg.MaterializeResult(
        metadata={
            **_rejections(result), **refused, "symbols": len(symbols), "first_day": str(start), "last_day": str(end),
            "symbols_held_out_for_unexplained_jumps": dg.MetadataValue.json(held),
        }
    )


@dg.asset(
    group_name="market_data", kinds={"postgres"}, deps=[universe], partitions_def=trading_day_partitions,
    backfill_policy=single_run_backfill,
)
def raw_fundamentals(context: dg.AssetExecutionContext, market_data: MarketDataResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Quarterly reports by filing day (`vfr_ml.raw_fundamentals`): the partition of a report
    is the session it was filed on, the only day from which a model may use it."""
    start, end = partition_dates(context)
    provider = market_data.provider(end)
    symbols = members(warehouse, start, end)
    load = provider.load_fundamentals(symbols, start, end)
    result = validation.validate_fundamentals(
        load.frame, start=start, end=end, today=market_data.today(), known_symbols=set(symbols), source=provider.name,
    )
    result, refused = _with_refused_files(context, "fundamentals", load, result)
    result = validation.ValidationResult(result.clean[list(FUNDAMENTAL_COLUMNS)].assign(source=provider.name), result.rejected)
    _store(context, warehouse, dataset="fundamentals", table="vfr_ml.raw_fundamentals", date_column="filing_date",
           provider=provider.name, start=start, end=end, result=result)
    return dg.MaterializeResult(metadata={**_rejections(result), **refused})


@dg.asset(
    group_name="market_data", kinds={"postgres"}, deps=[universe], partitions_def=trading_day_partitions,
    backfill_policy=single_run_backfill,
)
def raw_news(context: dg.AssetExecutionContext, market_data: MarketDataResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Headlines by session (`vfr_ml.raw_news`): news after the 16:00 close or on a closed
    day belongs to the next session, so a session's news is known by its close."""
    start, end = partition_dates(context)
    provider = market_data.provider(end)
    symbols = members(warehouse, start, end)
    load = provider.load_news(symbols, start, end)
    result = validation.validate_news(
        load.frame, start=start, end=end, today=market_data.today(), known_symbols=set(symbols), source=provider.name,
    )
    clean = result.clean.copy()
    clean["trade_date"] = calendar.sessions_of(clean["published_at"]) if not clean.empty else pd.Series(dtype=object)
    clean["headline_md5"] = [hashlib.md5(h.encode()).hexdigest() for h in clean["headline"]]
    clean = clean.drop_duplicates(["trade_date", "symbol", "published_at", "headline_md5"])
    clean = clean[["trade_date", "symbol", "published_at", "headline", "headline_md5", "source", "url"]].assign(provider=provider.name)
    result, refused = _with_refused_files(context, "news", load, validation.ValidationResult(clean, result.rejected))
    _store(context, warehouse, dataset="news", table="vfr_ml.raw_news", date_column="trade_date",
           provider=provider.name, start=start, end=end, result=result)
    return dg.MaterializeResult(metadata={**_rejections(result), **refused})


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
    provider = market_data.provider(end)
    if not hasattr(provider, "oracle"):
        context.log.info(f"provider {provider.name!r} has no oracle; nothing stored")
        return dg.MaterializeResult(metadata={"rows": 0, "provider": provider.name, "horizons": []})
    symbols = members(warehouse, start, end)
    oracle = provider.oracle(symbols, start, end)[["horizon", "trade_date", "symbol", "expected_return"]]
    with warehouse.engine.begin() as conn:
        replace_date_range(conn, "vfr_ml_oracle.expected_returns", oracle, "trade_date", start, end)
    return dg.MaterializeResult(
        metadata={"rows": len(oracle), "provider": provider.name, "horizons": sorted(oracle["horizon"].unique().tolist())}
    )
