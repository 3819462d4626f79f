"""The FMP provider against a real HTTP server on 127.0.0.1 serving FMP-shaped JSON and
scripted failures. Checks the mapping to the schema, the retry policy, the rate limiter,
and that the API key never appears in an error, a log line or a repr."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.market_data.fmp_provider import FmpMarketDataProvider
from vfr_ml_pipelines.lib.market_data.http_client import RateLimiter
from vfr_ml_pipelines.lib.market_data.provider import ProviderError
from vfr_ml_pipelines.lib.market_data.schema import FUNDAMENTAL_COLUMNS, NEWS_COLUMNS, PRICE_COLUMNS
from vfr_ml_pipelines.lib.market_data.validation import validate_fundamentals, validate_news, validate_prices

API_KEY = "sk-test-SECRET-0123456789abcdef"
START, END, TODAY = date(2024, 1, 2), date(2024, 1, 31), date(2024, 2, 15)
PRICES = "/api/v3/historical-price-full/AAA"
TIMEOUT = 0.2

BARS = {
    "symbol": "AAA",
    "historical": [  # FMP lists the newest bar first
        {"date": "2024-01-03", "open": 10.5, "high": 10.9, "low": 10.1, "close": 10.6, "adjClose": 5.3,
         "volume": 1100, "unadjustedVolume": 1100, "change": 0.1, "changePercent": 0.95, "vwap": 10.5,
         "label": "January 03, 24", "changeOverTime": 0.0095},
        {"date": "2024-01-02", "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "adjClose": 5.2,
         "volume": 1000, "unadjustedVolume": 1000, "change": 0.5, "changePercent": 5.0, "vwap": 10.1,
         "label": "January 02, 24", "changeOverTime": 0.05},
    ],
}


@dataclass
class Reply:
    status: int = 200
    body: object = field(default_factory=list)  # JSON-encoded unless bytes
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


class FakeFmp:
    """Scripted replies per path; the last reply of a script repeats."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.requests: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.url = ""

    def script(self, path: str, *replies: Reply) -> None:
        self.scripts[path] = list(replies)

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    def next_reply(self, path: str, query: dict) -> Reply:
        with self.lock:
            self.requests.append((path, query))
            replies = self.scripts.get(path)
            if not replies:
                return Reply(404, {"Error Message": f"no script for {path}"})
            return replies.pop(0) if len(replies) > 1 else replies[0]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        reply = self.server.fake.next_reply(parts.path, query)
        if reply.delay:
            time.sleep(reply.delay)
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fmp():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.fake = FakeFmp()
    server.fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    # a short poll interval keeps shutdown (once per test) fast
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server.fake
    finally:
        server.shutdown()
        server.server_close()


def provider(fmp: FakeFmp, **options) -> FmpMarketDataProvider:
    settings = {"symbols": ["AAA"], "base_url": fmp.url, "timeout": 2.0, "max_attempts": 3, "backoff_seconds": 0.01,
                "calls_per_minute": 100_000, **options}
    return FmpMarketDataProvider(API_KEY, **settings)


def no_actions(fmp: FakeFmp) -> None:
    fmp.script("/api/v3/historical-price-full/stock_dividend/AAA", Reply(body={"symbol": "AAA", "historical": []}))
    fmp.script("/api/v3/historical-price-full/stock_split/AAA", Reply(body={}))


def assert_no_key(*texts: object) -> None:
    for text in texts:
        assert API_KEY not in str(text)


def raised(call) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        call()
    error = info.value
    assert_no_key(str(error), repr(error), error.args, error.__cause__, error.__context__)
    return error


# --- mapping ---------------------------------------------------------------------------------


