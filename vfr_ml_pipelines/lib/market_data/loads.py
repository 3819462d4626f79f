"""What each market-data asset does to one range of sessions: ask the provider, validate,
screen, store the clean rows and quarantine the others (docs/providers.md).

A symbol whose whole source is refused (an empty file, a wrong header) joins the
quarantine and is logged as an error naming it; the other symbols are stored and the
coverage check decides if that is enough. `log` is any `logging.Logger` (the Dagster
context's in a run).

Progress: the provider is asked for about a tenth of the symbols at a time, so a long load
(a first catch-up from FMP, thousands of CSV files) logs how far it is with an ETA
(`lib/progress.py`: a line per tenth or per 10 s once it has run 10 s), and every load ends
with one line of what was delivered and one of what was stored, with the time each took.
These go to the `vfr_ml_pipelines.lib.market_data.loads` logger, which the local instance
hands to the run's log.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.market_data import calendar, price_screen, store, validation
from vfr_ml_pipelines.lib.market_data.provider import MarketDataProvider, ProviderLoad
from vfr_ml_pipelines.lib.market_data.schema import FUNDAMENTAL_COLUMNS, PRICE_COLUMNS
from vfr_ml_pipelines.lib.market_data.rejections import ValidationResult, empty_rejected
from vfr_ml_pipelines.lib.progress import Progress, duration

NEWS_STORED_COLUMNS = ["trade_date", "symbol", "published_at", "headline", "headline_md5", "source", "url"]
ORACLE_STORED_COLUMNS = ["horizon", "trade_date", "symbol", "expected_return"]
BATCHES_PER_LOAD = 10  # the provider is asked for a tenth of the symbols at a time

progress_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RangeLoad:
    """What one load of a range stored (`result.clean`) and quarantined (`result.rejected`,
    refused sources included)."""

    provider: str
    result: ValidationResult
    refused: dict[str, str]  # symbol -> why its whole source was refused
    symbols: int = 0  # the symbols asked for (universe: the symbols listed in the range)
    sessions: int = 0
    sectors: int = 0
    held_out: dict[str, str] = field(default_factory=dict)  # symbol -> first day held out for a jump

    def quarantined_by_field(self) -> dict[str, int]:
        """The ten fields most often behind a quarantined row, with their counts."""
        rejected = self.result.rejected
        return rejected["field"].value_counts().head(10).to_dict() if not rejected.empty else {}


@dataclass(frozen=True)
class OracleLoad:
    """What the oracle's load stored: rows and horizons (none for a provider without an oracle)."""

    provider: str
    rows: int
    horizons: list[str]


def _with_refused_sources(
    log: logging.Logger, dataset: str, load: ProviderLoad, result: ValidationResult,
) -> tuple[ValidationResult, dict[str, str]]:
    refused = {str(r.symbol): str(r.reason) for r in load.rejected.itertuples(index=False)}
    for symbol, reason in refused.items():
        log.error(f"{dataset}: symbol {symbol} refused as a whole, its rows are not loaded: {reason}")
    rejected = pd.concat([f for f in (result.rejected, load.rejected) if not f.empty] or [result.rejected], ignore_index=True)
    return ValidationResult(result.clean, rejected, result.duplicates_dropped), refused


def _validated(
    engine: Engine, provider: MarketDataProvider, dataset: str, start: date, end: date, today: date,
    *, universe_start: date | None = None,
) -> tuple[list[str], ProviderLoad, ValidationResult]:
    """The universe of [`universe_start` or `start`, `end`], what the provider delivered of
    `dataset` for it over [`start`, `end`], and that checked by validation."""
    symbols = store.universe(engine, universe_start or start, end)
    fetch, validate = {
        "prices": (provider.load_prices, validation.validate_prices),
        "fundamentals": (provider.load_fundamentals, validation.validate_fundamentals),
        "news": (provider.load_news, validation.validate_news),
    }[dataset]
    load = fetch_in_batches(fetch, dataset, provider.name, symbols, start, end)
    result = validate(load.frame, start=start, end=end, today=today, known_symbols=set(symbols), source=provider.name)
    return symbols, load, result


