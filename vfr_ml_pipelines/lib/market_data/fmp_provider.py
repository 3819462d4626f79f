"""Market data from FinancialModelingPrep's REST API, VFR's own primary provider.

Endpoints are FMP's v3 API, the one VFR's `FinancialModelingPrepAPI.ts` calls, under
`{base_url}/api/v3/` (per symbol):

- prices:       `historical-price-full/{SYMBOL}?from=&to=` -> `{"symbol", "historical": [...]}`
                with unadjusted `open/high/low/close`, `adjClose`, `volume`;
- dividends:    `historical-price-full/stock_dividend/{SYMBOL}?from=&to=` (`date`, `dividend`);
- splits:       `historical-price-full/stock_split/{SYMBOL}?from=&to=` (`date`, `numerator`,
                `denominator`);
- fundamentals: `income-statement`, `balance-sheet-statement`, `cash-flow-statement`
                `/{SYMBOL}?period=quarter&limit=N`, joined on the period end (`date`);
- news:         `stock_news?tickers={SYMBOL}&from=&to=&limit=&page=`;
- universe:     `profile/{SYMBOL}` for each configured symbol (`companyName`, `sector`, `ipoDate`).

`dividend` and `split_ratio` come from the dividend and split endpoints (0.0 and 1.0 on days
without an event); `corporate_actions=False` skips those two calls per symbol and returns
0.0 / 1.0 everywhere, for plans with a tight call budget.

Payload spellings vary between FMP's v3 and its newer "stable" API; both are read where
they differ: the filing date (`fillingDate` in v3, `filingDate` in stable), price lists
(`{"historical": [...]}` or a bare list), dividends paid (`dividendsPaid`,
`commonDividendsPaid`, `netDividendsPaid`). FMP stamps news in New York time without an
offset; it is localised to America/New_York and converted to UTC here.

Time limits (`http_client`): `timeout` bounds each attempt as a whole (15 s by default),
`run_deadline` the provider's whole run (one hour by default); both end with a
`ProviderError` naming the endpoint and the symbol.

Rows are returned as FMP has them (typed where possible, odd values kept as they came) so
that `validation.py` checks and quarantines them like any other provider's rows.

One symbol's unusable answer (a payload of the wrong shape for that symbol's endpoint) holds
out that symbol only in the `load_*` calls the assets make: it becomes one rejected row with
the reason and the others load. A failure of the server itself (HTTP errors after retries,
an error message such as an invalid key, timeouts, the run deadline) is not a symbol's fault
and ends the load with a `ProviderError`, as before.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.http_client import MASK, JsonHttpClient, RateLimiter, RetryPolicy
from vfr_ml_pipelines.lib.market_data.provider import MarketDataProvider, ProviderError, ProviderLoad
from vfr_ml_pipelines.lib.market_data.schema import (
    FUNDAMENTAL_COLUMNS,
    NEWS_COLUMNS,
    PRICE_COLUMNS,
    UNIVERSE_COLUMNS,
    is_valid_ticker,
)
from vfr_ml_pipelines.lib.market_data.rejections import REJECTED_COLUMNS, empty_rejected
from vfr_ml_pipelines.lib.progress import Progress
from vfr_ml_pipelines.lib.dates import parse_day, parse_timestamp

API_KEY_ENV = "FMP_API_KEY"
DEFAULT_BASE_URL = "https://financialmodelingprep.com"
DEFAULT_CALLS_PER_MINUTE = 300
API_PREFIX = "api/v3"
# per attempt: connection, headers and the whole body (a dripping server is cut off)
DEFAULT_TIMEOUT_SECONDS = 15.0
# per provider run (one asset's load): every request and retry together
DEFAULT_RUN_DEADLINE_SECONDS = 3600.0

# schema column -> (statement, FMP field names in order of preference)
FUNDAMENTAL_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "revenue": ("income", ("revenue",)),
    "gross_profit": ("income", ("grossProfit",)),
    "operating_income": ("income", ("operatingIncome",)),
    "ebitda": ("income", ("ebitda",)),
    "net_income": ("income", ("netIncome",)),
    "interest_expense": ("income", ("interestExpense",)),
    "eps": ("income", ("eps",)),
    "shares_outstanding": ("income", ("weightedAverageShsOut", "weightedAverageShsOutDil")),
    "total_assets": ("balance", ("totalAssets",)),
    "total_debt": ("balance", ("totalDebt",)),
    "cash": ("balance", ("cashAndCashEquivalents",)),
    "current_assets": ("balance", ("totalCurrentAssets",)),
    "current_liabilities": ("balance", ("totalCurrentLiabilities",)),
    "inventory": ("balance", ("inventory",)),
    "book_value": ("balance", ("totalStockholdersEquity",)),
    "free_cash_flow": ("cashflow", ("freeCashFlow",)),
    "dividends_paid": ("cashflow", ("dividendsPaid", "commonDividendsPaid", "netDividendsPaid")),
}
STATEMENTS = {"income": "income-statement", "balance": "balance-sheet-statement", "cashflow": "cash-flow-statement"}
FILING_DATE_FIELDS = ("fillingDate", "filingDate")
# a headline on a Saturday belongs to Monday's session: ask for a few days before `start`
NEWS_LOOKBACK_DAYS = 7


class UnusablePayload(ProviderError):
    """One symbol's endpoint answered with a payload this provider cannot read: that symbol's
    data is unusable, the server and the other symbols may be fine."""


class FmpMarketDataProvider(MarketDataProvider):
    """`api_key` is sent as the `apikey` query parameter and never appears in a message, a
    log line or this object's repr. `symbols` is the universe (FMP's own symbol list holds
    every fund, ETF and foreign listing, which is no universe). `base_url` is the server
    root; tests point it at a local server."""

    name = "fmp"

    def __init__(
        self, api_key: str, *, symbols: Sequence[str] = (), base_url: str = DEFAULT_BASE_URL,
        calls_per_minute: int = DEFAULT_CALLS_PER_MINUTE, timeout: float = DEFAULT_TIMEOUT_SECONDS,
        run_deadline: float | None = DEFAULT_RUN_DEADLINE_SECONDS, max_attempts: int = 4, backoff_seconds: float = 1.0,
        corporate_actions: bool = True, news_page_size: int = 100, max_news_pages: int = 20,
        rate_limiter: RateLimiter | None = None, clock: Callable[[], float] = time.monotonic,
    ):
        if not api_key or not api_key.strip():
            raise ProviderError(f"fmp: no API key; set {API_KEY_ENV}")
        base = base_url.rstrip("/")
        # VFR configures the v3 root itself ("https://financialmodelingprep.com/api/v3")
        if base.endswith("/" + API_PREFIX):
            base = base[: -len(API_PREFIX) - 1]
        self.symbols = list(symbols)
        self.clock = clock  # of the progress lines (their time left); tests pass their own
        self.corporate_actions = corporate_actions
        self.news_page_size = news_page_size
        self.max_news_pages = max_news_pages
        self.rate_limiter = rate_limiter or RateLimiter(calls_per_minute, 60.0)
        self.client = JsonHttpClient(
            base, api_key=api_key.strip(), provider="fmp", timeout=timeout, run_deadline=run_deadline,
            retry=RetryPolicy(max_attempts=max_attempts, backoff_seconds=backoff_seconds), rate_limiter=self.rate_limiter,
        )

    @classmethod
    def from_env(cls, symbols: Sequence[str], **options: object) -> FmpMarketDataProvider:
        return cls(os.environ.get(API_KEY_ENV, ""), symbols=symbols, **options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"FmpMarketDataProvider(base_url={self.client.base_url!r}, api_key={MASK}, symbols={len(self.symbols)})"

    def _get(self, path: str, symbol: str | None, **params: object) -> object:
        return self.client.get(f"{API_PREFIX}/{path}", params, symbol=symbol)

    # --- the interface --------------------------------------------------------------------

    def universe(self, as_of: date) -> pd.DataFrame:
        self._require_symbols()
        records = [self._profile(symbol, as_of) for symbol in _checked(self.symbols)]
        return _universe_frame([r for r in records if r is not None])

    def load_universe(self, as_of: date) -> ProviderLoad:
        self._require_symbols()
        records, rejected = [], []
        # one profile request per symbol: thousands of tickers take minutes at a plan's rate limit
        progress = Progress(logging.getLogger(__name__), "universe from fmp", len(self.symbols), "profiles",
                            clock=self.clock)
        for symbol in _checked(self.symbols):
            try:
                records.append(self._profile(symbol, as_of))
            except UnusablePayload as error:
                rejected.append(_rejection("universe", symbol, error))
            progress.advance()
        return ProviderLoad(_universe_frame([r for r in records if r is not None]), _rejected_frame(rejected))

    def _require_symbols(self) -> None:
        if not self.symbols:
            raise ProviderError("fmp: no symbols configured; FMP needs an explicit list of tickers for the universe")

    def _profile(self, symbol: str, as_of: date) -> dict | None:
        payload = self._get(f"profile/{symbol}", symbol)
        rows = _rows(payload, f"profile/{symbol}", symbol)
        profile = rows[0] if rows else {}
        listed = _day_or_raw(profile.get("ipoDate"))
        if isinstance(listed, date) and listed > as_of:
            return None
        return {
            "symbol": symbol,
            "name": profile.get("companyName") or "",
            "sector": profile.get("sector") or None,
            "listed_on": listed,
            "delisted_on": None,
        }

    def prices(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        frames = []
        span = {"from": start.isoformat(), "to": end.isoformat()}
        for symbol in _checked(symbols):
            path = f"historical-price-full/{symbol}"
            bars = _rows(self._get(path, symbol, **span), path, symbol)
            if not bars:
                continue
            dividends: dict[object, object] = {}
            splits: dict[object, object] = {}
            if self.corporate_actions:
                dividends = self._events(f"historical-price-full/stock_dividend/{symbol}", symbol, span, _dividend)
                splits = self._events(f"historical-price-full/stock_split/{symbol}", symbol, span, _split_ratio)
            days = [_day_or_raw(bar.get("date")) for bar in bars]
            frames.append(
                pd.DataFrame(
                    {
                        "symbol": symbol,
                        "trade_date": pd.Series(days, dtype=object),
                        "open": _numbers(bar.get("open") for bar in bars),
                        "high": _numbers(bar.get("high") for bar in bars),
                        "low": _numbers(bar.get("low") for bar in bars),
                        "close": _numbers(bar.get("close") for bar in bars),
                        "adj_close": _numbers(bar.get("adjClose") for bar in bars),
                        "volume": _numbers(bar.get("volume") for bar in bars),
                        "dividend": _numbers(dividends.get(d, 0.0) for d in days),
                        "split_ratio": _numbers(splits.get(d, 1.0) for d in days),
                    },
                    columns=list(PRICE_COLUMNS),
                )
            )
        return _concat(frames, PRICE_COLUMNS)

    def fundamentals(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        # statements come newest first; ask for enough quarters to reach back to `start`
        limit = max(4, math.ceil((date.today() - start).days / 91) + 2)
        frames = []
        for symbol in _checked(symbols):
            statements = {
                name: _rows(self._get(f"{path}/{symbol}", symbol, period="quarter", limit=limit), f"{path}/{symbol}", symbol)
                for name, path in STATEMENTS.items()
            }
            frame = _fundamentals(symbol, statements)
            filed = frame["filing_date"].tolist()
            keep = [not isinstance(d, date) or start <= d <= end for d in filed]
            frames.append(frame[keep])
        return _concat(frames, FUNDAMENTAL_COLUMNS)

    def news(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        frames = []
        span = {"from": (start - timedelta(days=NEWS_LOOKBACK_DAYS)).isoformat(), "to": end.isoformat()}
        for symbol in _checked(symbols):
            items: list[dict] = []
            for page in range(self.max_news_pages):
                batch = _rows(
                    self._get("stock_news", symbol, tickers=symbol, limit=self.news_page_size, page=page, **span),
                    "stock_news", symbol,
                )
                items.extend(batch)
                if len(batch) < self.news_page_size:
                    break
            if not items:
                continue
            stamps = [_new_york_stamp(item.get("publishedDate")) for item in items]
            frame = pd.DataFrame(
                {
                    "symbol": [item.get("symbol") or symbol for item in items],
                    "published_at": pd.Series(stamps, dtype=object),
                    "headline": [item.get("title") for item in items],
                    "source": [item.get("site") or item.get("publisher") or "" for item in items],
                    "url": [item.get("url") or "" for item in items],
                },
                columns=list(NEWS_COLUMNS),
            )
            keep = [_session_in(stamp, start, end) for stamp in stamps]
            frames.append(frame[keep])
        return _concat(frames, NEWS_COLUMNS)

    def load_prices(self, symbols: Sequence[str], start: date, end: date) -> ProviderLoad:
        return self._per_symbol("prices", symbols, lambda symbol: self.prices([symbol], start, end), PRICE_COLUMNS)

    def load_fundamentals(self, symbols: Sequence[str], start: date, end: date) -> ProviderLoad:
        return self._per_symbol(
            "fundamentals", symbols, lambda symbol: self.fundamentals([symbol], start, end), FUNDAMENTAL_COLUMNS
        )

    def load_news(self, symbols: Sequence[str], start: date, end: date) -> ProviderLoad:
        return self._per_symbol("news", symbols, lambda symbol: self.news([symbol], start, end), NEWS_COLUMNS)

    def _per_symbol(self, dataset: str, symbols: Sequence[str], fetch, columns: Sequence[str]) -> ProviderLoad:
        """`fetch` one symbol at a time; a symbol whose payload is unusable becomes one rejected
        row (nothing of it is kept, so a symbol is whole or absent), any other error ends the load."""
        frames, rejected = [], []
        for symbol in _checked(symbols):
            try:
                frames.append(fetch(symbol))
            except UnusablePayload as error:
                rejected.append(_rejection(dataset, symbol, error))
        return ProviderLoad(_concat(frames, columns), _rejected_frame(rejected))

    # --- corporate actions ----------------------------------------------------------------

    def _events(self, path: str, symbol: str, span: dict, value) -> dict[object, object]:
        events: dict[object, object] = {}
        for row in _rows(self._get(path, symbol, **span), path, symbol):
            events[_day_or_raw(row.get("date"))] = value(row)
        return events


# --- payloads ------------------------------------------------------------------------------


def _checked(symbols: Sequence[str]) -> list[str]:
    """Symbols go into URL paths: refuse anything that is not a ticker before any request."""
    for symbol in symbols:
        if not is_valid_ticker(symbol):
            shown = repr(symbol) if not isinstance(symbol, str) or len(symbol) <= 40 else repr(symbol[:40] + "...")
            raise ProviderError(
                f"fmp: {shown} is not a valid ticker; no request was made",
                symbol=symbol if isinstance(symbol, str) else None, field="symbol",
            )
    return list(symbols)


def _rows(payload: object, endpoint: str, symbol: str) -> list[dict]:
    """The records of a payload: a bare list, or v3's `{"symbol": ..., "historical": [...]}`.
    `{}` and `[]` mean no data (FMP's answer for an unknown symbol or an empty range)."""
    if payload in ({}, [], None):
        return []
    if isinstance(payload, dict) and "historical" in payload:
        payload = payload["historical"]
    if isinstance(payload, list) and all(isinstance(row, dict) for row in payload):
        return payload
    shape = f"object with keys {sorted(payload)[:8]}" if isinstance(payload, dict) else type(payload).__name__
    raise UnusablePayload(f"fmp: {API_PREFIX}/{endpoint} for symbol {symbol}: unexpected payload ({shape})", symbol=symbol)


def _number(value: object) -> object:
    if value is None:
        return np.nan
    if isinstance(value, bool):
        return value  # not a number: validation rejects it
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _numbers(values) -> pd.Series:
    out = [_number(v) for v in values]
    clean = all(isinstance(v, float) for v in out)
    return pd.Series(out, dtype="float64" if clean else object)


def _day_or_raw(value: object) -> object:
    try:
        return parse_day(value)
    except (ValueError, TypeError):
        return value


def _dividend(row: dict) -> object:
    # `dividend` is the amount as declared; `adjDividend` is restated for later splits
    return _number(row.get("dividend", row.get("adjDividend")))


def _split_ratio(row: dict) -> object:
    numerator, denominator = _number(row.get("numerator")), _number(row.get("denominator"))
    if isinstance(numerator, float) and isinstance(denominator, float) and denominator != 0:
        return numerator / denominator
    return f"{row.get('numerator')}/{row.get('denominator')}"  # kept as text: validation rejects it


def _new_york_stamp(value: object) -> object:
    """FMP's `2024-01-05 16:30:00` is New York time; a value with an offset keeps it."""
    try:
        stamp = parse_timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return value
    if stamp is None:
        return None
    if stamp.tzinfo is None:
        try:
            stamp = stamp.tz_localize(calendar.MARKET_TZ, ambiguous="NaT", nonexistent="NaT")
        except (ValueError, TypeError):
            return value
        if stamp is pd.NaT:
            return value  # inside a daylight-saving jump: which hour is unknowable
    return stamp.tz_convert("UTC")


def _session_in(stamp: object, start: date, end: date) -> bool:
    if not isinstance(stamp, pd.Timestamp):
        return True  # unparseable: kept for validation to reject
    try:
        return start <= calendar.session_of(stamp) <= end
    except Exception:  # outside the calendar: kept for validation to reject
        return True


def _fundamentals(symbol: str, statements: dict[str, list[dict]]) -> pd.DataFrame:
    by_period: dict[object, dict[str, dict]] = {}
    for name, rows in statements.items():
        for row in rows:
            by_period.setdefault(_day_or_raw(row.get("date")), {})[name] = row
    records = []
    for period_end, parts in by_period.items():
        filed = [_day_or_raw(part.get(f)) for part in parts.values() for f in FILING_DATE_FIELDS if part.get(f)]
        dates = [d for d in filed if isinstance(d, date)]
        # statements of one report may carry different stamps: the latest is when all was known
        filing_date = max(dates) if dates else (filed[0] if filed else None)
        first = next(iter(parts.values()))
        year = first.get("calendarYear") or first.get("fiscalYear") or ""
        record: dict[str, object] = {
            "symbol": symbol,
            "period_end": period_end,
            "filing_date": filing_date,
            "fiscal_period": f"{year}{first.get('period') or ''}",
        }
        for column, (statement, fields) in FUNDAMENTAL_FIELDS.items():
            source = parts.get(statement, {})
            value = next((source[f] for f in fields if source.get(f) is not None), None)
            number = _number(value)
            if column == "dividends_paid" and isinstance(number, float):
                number = abs(number)  # FMP reports the cash outflow as negative
            record[column] = number
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=list(FUNDAMENTAL_COLUMNS))
    for column in FUNDAMENTAL_FIELDS:
        if all(isinstance(v, float) for v in frame[column]):
            frame[column] = frame[column].astype("float64")
    return frame


def _universe_frame(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame.from_records(records, columns=list(UNIVERSE_COLUMNS)).astype(object)


def _rejection(dataset: str, symbol: str, error: UnusablePayload) -> dict:
    """The rejected row that stands for a symbol's whole unusable answer (day None: nothing of
    it is kept). The message names the endpoint, never the key (the client masks it)."""
    return {
        "dataset": dataset, "symbol": symbol, "day": None, "field": "payload",
        "reason": f"{error}; the symbol's {dataset} are refused, the other symbols go on",
        "raw": {"error": type(error).__name__},
    }


def _rejected_frame(records: list[dict]) -> pd.DataFrame:
    if not records:
        return empty_rejected()
    return pd.DataFrame.from_records(records, columns=list(REJECTED_COLUMNS)).astype(object)


def _concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(frames, ignore_index=True)[list(columns)]