def test_prices_with_dividends_and_splits(fmp):
    fmp.script(PRICES, Reply(body=BARS))
    fmp.script("/api/v3/historical-price-full/stock_dividend/AAA", Reply(body={"symbol": "AAA", "historical": [
        {"date": "2024-01-03", "label": "January 03, 24", "adjDividend": 0.12, "dividend": 0.24,
         "recordDate": "2024-01-04", "paymentDate": "2024-01-20", "declarationDate": "2023-12-15"}]}))
    fmp.script("/api/v3/historical-price-full/stock_split/AAA", Reply(body={"symbol": "AAA", "historical": [
        {"date": "2024-01-02", "label": "January 02, 24", "numerator": 2, "denominator": 1}]}))

    frame = provider(fmp).prices(["AAA"], START, END)

    assert tuple(frame.columns) == PRICE_COLUMNS
    path, query = fmp.requests[0]
    assert (path, query["from"], query["to"], query["apikey"]) == (PRICES, "2024-01-02", "2024-01-31", API_KEY)
    result = validate_prices(frame, start=START, end=END, today=TODAY, known_symbols={"AAA"}, source="fmp")
    assert result.rejected.empty
    clean = result.clean
    assert clean["trade_date"].tolist() == [date(2024, 1, 2), date(2024, 1, 3)]
    assert clean["close"].tolist() == [10.5, 10.6]          # unadjusted
    assert clean["adj_close"].tolist() == [5.2, 5.3]        # FMP's adjClose
    assert clean["volume"].tolist() == [1000, 1100] and clean["volume"].dtype == np.int64
    assert clean["dividend"].tolist() == [0.0, 0.24]        # as declared, not split-adjusted
    assert clean["split_ratio"].tolist() == [2.0, 1.0]


def test_corporate_actions_can_be_skipped(fmp):
    fmp.script(PRICES, Reply(body=BARS))
    frame = provider(fmp, corporate_actions=False).prices(["AAA"], START, END)
    assert frame["dividend"].tolist() == [0.0, 0.0] and frame["split_ratio"].tolist() == [1.0, 1.0]
    assert [p for p, _ in fmp.requests] == [PRICES]


def test_bad_bar_values_reach_validation(fmp):
    older, newer = BARS["historical"][1], BARS["historical"][0]
    bars = {"symbol": "AAA", "historical": [dict(older, high=9.5, low=10.0), dict(newer, close=None)]}
    fmp.script(PRICES, Reply(body=bars))
    no_actions(fmp)
    frame = provider(fmp).prices(["AAA"], START, END)
    result = validate_prices(frame, start=START, end=END, today=TODAY, known_symbols={"AAA"})
    assert result.clean.empty
    assert sorted(result.rejected["reason"]) == ["close is missing (NaN)", "high 9.5 < low 10.0"]


def test_empty_list_is_an_empty_frame_not_an_error(fmp):
    fmp.script(PRICES, Reply(body=[]))
    fmp.script("/api/v3/historical-price-full/BBB", Reply(body={}))
    frame = provider(fmp).prices(["AAA", "BBB"], START, END)
    assert frame.empty and tuple(frame.columns) == PRICE_COLUMNS


def test_base_url_may_be_vfrs_v3_root(fmp):
    fmp.script(PRICES, Reply(body=BARS))
    frame = provider(fmp, base_url=fmp.url + "/api/v3/", corporate_actions=False).prices(["AAA"], START, END)
    assert len(frame) == 2


def statement(period_end: str, filed: str, spelling: str = "fillingDate", **values) -> dict:
    row = {"date": period_end, "symbol": "AAA", "reportedCurrency": "USD", "cik": "0000000001", spelling: filed,
           "acceptedDate": f"{filed} 16:05:00", "calendarYear": period_end[:4], "period": "Q4"}
    row.update(values)
    return row


