"""The frames every market-data provider returns: column names, types and meaning.

All providers (synthetic, csv, fmp) return exactly these columns so that validation,
storage and features never depend on where the data came from.
"""

from __future__ import annotations

import re

# universe: one row per symbol known to the provider
UNIVERSE_COLUMNS = ("symbol", "name", "sector", "listed_on", "delisted_on")

# prices: one row per (symbol, trade_date). `open..close` are the prices as traded that day
# (unadjusted); `adj_close` is adjusted for later splits and dividends; `split_ratio` is the
# split taking effect that day (2.0 for a 2-for-1, 1.0 otherwise); `dividend` is the cash
# dividend per share going ex that day (0.0 otherwise).
PRICE_COLUMNS = (
    "symbol", "trade_date", "open", "high", "low", "close", "adj_close", "volume", "dividend", "split_ratio",
)

# fundamentals: one row per (symbol, period_end) quarterly report, visible to models only
# from `filing_date` on (point in time). Money in the reporting currency, shares in units.
FUNDAMENTAL_COLUMNS = (
    "symbol", "period_end", "filing_date", "fiscal_period",
    "revenue", "gross_profit", "operating_income", "ebitda", "net_income", "interest_expense", "eps",
    "total_assets", "total_debt", "cash", "current_assets", "current_liabilities", "inventory",
    "book_value", "free_cash_flow", "shares_outstanding", "dividends_paid",
)
FUNDAMENTAL_VALUE_COLUMNS = FUNDAMENTAL_COLUMNS[4:]

# news: one row per headline; `published_at` is a tz-aware UTC timestamp; the trading day a
# headline belongs to is the session on or after its New York date (after-close news counts
# for the next session).
NEWS_COLUMNS = ("symbol", "published_at", "headline", "source", "url")

# oracle (synthetic provider only): the expected forward return the simulator planted, per
# (symbol, trade_date, horizon). Never a feature: it measures how close a model gets to the
# best possible forecast.
ORACLE_COLUMNS = ("symbol", "trade_date", "horizon", "expected_return")

# A ticker: 1-10 characters, upper-case letters and digits, with an optional single class
# suffix after a dot or dash (BRK.B, BF-B). Anything else (paths, SQL, spaces) is rejected.
TICKER_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{0,9}([.\-][A-Z0-9]{1,3})?$")


def is_valid_ticker(symbol: object) -> bool:
    return isinstance(symbol, str) and bool(TICKER_PATTERN.match(symbol))