def fetch_in_batches(
    fetch: Callable[[list[str], date, date], ProviderLoad], dataset: str, provider: str, symbols: list[str],
    start: date, end: date, *, clock: Callable[[], float] = time.monotonic,
) -> ProviderLoad:
    """`fetch(symbols, start, end)` a tenth of the symbols at a time, with progress lines: the
    same rows and refusals as one call, since every provider serves each symbol on its own."""
    sessions = len(calendar.trading_days(start, end)) if start <= end else 0
    progress = Progress(progress_log, f"{dataset} from {provider}", len(symbols), "symbols", clock=clock)
    size = max(1, math.ceil(len(symbols) / BATCHES_PER_LOAD))
    frames, refusals, rows = [], [], 0
    for first in range(0, len(symbols), size):
        batch = fetch(symbols[first:first + size], start, end)
        frames.append(batch.frame)
        refusals.append(batch.rejected)
        rows += len(batch.frame)
        progress.advance(len(symbols[first:first + size]), f"{rows:,} rows so far")
    if not frames:  # no symbol listed in the range: the provider's own empty answer
        nothing = fetch(symbols, start, end)
        frames, refusals = [nothing.frame], [nothing.rejected]
    filled = [f for f in frames if not f.empty]
    frame = pd.concat(filled, ignore_index=True) if filled else frames[0]
    refused = [r for r in refusals if not r.empty]
    rejected = pd.concat(refused, ignore_index=True) if refused else empty_rejected()
    progress_log.info(
        f"{dataset}: {provider} delivered {rows:,} rows for {len(symbols):,} symbols x {sessions:,} sessions "
        f"({start} to {end}) in {duration(progress.elapsed)}"
        + (f"; {len(rejected)} symbol{'' if len(rejected) == 1 else 's'} refused as a whole" if len(rejected) else "")
    )
    return ProviderLoad(frame, rejected)


def _store_range(
    engine: Engine, log: logging.Logger, *, dataset: str, table: str, date_column: str, provider: str,
    start: date, end: date, result: ValidationResult, run_id: str | None,
) -> None:
    started = time.monotonic()
    store.write_range(engine, table, date_column, result.clean, start, end,
                      dataset=dataset, provider=provider, rejected=result.rejected, run_id=run_id)
    progress_log.info(
        f"{dataset}: stored {len(result.clean):,} rows and quarantined {len(result.rejected):,} "
        f"for {start} to {end} in {duration(time.monotonic() - started)}"
    )
    if not result.rejected.empty:
        log.warning(
            f"{dataset}: {len(result.rejected)} rows quarantined, e.g. "
            + "; ".join(f"{r.symbol} {r.day} {r.field}: {r.reason}" for r in result.rejected.head(3).itertuples())
        )


def _universe_by_session(master: pd.DataFrame, sessions: list[date], provider: str) -> pd.DataFrame:
    """One row per session and symbol listed that session (from its listing day, until the
    first session it no longer trades)."""
    rows = [
        (day, m.symbol, m.sector)
        for m in master.itertuples(index=False)
        for day in sessions
        if m.listed_on <= day and (pd.isna(m.delisted_on) or day < m.delisted_on)
    ]
    return pd.DataFrame(rows, columns=["trade_date", "symbol", "sector"]).assign(source=provider)


def load_universe(
    engine: Engine, provider: MarketDataProvider, start: date, end: date, *, run_id: str | None, log: logging.Logger,
) -> RangeLoad:
    """The symbol master as of `end` and the universe of each session of [start, end]."""
    started = time.monotonic()
    load = provider.load_universe(end)
    result, refused = _with_refused_sources(log, "universe", load, validation.validate_universe(load.frame, source=provider.name))
    master = result.clean.assign(source=provider.name)
    sessions = calendar.trading_days(start, end)
    by_session = _universe_by_session(master, sessions, provider.name)
    store.write_universe(engine, master, by_session, start, end, provider=provider.name, rejected=result.rejected, run_id=run_id)
    listed = int(by_session["symbol"].nunique()) if not by_session.empty else 0
    progress_log.info(
        f"universe: {provider.name} lists {listed:,} symbols "
        f"over {len(sessions):,} sessions ({start} to {end}); {len(by_session):,} (session, symbol) rows stored "
        f"in {duration(time.monotonic() - started)}"
    )
    return RangeLoad(
        provider.name, result, refused, sessions=len(sessions), sectors=int(master["sector"].nunique()), symbols=listed,
    )


