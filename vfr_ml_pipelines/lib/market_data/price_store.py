"""What a price load reads back from the warehouse to judge the new bars, and the quality
queries of the raw-price checks.

A load of sessions [start, end] keeps a validated bar only if its symbol is listed that
session (`vfr_ml.universe_membership`) and its move from the symbol's previous kept bar is
explained (`corporate_actions.screen_jumps`). Everything else goes to `vfr_ml.quarantine`
with the reason, so a doubtful symbol is held out while the others go on.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd

from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.corporate_actions import DOUBT_PREFIX, Bar, judge_jump, screen_jumps
from vfr_ml_pipelines.lib.market_data.validation import REJECTED_COLUMNS, ValidationResult
from vfr_ml_pipelines.lib.warehouse import read_frame

# share of a session's listed symbols that must have a stored bar
MIN_COVERAGE = 0.95
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


def membership(engine, start: date, end: date) -> pd.DataFrame:
    return read_frame(
        engine,
        "SELECT trade_date, symbol FROM vfr_ml.universe_membership WHERE trade_date BETWEEN :s AND :e",
        {"s": start, "e": end},
    )


def last_bars_before(engine, day: date) -> pd.DataFrame:
    """The last stored bar of each symbol before `day` (the reference of the range's first bar)."""
    return read_frame(
        engine,
        """
        SELECT DISTINCT ON (symbol) symbol, trade_date, close, adj_close, volume
        FROM vfr_ml.raw_prices WHERE trade_date < :d ORDER BY symbol, trade_date DESC
        """,
        {"d": day},
    )


def open_doubts(engine, day: date) -> dict[str, tuple[date, str]]:
    """Symbols held out by an earlier load for an unexplained jump before `day` that no later
    stored bar resolved: symbol -> (day of the jump, its reason)."""
    frame = read_frame(
        engine,
        """
        SELECT DISTINCT ON (q.symbol) q.symbol, q.day, q.reason FROM vfr_ml.quarantine q
        WHERE q.dataset = 'prices' AND q.reason LIKE :prefix AND q.day < :d
          AND NOT EXISTS (SELECT 1 FROM vfr_ml.raw_prices p
                          WHERE p.symbol = q.symbol AND p.trade_date > q.day AND p.trade_date < :d)
        ORDER BY q.symbol, q.day
        """,
        {"prefix": DOUBT_PREFIX + "%", "d": day},
    )
    return {r.symbol: (r.day, r.reason) for r in frame.itertuples(index=False)}


def _rejections(rows: pd.DataFrame, field: str) -> pd.DataFrame:
    if rows.empty:
        return pd.DataFrame(columns=list(REJECTED_COLUMNS))
    raw = rows.drop(columns=["reason"])
    return pd.DataFrame(
        {
            "dataset": "prices",
            "symbol": rows["symbol"].to_numpy(),
            "day": rows["trade_date"].to_numpy(),
            "field": field,
            "reason": rows["reason"].to_numpy(),
            "raw": [json.loads(r.to_json(date_format="iso")) for _, r in raw.iterrows()],
        },
        columns=list(REJECTED_COLUMNS),
    ).astype(object)


def screen_loaded_prices(
    engine, result: ValidationResult, start: date, end: date, confirmed: set[tuple[str, date]] = frozenset(),
) -> ValidationResult:
    """The validated bars of [start, end] that may be stored: bars on sessions where their
    symbol is not listed (before its listing, after its delisting, an earlier company's use
    of the ticker) and bars in doubt for an unexplained jump are moved to `rejected`."""
    clean = result.clean
    listed = membership(engine, start, end)
    keys = pd.MultiIndex.from_frame(listed[["symbol", "trade_date"]]) if not listed.empty else None
    member = (
        pd.MultiIndex.from_frame(clean[["symbol", "trade_date"]]).isin(keys) if keys is not None and not clean.empty
        else pd.Series(False, index=clean.index).to_numpy()
    )
    outside = clean[~member].assign(
        reason=lambda f: [f"{s} is not listed on {d} (universe_membership); the bar belongs to no listing of the ticker"
                          for s, d in zip(f["symbol"], f["trade_date"])]
    )
    kept, held = screen_jumps(clean[member], last_bars_before(engine, start), open_doubts(engine, start), confirmed)
    rejected = pd.concat(
        [frame for frame in (result.rejected, _rejections(outside, "trade_date"), _rejections(held, "close"))
         if not frame.empty] or [result.rejected],
        ignore_index=True,
    )
    return ValidationResult(kept, rejected, result.duplicates_dropped)


def unexplained_jumps(engine, start: date, end: date, confirmed: set[tuple[str, date]] = frozenset()) -> pd.DataFrame:
    """Stored bars of [start, end] whose move from the symbol's previous stored bar is in
    doubt by the same rule as the load's (`judge_jump`): none unless data reached the table
    another way. Columns symbol, trade_date, reason."""
    stored = read_frame(
        engine,
        """
        SELECT symbol, trade_date, close, adj_close, volume, dividend, split_ratio FROM vfr_ml.raw_prices
        WHERE trade_date BETWEEN :b AND :e ORDER BY symbol, trade_date
        """,
        {"b": calendar.previous_trading_day(start), "e": end},
    )
    found = []
    for symbol, rows in stored.groupby("symbol", sort=False):
        bars = [Bar(r.close, r.adj_close, r.volume, r.dividend, r.split_ratio) for r in rows.itertuples(index=False)]
        for day, before, bar in zip(rows["trade_date"].iloc[1:], bars, bars[1:]):
            why = judge_jump(before, bar) if day >= start and (symbol, day) not in confirmed else None
            if why:
                found.append((symbol, day, why))
    return pd.DataFrame(found, columns=["symbol", "trade_date", "reason"])


def held_out(engine, start: date, end: date) -> pd.DataFrame:
    """Symbols held out for an unexplained jump in [start, end]: symbol, first day, sessions, reason."""
    return read_frame(
        engine,
        """
        SELECT symbol, min(day) AS first_day, count(*) AS sessions, (array_agg(reason ORDER BY day))[1] AS reason FROM vfr_ml.quarantine
        WHERE dataset = 'prices' AND reason LIKE :prefix AND day BETWEEN :s AND :e GROUP BY symbol ORDER BY symbol
        """,
        {"prefix": DOUBT_PREFIX + "%", "s": start, "e": end},
    )


def coverage(engine, start: date, end: date) -> pd.DataFrame:
    """Per session: listed symbols, those with a stored bar, and the share."""
    frame = read_frame(
        engine,
        """
        SELECT m.trade_date, count(*) AS members, count(p.symbol) AS with_bar,
               array_to_string((array_agg(m.symbol ORDER BY m.symbol) FILTER (WHERE p.symbol IS NULL))[1:10], ' ') AS without_bar
        FROM vfr_ml.universe_membership m
        LEFT JOIN vfr_ml.raw_prices p ON p.symbol = m.symbol AND p.trade_date = m.trade_date
        WHERE m.trade_date BETWEEN :s AND :e GROUP BY m.trade_date ORDER BY m.trade_date
        """,
        {"s": start, "e": end},
    )
    frame["share"] = frame["with_bar"] / frame["members"]
    return frame


def held_out_symbols(rejected: pd.DataFrame) -> dict[str, str]:
    """symbol -> first day held out for an unexplained jump, from a load's rejected rows."""
    if rejected.empty:
        return {}
    doubts = rejected[rejected["reason"].astype(str).str.startswith(DOUBT_PREFIX)]
    return {s: str(min(days)) for s, days in doubts.groupby("symbol")["day"]}


def zero_volume_runs(engine, start: date, end: date, min_sessions: int = MIN_ZERO_VOLUME_SESSIONS) -> pd.DataFrame:
    """Runs of at least `min_sessions` consecutive stored bars of a symbol with zero volume
    while the close moves (more than one distinct close), ending in [start, end]: symbol,
    first_day, last_day, sessions, distinct_closes. A run that began before `start` is seen
    from up to 45 calendar days earlier (about 30 sessions, more than `min_sessions`)."""
    return read_frame(
        engine,
        """
        WITH bars AS (
            SELECT symbol, trade_date, close, volume,
                   row_number() OVER (PARTITION BY symbol ORDER BY trade_date)
                   - row_number() OVER (PARTITION BY symbol, volume = 0 ORDER BY trade_date) AS island
            FROM vfr_ml.raw_prices WHERE trade_date BETWEEN :b AND :e)
        SELECT symbol, min(trade_date) AS first_day, max(trade_date) AS last_day, count(*) AS sessions,
               count(DISTINCT close) AS distinct_closes
        FROM bars WHERE volume = 0 GROUP BY symbol, island
        HAVING count(*) >= :n AND count(DISTINCT close) > 1 AND max(trade_date) >= :s
        ORDER BY symbol, first_day
        """,
        {"b": start - timedelta(days=45), "s": start, "e": end, "n": min_sessions},
    )