def test_fundamentals_join_three_statements_and_read_both_filing_date_spellings(fmp):
    income = [
        statement("2023-12-31", "2024-01-25", revenue=1.0e9, grossProfit=4.0e8, operatingIncome=2.0e8, ebitda=2.5e8,
                  netIncome=1.5e8, interestExpense=1.0e7, eps=0.3, weightedAverageShsOut=5.0e8),
        statement("2023-09-30", "2023-11-02", revenue=0.9e9, weightedAverageShsOut=5.0e8, period="Q3"),
    ]
    balance = [
        # the stable API's spelling, and a later stamp than the income statement's
        statement("2023-12-31", "2024-01-26", "filingDate", totalAssets=5.0e9, totalDebt=1.0e9, cashAndCashEquivalents=3.0e8,
                  totalCurrentAssets=1.2e9, totalCurrentLiabilities=8.0e8, inventory=2.0e8, totalStockholdersEquity=2.0e9),
    ]
    cashflow = [statement("2023-12-31", "2024-01-25", freeCashFlow=1.2e8, dividendsPaid=-5.0e7)]
    fmp.script("/api/v3/income-statement/AAA", Reply(body=income))
    fmp.script("/api/v3/balance-sheet-statement/AAA", Reply(body=balance))
    fmp.script("/api/v3/cash-flow-statement/AAA", Reply(body=cashflow))

    frame = provider(fmp).fundamentals(["AAA"], START, END)

    assert tuple(frame.columns) == FUNDAMENTAL_COLUMNS
    assert all(q["period"] == "quarter" and int(q["limit"]) >= 4 for _, q in fmp.requests)
    result = validate_fundamentals(frame, start=START, end=END, today=TODAY, known_symbols={"AAA"})
    assert result.rejected.empty
    row = result.clean.iloc[0]
    assert len(result.clean) == 1  # the Q3 report was filed before the range
    assert (row["period_end"], row["filing_date"], row["fiscal_period"]) == (date(2023, 12, 31), date(2024, 1, 26), "2023Q4")
    assert (row["revenue"], row["total_assets"], row["book_value"], row["free_cash_flow"]) == (1.0e9, 5.0e9, 2.0e9, 1.2e8)
    assert (row["shares_outstanding"], row["dividends_paid"]) == (5.0e8, 5.0e7)


def test_fundamentals_filed_before_period_end_are_quarantined(fmp):
    fmp.script("/api/v3/income-statement/AAA", Reply(body=[statement("2024-03-31", "2024-01-20", weightedAverageShsOut=1.0)]))
    fmp.script("/api/v3/balance-sheet-statement/AAA", Reply(body=[]))
    fmp.script("/api/v3/cash-flow-statement/AAA", Reply(body=[]))
    frame = provider(fmp).fundamentals(["AAA"], START, END)
    result = validate_fundamentals(frame, start=START, end=END, today=TODAY, known_symbols={"AAA"})
    rejected = result.rejected.iloc[0]
    assert (rejected["symbol"], rejected["day"], rejected["field"]) == ("AAA", date(2024, 1, 20), "filing_date")
    assert rejected["reason"].startswith("filed before its period ended")


def test_news_is_new_york_time_and_paged(fmp):
    page0 = [
        {"symbol": "AAA", "publishedDate": "2024-01-03 09:30:00", "title": "AAA beats estimates", "image": "x",
         "site": "reuters.com", "text": "...", "url": "https://example.com/1"},
        {"symbol": "AAA", "publishedDate": "2024-01-31 17:00:00", "title": "After the close on the last day",
         "site": "wire", "text": "...", "url": "https://example.com/2"},
    ]
    page1 = [{"symbol": "AAA", "publishedDate": "2024-01-10 12:00:00", "title": "", "site": "wire",
              "url": "https://example.com/3"}]
    fmp.script("/api/v3/stock_news", Reply(body=page0), Reply(body=page1))

    frame = provider(fmp, news_page_size=2).news(["AAA"], START, END)

    assert [q["page"] for _, q in fmp.requests] == ["0", "1"]
    assert fmp.requests[0][1]["tickers"] == "AAA" and fmp.requests[0][1]["from"] == "2023-12-26"
    assert tuple(frame.columns) == NEWS_COLUMNS and len(frame) == 2  # the after-close one is February's
    result = validate_news(frame, start=START, end=END, today=TODAY, known_symbols={"AAA"})
    assert result.clean["published_at"].tolist() == [pd.Timestamp("2024-01-03 14:30Z")]
    assert result.clean["source"].tolist() == ["reuters.com"]
    assert result.rejected["reason"].tolist() == ["headline is empty"]


def test_universe_from_profiles(fmp):
    fmp.script("/api/v3/profile/AAA", Reply(body=[{"symbol": "AAA", "companyName": "Triple A", "sector": "Technology",
                                                  "ipoDate": "2010-06-29"}]))
    fmp.script("/api/v3/profile/NEW", Reply(body=[{"symbol": "NEW", "companyName": "New", "sector": "",
                                                  "ipoDate": "2024-06-01"}]))
    universe = provider(fmp, symbols=["AAA", "NEW"]).universe(TODAY)
    assert universe["symbol"].tolist() == ["AAA"]  # NEW lists after as_of
    assert (universe["name"].iloc[0], universe["listed_on"].iloc[0]) == ("Triple A", date(2010, 6, 29))


