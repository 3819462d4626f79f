"""Every SQL statement of the market-data domain: what the loads write, what they read back
to judge new rows, and the quality queries of the market-data checks.

Tables: `vfr_ml.universe` (the symbol master), `vfr_ml.universe_membership` (the universe:
which symbols are listed on each session), `vfr_ml.raw_prices`, `vfr_ml.raw_fundamentals`,
`vfr_ml.raw_news`, `vfr_ml.quarantine` (rejected rows with their reason) and
`vfr_ml_oracle.expected_returns`. The rules that judge the rows read here live in
`loads.py`, `price_screen.py` and `quality.py`.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
from sqlalchemy import Connection, Engine

from vfr_ml_pipelines.lib.market_data.corporate_actions import DOUBT_PREFIX
from vfr_ml_pipelines.lib.warehouse import read_frame, upsert_frame
from vfr_ml_pipelines.lib.warehouse.partitions import replace_date_range, replace_quarantine

UNIVERSE_MASTER_COLUMNS = ["symbol", "name", "sector", "listed_on", "delisted_on", "source"]

# ----------------------------------------------------------------------------- the universe


def universe(engine: Engine, start: date, end: date) -> list[str]:
    """The universe of [start, end]: every symbol listed on at least one of its sessions, sorted."""
    frame = read_frame(
        engine,
        "SELECT DISTINCT symbol FROM vfr_ml.universe_membership WHERE trade_date BETWEEN :s AND :e ORDER BY symbol",
        {"s": start, "e": end},
    )
    return frame["symbol"].tolist()


def universe_by_session(engine: Engine, start: date, end: date) -> pd.DataFrame:
    """The universe of each session of [start, end]: trade_date, symbol."""
    return read_frame(
        engine,
        "SELECT trade_date, symbol FROM vfr_ml.universe_membership WHERE trade_date BETWEEN :s AND :e",
        {"s": start, "e": end},
    )


def last_stored_session(engine: Engine, on_or_before: date) -> date | None:
    """The last session with a stored bar on or before `on_or_before`; None if there is none."""
    day = read_frame(
        engine, "SELECT max(trade_date) AS day FROM vfr_ml.raw_prices WHERE trade_date <= :d", {"d": on_or_before}
    )["day"].iloc[0]
    return None if day is None or pd.isna(day) else day


def closes_on(engine: Engine | Connection, day: date) -> pd.DataFrame:
    """symbol, close of every stored bar of `day` (the price a prediction of that session is made at)."""
    return read_frame(engine, "SELECT symbol, close FROM vfr_ml.raw_prices WHERE trade_date = :d", {"d": day})


# ----------------------------------------------------------------------------- writes


def write_universe(
    engine: Engine, master: pd.DataFrame, by_session: pd.DataFrame, start: date, end: date,
    *, provider: str, rejected: pd.DataFrame, run_id: str | None,
) -> None:
    """In one transaction: upsert the symbol master, replace the range's universe (`by_session`:
    trade_date, symbol, sector, source) and its quarantined rows."""
    with engine.begin() as conn:
        upsert_frame(conn, "vfr_ml.universe", master[UNIVERSE_MASTER_COLUMNS], ["symbol"])
        replace_date_range(conn, "vfr_ml.universe_membership", by_session, "trade_date", start, end)
        replace_quarantine(conn, "universe", provider, start, end, rejected, run_id)


def write_range(
    engine: Engine, table: str, date_column: str, clean: pd.DataFrame, start: date, end: date,
    *, dataset: str, provider: str, rejected: pd.DataFrame, run_id: str | None,
) -> None:
    """In one transaction: replace the rows of `table` dated in [start, end] by `clean`,
    and the range's quarantined rows of `dataset` by `rejected`."""
    with engine.begin() as conn:
        replace_date_range(conn, table, clean, date_column, start, end)
        replace_quarantine(conn, dataset, provider, start, end, rejected, run_id)


def write_oracle(engine: Engine, oracle: pd.DataFrame, start: date, end: date) -> None:
    """Replace the range's planted expected returns (horizon, trade_date, symbol, expected_return)."""
    with engine.begin() as conn:
        replace_date_range(conn, "vfr_ml_oracle.expected_returns", oracle, "trade_date", start, end)


# ----------------------------------------------------------------------------- what a price load reads back


