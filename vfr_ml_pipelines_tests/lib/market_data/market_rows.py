"""Rows of the market-data tables for the store and quality tests, written through the
store as the loads write them."""

from __future__ import annotations

from datetime import date

import pandas as pd

from vfr_ml_pipelines.lib.market_data import calendar, store
from vfr_ml_pipelines.lib.market_data.rejections import REJECTED_COLUMNS

DAYS = calendar.trading_days(date(2024, 3, 1), date(2024, 3, 28))  # 19 sessions, Good Friday excluded
START, END = DAYS[0], DAYS[-1]


def bar(symbol: str, day: date, close: float = 10.0, volume: int = 1000, **overrides) -> dict:
    row = {"symbol": symbol, "trade_date": day, "open": close, "high": close * 1.01, "low": close * 0.99,
           "close": close, "adj_close": close, "volume": volume, "dividend": 0.0, "split_ratio": 1.0, "source": "test"}
    return {**row, **overrides}


def rejected(rows: list[tuple]) -> pd.DataFrame:
    """Quarantine rows from (dataset, symbol, day, field, reason)."""
    return pd.DataFrame([(d, s, day, f, reason, {}) for d, s, day, f, reason in rows], columns=list(REJECTED_COLUMNS))


def write_prices(engine, rows: list[dict], quarantined: pd.DataFrame | None = None) -> None:
    store.write_range(engine, "vfr_ml.raw_prices", "trade_date", pd.DataFrame(rows), START, END,
                      dataset="prices", provider="test", rejected=quarantined if quarantined is not None else rejected([]),
                      run_id="r1")


def write_universe(engine, listed: dict[str, list[date]]) -> None:
    """Each symbol listed on the given sessions."""
    master = pd.DataFrame(
        [(s, s.title(), "Tech", min(days), None, "test") for s, days in listed.items()],
        columns=store.UNIVERSE_MASTER_COLUMNS,
    )
    by_session = pd.DataFrame(
        [(d, s, "Tech", "test") for s, days in listed.items() for d in days], columns=["trade_date", "symbol", "sector", "source"]
    )
    store.write_universe(engine, master, by_session, START, END, provider="test", rejected=rejected([]), run_id="r1")