# --- failures --------------------------------------------------------------------------------


def test_401_is_a_rejected_key_without_retry(fmp):
    fmp.script(PRICES, Reply(401, {"Error Message": f"Invalid API KEY {API_KEY}. Please retry or visit our documentation."}))
    error = raised(lambda: provider(fmp).prices(["AAA"], START, END))
    assert fmp.hits(PRICES) == 1
    message = str(error)
    assert "the API key was rejected (HTTP 401)" in message and "Invalid API KEY ***" in message
    assert "historical-price-full/AAA" in message and "symbol AAA" in message
    assert (error.symbol, error.field) == ("AAA", "apikey")


def test_403_is_a_rejected_key_too(fmp):
    fmp.script(PRICES, Reply(403, b"Forbidden"))
    assert "rejected (HTTP 403): Forbidden" in str(raised(lambda: provider(fmp).prices(["AAA"], START, END)))
    assert fmp.hits(PRICES) == 1


def test_429_then_success_honours_retry_after(fmp):
    fmp.script(PRICES, Reply(429, {"message": "Limit Reach . Please upgrade your plan."}, {"Retry-After": "0"}), Reply(body=BARS))
    frame = provider(fmp, corporate_actions=False).prices(["AAA"], START, END)
    assert len(frame) == 2 and fmp.hits(PRICES) == 2


def test_retry_after_beyond_reason_stops(fmp):
    fmp.script(PRICES, Reply(429, {"message": "Limit Reach"}, {"Retry-After": "3600"}))
    error = raised(lambda: provider(fmp).prices(["AAA"], START, END))
    assert "asks to wait 3600 s" in str(error) and "Limit Reach" in str(error)
    assert fmp.hits(PRICES) == 1


def test_persistent_429_names_fmps_message(fmp):
    fmp.script(PRICES, Reply(429, {"message": "Limit Reach . Please upgrade your plan."}, {"Retry-After": "0"}))
    error = raised(lambda: provider(fmp).prices(["AAA"], START, END))
    assert "giving up after 3 attempts; last: HTTP 429: Limit Reach" in str(error)
    assert fmp.hits(PRICES) == 3


def test_500_then_success(fmp):
    fmp.script(PRICES, Reply(500, b"oops"), Reply(502, b"<html>bad gateway</html>"), Reply(body=BARS))
    frame = provider(fmp, corporate_actions=False).prices(["AAA"], START, END)
    assert len(frame) == 2 and fmp.hits(PRICES) == 3


def test_persistent_500_gives_up_after_max_attempts(fmp):
    fmp.script(PRICES, Reply(500, {"error": "internal"}))
    error = raised(lambda: provider(fmp, max_attempts=4).prices(["AAA"], START, END))
    assert fmp.hits(PRICES) == 4
    message = str(error)
    assert "fmp: api/v3/historical-price-full/AAA for symbol AAA" in message
    assert "giving up after 4 attempts; last: HTTP 500: internal" in message
    assert error.symbol == "AAA"


def test_timeout_then_success(fmp):
    fmp.script(PRICES, Reply(body=BARS, delay=3 * TIMEOUT), Reply(body=BARS))
    frame = provider(fmp, timeout=TIMEOUT, corporate_actions=False).prices(["AAA"], START, END)
    assert len(frame) == 2 and fmp.hits(PRICES) == 2


def test_persistent_timeout(fmp):
    fmp.script(PRICES, Reply(body=BARS, delay=3 * TIMEOUT))
    error = raised(lambda: provider(fmp, timeout=TIMEOUT, max_attempts=2).prices(["AAA"], START, END))
    assert "giving up after 2 attempts; last: timed out after 0.2 s" in str(error)
    assert "historical-price-full/AAA for symbol AAA" in str(error)


def test_connection_refused_is_retried_then_reported(fmp):
    dead = FmpMarketDataProvider(API_KEY, base_url="http://127.0.0.1:9", max_attempts=2, backoff_seconds=0.01, timeout=TIMEOUT)
    error = raised(lambda: dead.prices(["AAA"], START, END))
    assert "giving up after 2 attempts; last: connection failed" in str(error)