def last_bars_before(engine: Engine, day: date) -> pd.DataFrame:
    """The last stored bar of each symbol before `day` (the reference of the range's first bar)."""
    return read_frame(
        engine,
        """
        SELECT DISTINCT ON (symbol) symbol, trade_date, close, adj_close, volume
        FROM vfr_ml.raw_prices WHERE trade_date < :d ORDER BY symbol, trade_date DESC
        """,
        {"d": day},
    )


def open_doubts(engine: Engine, day: date) -> dict[str, tuple[date, str]]:
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


# ----------------------------------------------------------------------------- quality queries


def stored_bars(engine: Engine, start: date, end: date) -> pd.DataFrame:
    """Stored bars of [start, end] with their events, by symbol and day (for the jump rule)."""
    return read_frame(
        engine,
        """
        SELECT symbol, trade_date, close, adj_close, volume, dividend, split_ratio FROM vfr_ml.raw_prices
        WHERE trade_date BETWEEN :b AND :e ORDER BY symbol, trade_date
        """,
        {"b": start, "e": end},
    )


def invalid_bars(engine: Engine, start: date, end: date, *, max_price: float, max_volume: float) -> pd.DataFrame:
    """Stored bars of [start, end] that are not finite and positive (PostgreSQL accepts NaN
    and Infinity in double precision, and NaN passes `close > 0`), break low <= open, close
    <= high, or exceed the plausible ranges."""
    return read_frame(
        engine,
        """
        SELECT symbol, trade_date, open, high, low, close, volume FROM vfr_ml.raw_prices
        WHERE trade_date BETWEEN :s AND :e AND (
            'NaN' IN (open, high, low, close, adj_close) OR 'Infinity' IN (open, high, low, close, adj_close)
            OR least(open, high, low, close, adj_close) <= 0 OR low > least(open, close) OR high < greatest(open, close)
            OR greatest(open, high, low, close, adj_close) > :max_price OR volume > :max_volume)
        """,
        {"s": start, "e": end, "max_price": max_price, "max_volume": max_volume},
    )


def coverage(engine: Engine, start: date, end: date) -> pd.DataFrame:
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


def held_out(engine: Engine, start: date, end: date) -> pd.DataFrame:
    """Symbols held out for an unexplained jump in [start, end]: symbol, first day, sessions, reason."""
    return read_frame(
        engine,
        """
        SELECT symbol, min(day) AS first_day, count(*) AS sessions, (array_agg(reason ORDER BY day))[1] AS reason FROM vfr_ml.quarantine
        WHERE dataset = 'prices' AND reason LIKE :prefix AND day BETWEEN :s AND :e GROUP BY symbol ORDER BY symbol
        """,
        {"prefix": DOUBT_PREFIX + "%", "s": start, "e": end},
    )


def repeated_bars(engine: Engine, before: date, start: date, end: date) -> pd.DataFrame:
    """Stored bars of [start, end] equal (OHLC and volume) to the symbol's previous stored
    bar, looking back to `before`: symbol, trade_date."""
    return read_frame(
        engine,
        """
        SELECT symbol, trade_date FROM (
            SELECT symbol, trade_date, (open, high, low, close, volume) AS bar,
                   lag((open, high, low, close, volume)) OVER (PARTITION BY symbol ORDER BY trade_date) AS prev_bar
            FROM vfr_ml.raw_prices WHERE trade_date BETWEEN :b AND :e) t
        WHERE trade_date >= :s AND bar = prev_bar
        """,
        {"b": before, "s": start, "e": end},
    )


def zero_volume_runs(engine: Engine, start: date, end: date, min_sessions: int) -> pd.DataFrame:
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


def misdated_filings(engine: Engine, start: date, end: date, max_lag_days: int) -> pd.DataFrame:
    """Reports filed in [start, end] before their period ended or more than `max_lag_days`
    after it: symbol, period_end, filing_date."""
    return read_frame(
        engine,
        """
        SELECT symbol, period_end, filing_date FROM vfr_ml.raw_fundamentals
        WHERE filing_date BETWEEN :s AND :e
          AND (filing_date < period_end OR filing_date - period_end > :lag)
        """,
        {"s": start, "e": end, "lag": max_lag_days},
    )


def stored_news(engine: Engine, start: date, end: date) -> pd.DataFrame:
    """Headlines stored under the sessions of [start, end]: symbol, trade_date, published_at."""
    return read_frame(
        engine,
        "SELECT symbol, trade_date, published_at FROM vfr_ml.raw_news WHERE trade_date BETWEEN :s AND :e",
        {"s": start, "e": end},
    )