def load_prices(
    engine: Engine, provider: MarketDataProvider, start: date, end: date, *, today: date, run_id: str | None,
    log: logging.Logger,
) -> RangeLoad:
    """The bars of the range's universe; bars of unlisted sessions and unexplained jumps are
    held out (`price_screen`)."""
    symbols, load, result = _validated(engine, provider, "prices", start, end, today)
    result = price_screen.screen_loaded_prices(engine, result, start, end, provider.confirmed_moves())
    result, refused = _with_refused_sources(log, "prices", load, result)
    result = ValidationResult(result.clean[list(PRICE_COLUMNS)].assign(source=provider.name), result.rejected)
    held = price_screen.held_out_symbols(result.rejected)
    _store_range(engine, log, dataset="prices", table="vfr_ml.raw_prices", date_column="trade_date",
                 provider=provider.name, start=start, end=end, result=result, run_id=run_id)
    return RangeLoad(provider.name, result, refused, symbols=len(symbols), held_out=held)


# A report filed before the history starts is public on its first session. Loading only the
# reports filed within the history left trailing-twelve-month ratios missing for about its
# first year (a fifth of the default run's sessions): the first partition also stores the
# reports filed in the year before it (README, "Issue 13's second study").
PRIOR_FILINGS_DAYS = 366


def filings_start(start: date) -> date:
    """The first filing day a fundamentals load from session `start` covers: a year earlier
    for the history's first session (`PRIOR_FILINGS_DAYS`), `start` itself for any other."""
    return start - timedelta(days=PRIOR_FILINGS_DAYS) if start <= calendar.first_history_session() else start


def load_fundamentals(
    engine: Engine, provider: MarketDataProvider, start: date, end: date, *, today: date, run_id: str | None,
    log: logging.Logger,
) -> RangeLoad:
    """The reports of the range's universe filed on its sessions, and, for a range from the
    history's first session, those filed in the year before it (`filings_start`); a re-run
    replaces the same filing days."""
    filed_from = filings_start(start)
    symbols, load, result = _validated(engine, provider, "fundamentals", filed_from, end, today, universe_start=start)
    result, refused = _with_refused_sources(log, "fundamentals", load, result)
    result = ValidationResult(result.clean[list(FUNDAMENTAL_COLUMNS)].assign(source=provider.name), result.rejected)
    _store_range(engine, log, dataset="fundamentals", table="vfr_ml.raw_fundamentals", date_column="filing_date",
                 provider=provider.name, start=filed_from, end=end, result=result, run_id=run_id)
    return RangeLoad(provider.name, result, refused, symbols=len(symbols))


def _news_rows(clean: pd.DataFrame, provider: str) -> pd.DataFrame:
    """Validated headlines under the session they belong to, one row per (session, symbol,
    time, headline)."""
    clean = clean.copy()
    clean["trade_date"] = calendar.sessions_of(clean["published_at"]) if not clean.empty else pd.Series(dtype=object)
    clean["headline_md5"] = [hashlib.md5(h.encode()).hexdigest() for h in clean["headline"]]
    clean = clean.drop_duplicates(["trade_date", "symbol", "published_at", "headline_md5"])
    return clean[NEWS_STORED_COLUMNS].assign(provider=provider)


def load_news(
    engine: Engine, provider: MarketDataProvider, start: date, end: date, *, today: date, run_id: str | None,
    log: logging.Logger,
) -> RangeLoad:
    """The headlines of the range's universe, by the session they belong to."""
    symbols, load, result = _validated(engine, provider, "news", start, end, today)
    checked = ValidationResult(_news_rows(result.clean, provider.name), result.rejected)
    result, refused = _with_refused_sources(log, "news", load, checked)
    _store_range(engine, log, dataset="news", table="vfr_ml.raw_news", date_column="trade_date",
                 provider=provider.name, start=start, end=end, result=result, run_id=run_id)
    return RangeLoad(provider.name, result, refused, symbols=len(symbols))


def load_oracle(engine: Engine, provider: MarketDataProvider, start: date, end: date, *, log: logging.Logger) -> OracleLoad:
    """The planted expected returns of the range's universe; nothing (0 rows) for a provider
    without an oracle."""
    if not hasattr(provider, "oracle"):
        log.info(f"provider {provider.name!r} has no oracle; nothing stored")
        return OracleLoad(provider.name, 0, [])
    started = time.monotonic()
    oracle = provider.oracle(store.universe(engine, start, end), start, end)[ORACLE_STORED_COLUMNS]
    store.write_oracle(engine, oracle, start, end)
    progress_log.info(f"oracle: stored {len(oracle):,} expected returns for {start} to {end} "
                      f"in {duration(time.monotonic() - started)}")
    return OracleLoad(provider.name, len(oracle), sorted(oracle["horizon"].unique().tolist()))
