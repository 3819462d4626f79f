"""The verdicts of the market-data checks on one range: which stored rows break a rule, and
what a reader is told. The queries are in `store.py`; the Dagster checks
(defs/market_data/checks.py) decide what blocks a run and what only warns.

A verdict's metadata holds plain values, lists and dicts, and frames (samples of the rows
at fault).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.market_data import calendar, price_screen, store, validation

# share of a session's listed symbols that must have a stored bar
MIN_COVERAGE = 0.95
# a report filed more than this long after its period ended is misdated
MAX_FILING_LAG_DAYS = 120
# Stale data that looks alive: this many consecutive stored bars with zero volume while the
# close changes (two weeks) is a vendor carrying a quote forward, not trading. The bars are
# kept (an illiquid stock's quote may be real); volume features over such a window are
# missing (NaN) and price features follow the quote: README "Market data".
MIN_ZERO_VOLUME_SESSIONS = 10
COVERAGE_ADVICE = (
    "Symbols are listed without a bar. If a symbol stopped trading (acquired, merged, delisted), "
    "give it a delisted_on date in universe.csv, or, without universe.csv, end its price file at its last "
    "real session (a file that ends before the rest of the export is a delisting). If its bars were "
    "quarantined, the reasons are in vfr_ml.quarantine (dataset 'prices'); a symbol held out for an "
    "unexplained jump comes back once the jump is explained (add the split to its Split Ratio column) and "
    "the range is re-materialized. If the export itself is late, wait for it."
)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    metadata: dict = field(default_factory=dict)
    description: str | None = None


def bars_are_valid(engine: Engine, start: date, end: date) -> Verdict:
    """Every stored bar is finite, positive, consistent (low <= open, close <= high) and
    within the plausible ranges validation enforces."""
    bad = store.invalid_bars(engine, start, end, max_price=validation.MAX_PRICE, max_volume=validation.MAX_VOLUME)
    return Verdict(bad.empty, {"invalid_bars": len(bad), "sample": bad})


def _coverage_description(low: pd.DataFrame, missing_sessions: list[date]) -> str:
    worst = low.nsmallest(1, "share").iloc[0] if not low.empty else None
    return (
        (f"{len(low)} sessions below {MIN_COVERAGE:.0%} coverage (worst {worst.trade_date}: "
         f"{worst.with_bar}/{worst.members}; without a bar: {worst.without_bar}). " if worst is not None else "")
        + (f"{len(missing_sessions)} sessions have no universe (materialize `universe` for them). " if missing_sessions else "")
        + COVERAGE_ADVICE
    )


def prices_cover_the_universe(engine: Engine, start: date, end: date) -> Verdict:
    """On every session, at least MIN_COVERAGE of the symbols listed that session have a bar."""
    coverage = store.coverage(engine, start, end)
    low = coverage[coverage["share"] < MIN_COVERAGE]
    missing_sessions = sorted(set(calendar.trading_days(start, end)) - set(coverage["trade_date"]))
    passed = low.empty and not missing_sessions
    return Verdict(
        passed,
        {
            "min_coverage": float(coverage["share"].min()) if not coverage.empty else 0.0,
            "threshold": MIN_COVERAGE,
            "sessions_below_threshold": len(low),
            "sessions_without_universe": len(missing_sessions),
            "sample": low,
        },
        None if passed else _coverage_description(low, missing_sessions),
    )


def no_unexplained_jumps(engine: Engine, start: date, end: date, confirmed: set[tuple[str, date]]) -> Verdict:
    """No stored bar moves from the symbol's previous one in a way `judge_jump` doubts,
    unless the provider confirmed the move."""
    jumps = price_screen.unexplained_jumps(engine, start, end, confirmed)
    held = store.held_out(engine, start, end)
    return Verdict(
        jumps.empty,
        {"unexplained_jumps": len(jumps), "sample": jumps, "symbols_held_out": len(held), "held_out": held},
        None if jumps.empty else (
            f"{len(jumps)} stored bars with an unexplained jump (e.g. {jumps.iloc[0].symbol} {jumps.iloc[0].trade_date}: "
            f"{jumps.iloc[0].reason}). Re-materialize raw_prices for these sessions: the load quarantines them."
        ),
    )


def bars_are_not_repeated(engine: Engine, start: date, end: date) -> Verdict:
    """No bar repeats the symbol's previous session exactly (same OHLC and volume)."""
    repeats = store.repeated_bars(engine, calendar.previous_trading_day(start), start, end)
    return Verdict(repeats.empty, {"repeated_bars": len(repeats), "sample": repeats})


def no_zero_volume_moves(engine: Engine, start: date, end: date) -> Verdict:
    """No run of MIN_ZERO_VOLUME_SESSIONS bars with zero volume while the close moves."""
    runs = store.zero_volume_runs(engine, start, end, MIN_ZERO_VOLUME_SESSIONS)
    described = "; ".join(f"{r.symbol} {r.first_day}..{r.last_day} ({r.sessions} sessions)" for r in runs.head(10).itertuples())
    return Verdict(
        runs.empty,
        {
            "runs": len(runs),
            "symbols": sorted(runs["symbol"].unique().tolist()) if not runs.empty else [],
            "sample": runs,
        },
        None if runs.empty else (
            f"{len(runs)} runs of >= {MIN_ZERO_VOLUME_SESSIONS} sessions with zero volume while the close "
            f"moves: {described}. Check the vendor's export for these symbols (a halted or illiquid stock, or a stale feed)."
        ),
    )


def filings_follow_period_end(engine: Engine, start: date, end: date) -> Verdict:
    """Each report was filed after its period ended and within MAX_FILING_LAG_DAYS of it."""
    bad = store.misdated_filings(engine, start, end, MAX_FILING_LAG_DAYS)
    return Verdict(bad.empty, {"bad_reports": len(bad), "sample": bad})


def news_belongs_to_its_session(engine: Engine, start: date, end: date) -> Verdict:
    """Every headline stored under a session was published after the previous session's
    close and before its own."""
    news = store.stored_news(engine, start, end)
    if news.empty:
        return Verdict(True, {"headlines": 0, "misplaced": 0})
    expected = calendar.sessions_of(news["published_at"])
    misplaced = news[expected.to_numpy() != news["trade_date"].to_numpy()]
    return Verdict(misplaced.empty, {"headlines": len(news), "misplaced": len(misplaced), "sample": misplaced})
