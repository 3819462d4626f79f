"""Data-quality gates on each loaded range. Blocking checks stop the run before bad data
reaches features and models; the others warn. The rules and their queries are in
`lib/market_data/quality.py` and `lib/market_data/store.py`.

Checks: on `raw_prices` `raw_prices_are_valid_bars`, `raw_prices_cover_the_universe`,
`raw_prices_have_no_unadjusted_splits` (blocking), `raw_prices_are_not_stale`,
`raw_prices_trade_when_they_move` (warnings); on `raw_fundamentals`
`raw_fundamentals_filed_after_period_end` and on `raw_news` `raw_news_belongs_to_its_session`
(blocking).
"""

from datetime import date

import dagster as dg
import pandas as pd

from vfr_ml_pipelines.defs.market_data.assets import raw_fundamentals, raw_news, raw_prices
from vfr_ml_pipelines.defs.market_data.partitions import trading_day_partitions
from vfr_ml_pipelines.defs.resources import MarketDataResource, WarehouseResource
from vfr_ml_pipelines.lib.market_data import loads, quality


def _range(context: dg.AssetCheckExecutionContext) -> tuple[date, date]:
    keys = context.partition_key_range
    return date.fromisoformat(keys.start), date.fromisoformat(keys.end)


def _metadata_value(value: object) -> object:
    if isinstance(value, pd.DataFrame):  # a sample of the rows at fault
        return dg.MetadataValue.md(value.head(10).to_string(index=False) if not value.empty else "none")
    if isinstance(value, (list, dict)):
        return dg.MetadataValue.json(value)
    return value


def _result(verdict: quality.Verdict, severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=verdict.passed, severity=severity, description=verdict.description,
        metadata={key: _metadata_value(value) for key, value in verdict.metadata.items()},
    )


@dg.asset_check(asset=raw_prices, blocking=True, partitions_def=trading_day_partitions)
def raw_prices_are_valid_bars(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Every stored bar is finite and positive (PostgreSQL accepts NaN and Infinity in double
    precision, and NaN passes `close > 0`), with low <= open, close <= high, and within the
    plausible ranges validation enforces (prices <= 1e7, volume <= 1e12)."""
    return _result(quality.bars_are_valid(warehouse.engine, *_range(context)))


@dg.asset_check(asset=raw_prices, blocking=True, partitions_def=trading_day_partitions)
def raw_prices_cover_the_universe(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """On every session of the range, at least 95 % of the symbols listed that session have
    a bar (a delisted symbol is not listed after its delisting)."""
    return _result(quality.prices_cover_the_universe(warehouse.engine, *_range(context)))


@dg.asset_check(asset=raw_prices, blocking=True, partitions_def=trading_day_partitions)
def raw_prices_have_no_unadjusted_splits(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, market_data: MarketDataResource,
) -> dg.AssetCheckResult:
    """No stored bar moves more than 40 % from the symbol's previous one unless recorded
    events or the vendor's Adj Close explain it (`corporate_actions.judge_jump`). The load
    holds a doubtful symbol out (quarantine) and lets the others go on, so this fails only
    when unexplained jumps reached the table another way: then every return is suspect."""
    start, end = _range(context)
    confirmed = market_data.provider(end).confirmed_moves()
    return _result(quality.no_unexplained_jumps(warehouse.engine, start, end, confirmed))


@dg.asset_check(asset=raw_prices, blocking=False, partitions_def=trading_day_partitions)
def raw_prices_are_not_stale(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Warns when a symbol's bar repeats the previous session exactly (same OHLC and volume):
    the source served yesterday's quote again."""
    return _result(quality.bars_are_not_repeated(warehouse.engine, *_range(context)), dg.AssetCheckSeverity.WARN)


@dg.asset_check(asset=raw_prices, blocking=False, partitions_def=trading_day_partitions)
def raw_prices_trade_when_they_move(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Warns when a symbol has weeks of zero volume while its close moves (stale data that
    looks alive: a quote carried forward, not trades). The bars stay; its volume features
    over such a window are missing (NaN)."""
    return _result(quality.no_zero_volume_moves(warehouse.engine, *_range(context)), dg.AssetCheckSeverity.WARN)


@dg.asset_check(asset=raw_fundamentals, blocking=True, partitions_def=trading_day_partitions)
def raw_fundamentals_filed_after_period_end(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Each report was filed after its period ended, within 120 days of it, and not after
    its partition's session (a future filing date would leak into point-in-time joins)."""
    start, end = _range(context)
    return _result(quality.filings_follow_period_end(warehouse.engine, loads.filings_start(start), end))


@dg.asset_check(asset=raw_news, blocking=True, partitions_def=trading_day_partitions)
def raw_news_belongs_to_its_session(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Every headline stored under a session was published before that session's close and
    after the previous session's close: nothing from the future sits in a partition."""
    return _result(quality.news_belongs_to_its_session(warehouse.engine, *_range(context)))