def test_truncated_json(fmp):
    fmp.script(PRICES, Reply(body=json.dumps(BARS).encode()[:90]))
    error = raised(lambda: provider(fmp).prices(["AAA"], START, END))
    message = str(error)
    assert "historical-price-full/AAA for symbol AAA" in message and "not valid JSON" in message
    assert "truncated" in message and fmp.hits(PRICES) == 1


def test_html_body(fmp):
    fmp.script(PRICES, Reply(body=b"<!DOCTYPE html><html><body><h1>Maintenance</h1></body></html>"))
    message = str(raised(lambda: provider(fmp).prices(["AAA"], START, END)))
    assert "not valid JSON" in message and "<!DOCTYPE html>" in message and "symbol AAA" in message


def test_error_message_payload_with_status_200(fmp):
    text = ("Invalid API KEY. Please retry or visit our documentation to create one FREE "
            "https://financialmodelingprep.com/developer/docs")
    fmp.script(PRICES, Reply(body={"Error Message": text}))
    message = str(raised(lambda: provider(fmp).prices(["AAA"], START, END)))
    assert f"the server reported an error: {text}" in message and "historical-price-full/AAA for symbol AAA" in message
    assert fmp.hits(PRICES) == 1


def test_other_client_errors_are_not_retried(fmp):
    fmp.script(PRICES, Reply(402, {"Error Message": "Special Endpoint : this endpoint is not available under your plan"}))
    message = str(raised(lambda: provider(fmp).prices(["AAA"], START, END)))
    assert "HTTP 402: Special Endpoint" in message and fmp.hits(PRICES) == 1


def test_unexpected_payload_shape(fmp):
    fmp.script(PRICES, Reply(body={"data": [1, 2]}))
    assert "unexpected payload (object with keys ['data'])" in str(raised(lambda: provider(fmp).prices(["AAA"], START, END)))


@pytest.mark.parametrize("symbol", ["../profile", "A;DROP", "AAPL?apikey=x", "A" * 30])
def test_invalid_symbols_make_no_request(fmp, symbol):
    error = raised(lambda: provider(fmp).prices(["AAA", symbol], START, END))
    assert "not a valid ticker; no request was made" in str(error) and error.field == "symbol"
    assert fmp.requests == []


def test_missing_key_is_refused(monkeypatch):
    monkeypatch.delenv("FMP_API_KEY", raising=False)
    with pytest.raises(ProviderError, match="FMP_API_KEY"):
        FmpMarketDataProvider.from_env(["AAA"])


def test_key_never_in_messages_logs_or_repr(fmp, caplog):
    caplog.set_level(logging.DEBUG)
    echo = {"Error Message": f"bad key {API_KEY}"}
    fmp.script(PRICES, Reply(500, echo), Reply(429, echo, {"Retry-After": "0"}), Reply(body=f"<html>{API_KEY}".encode()))
    p = provider(fmp)
    error = raised(lambda: p.prices(["AAA"], START, END))
    assert "***" in str(error)
    assert caplog.records, "retries are logged"
    assert_no_key(repr(p), repr(p.client), *(r.getMessage() for r in caplog.records), caplog.text)
    assert "***" in repr(p)


# --- rate limit ------------------------------------------------------------------------------


def test_rate_limiter_is_a_token_bucket():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(3, per_seconds=60.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limiter.acquire()
    assert slept == []  # a full bucket serves a burst
    limiter.acquire()
    assert len(slept) == 1 and slept[0] == pytest.approx(20.0)  # one token per 20 s
    now[0] += 60.0  # idle a full window: the bucket refills, but never above its size
    for _ in range(3):
        limiter.acquire()
    assert len(slept) == 1
    limiter.acquire()
    assert len(slept) == 2 and (limiter.acquired, limiter.waits) == (8, 2)


def test_rate_limiter_spaces_real_requests(fmp):
    fmp.script(PRICES, Reply(body=BARS))
    limiter = RateLimiter(2, per_seconds=0.2)
    p = provider(fmp, rate_limiter=limiter, corporate_actions=False)
    for _ in range(2):
        p.prices(["AAA"], START, END)
    assert limiter.waits == 0
    p.prices(["AAA"], START, END)  # the (N+1)th call in the window has to wait
    assert limiter.waits == 1 and limiter.acquired == 3 and fmp.hits(PRICES) == 3
