"""Data-quality gates on each loaded range. Blocking checks stop the run before bad data
reaches features and models; the others warn."""

from datetime import date

import dagster as dg
import pandas as pd

from vfr_ml_pipelines.defs.market_data.assets import raw_fundamentals, raw_news, raw_prices
from vfr_ml_pipelines.defs.market_data.partitions import trading_day_partitions
from vfr_ml_pipelines.defs.resources import MarketDataResource, WarehouseResource
from vfr_ml_pipelines.lib.market_data import calendar, price_store, validation
from vfr_ml_pipelines.lib.warehouse import read_frame

MIN_COVERAGE = price_store.MIN_COVERAGE
MAX_FILING_LAG_DAYS = 120


def _range(context: dg.AssetCheckExecutionContext) -> tuple[date, date]:
    keys = context.partition_key_range
    return date.fromisoformat(keys.start), date.fromisoformat(keys.end)


def _sample(frame: pd.DataFrame, n: int = 10) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(n).to_string(index=False) if not frame.empty else "none")


@dg.asset_check(asset=raw_prices, blocking=True, partitions_def=trading_day_partitions)
def raw_prices_are_valid_bars(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Every stored bar is finite and positive (PostgreSQL accepts NaN and Infinity in double
    precision, and NaN passes `close > 0`), with low <= open, close <= high, and within the
    plausible ranges validation enforces (prices <= 1e7, volume <= 1e12)."""
    start, end = _range(context)
    bad = read_frame(
        warehouse.engine,
        """
        SELECT symbol, trade_date, open, high, low, close, volume FROM vfr_ml.raw_prices
        WHERE trade_date BETWEEN :s AND :e AND (
            'NaN' IN (open, high, low, close, adj_close) OR 'Infinity' IN (open, high, low, close, adj_close)
            OR least(open, high, low, close, adj_close) <= 0 OR low > least(open, close) OR high < greatest(open, close)
            OR greatest(open, high, low, close, adj_close) > :max_price OR volume > :max_volume)
        """,
        {"s": start, "e": end, "max_price": validation.MAX_PRICE, "max_volume": validation.MAX_VOLUME},
    )
    return dg.AssetCheckResult(passed=bad.empty, metadata={"invalid_bars": len(bad), "sample": _sample(bad)})


@dg.asset_check(asset=raw_prices, blocking=True, partitions_def=trading_day_partitions)
def raw_prices_cover_the_universe(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """On every session of the range, at least 95 % of the symbols listed that session have
    a bar (a delisted symbol is not listed after its delisting)."""
    start, end = _range(context)
    coverage = price_store.coverage(warehouse.engine, start, end)
    sessions = calendar.trading_days(start, end)
    low = coverage[coverage["share"] < MIN_COVERAGE]
    missing_sessions = sorted(set(sessions) - set(coverage["trade_date"]))
    passed = low.empty and not missing_sessions
    description = None
    if not passed:
        worst = low.nsmallest(1, "share").iloc[0] if not low.empty else None
        description = (
            (f"{len(low)} sessions below {MIN_COVERAGE:.0%} coverage (worst {worst.trade_date}: "
             f"{worst.with_bar}/{worst.members}; without a bar: {worst.without_bar}). " if worst is not None else "")
            + (f"{len(missing_sessions)} sessions have no universe (materialize `universe` for them). " if missing_sessions else "")
            + price_store.COVERAGE_ADVICE
        )
    return dg.AssetCheckResult(
        passed=passed,
        description=description,
        metadata={
            "min_coverage": float(coverage["share"].min()) if not coverage.empty else 0.0,
            "threshold": MIN_COVERAGE,
            "sessions_below_threshold": len(low),
            "sessions_without_universe": len(missing_sessions),
            "sample": _sample(low),
        },
    )


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
    jumps = price_store.unexplained_jumps(warehouse.engine, start, end, confirmed)
    held = price_store.held_out(warehouse.engine, start, end)
    return dg.AssetCheckResult(
        passed=jumps.empty,
        description=None if jumps.empty else (
            f"{len(jumps)} stored bars with an unexplained jump (e.g. {jumps.iloc[0].symbol} {jumps.iloc[0].trade_date}: "
            f"{jumps.iloc[0].reason}). Re-materialize raw_prices for these sessions: the load quarantines them."
        ),
        metadata={
            "unexplained_jumps": len(jumps),
            "sample": _sample(jumps),
            "symbols_held_out": len(held),
            "held_out": _sample(held),
        },
    )


@dg.asset_check(asset=raw_prices, blocking=False, partitions_def=trading_day_partitions)
def raw_prices_are_not_stale(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Warns when a symbol's bar repeats the previous session exactly (same OHLC and volume):
    the source served yesterday's quote again."""
    start, end = _range(context)
    repeats = read_frame(
        warehouse.engine,
        """
        SELECT symbol, trade_date FROM (
            SELECT symbol, trade_date, (open, high, low, close, volume) AS bar,
                   lag((open, high, low, close, volume)) OVER (PARTITION BY symbol ORDER BY trade_date) AS prev_bar
            FROM vfr_ml.raw_prices WHERE trade_date BETWEEN :b AND :e) t
        WHERE trade_date >= :s AND bar = prev_bar
        """,
        {"b": calendar.previous_trading_day(start), "s": start, "e": end},
    )
    return dg.AssetCheckResult(
        passed=repeats.empty, severity=dg.AssetCheckSeverity.WARN,
        metadata={"repeated_bars": len(repeats), "sample": _sample(repeats)},
    )


@dg.asset_check(asset=raw_prices, blocking=False, partitions_def=trading_day_partitions)
def raw_prices_trade_when_they_move(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Warns when a symbol has weeks of zero volume while its close moves (stale data that
    looks alive: a quote carried forward, not trades). The bars stay; its volume features
    over such a window are missing (NaN)."""
    start, end = _range(context)
    runs = price_store.zero_volume_runs(warehouse.engine, start, end)
    described = "; ".join(f"{r.symbol} {r.first_day}..{r.last_day} ({r.sessions} sessions)" for r in runs.head(10).itertuples())
    return dg.AssetCheckResult(
        passed=runs.empty, severity=dg.AssetCheckSeverity.WARN,
        description=None if runs.empty else (
            f"{len(runs)} runs of >= {price_store.MIN_ZERO_VOLUME_SESSIONS} sessions with zero volume while the close "
            f"moves: {described}. Check the vendor's export for these symbols (a halted or illiquid stock, or a stale feed)."
        ),
        metadata={
            "runs": len(runs),
            "symbols": dg.MetadataValue.json(sorted(runs["symbol"].unique().tolist()) if not runs.empty else []),
            "sample": _sample(runs),
        },
    )


@dg.asset_check(asset=raw_fundamentals, blocking=True, partitions_def=trading_day_partitions)
def raw_fundamentals_filed_after_period_end(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Each report was filed after its period ended, within 120 days of it, and not after
    its partition's session (a future filing date would leak into point-in-time joins)."""
    start, end = _range(context)
    bad = read_frame(
        warehouse.engine,
        """
        SELECT symbol, period_end, filing_date FROM vfr_ml.raw_fundamentals
        WHERE filing_date BETWEEN :s AND :e
          AND (filing_date < period_end OR filing_date - period_end > :lag)
        """,
        {"s": start, "e": end, "lag": MAX_FILING_LAG_DAYS},
    )
    return dg.AssetCheckResult(passed=bad.empty, metadata={"bad_reports": len(bad), "sample": _sample(bad)})


@dg.asset_check(asset=raw_news, blocking=True, partitions_def=trading_day_partitions)
def raw_news_belongs_to_its_session(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Every headline stored under a session was published before that session's close and
    after the previous session's close: nothing from the future sits in a partition."""
    start, end = _range(context)
    news = read_frame(
        warehouse.engine,
        "SELECT symbol, trade_date, published_at FROM vfr_ml.raw_news WHERE trade_date BETWEEN :s AND :e",
        {"s": start, "e": end},
    )
    if news.empty:
        return dg.AssetCheckResult(passed=True, metadata={"headlines": 0, "misplaced": 0})
    expected = calendar.sessions_of(news["published_at"])
    misplaced = news[expected.to_numpy() != news["trade_date"].to_numpy()]
    return dg.AssetCheckResult(
        passed=misplaced.empty, metadata={"headlines": len(news), "misplaced": len(misplaced), "sample": _sample(misplaced)}
    )
