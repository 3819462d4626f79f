"""A misbehaving FMP server on 127.0.0.1: the API key echoed back in every encoding and
place (body, long bodies cut for messages, headers, redirects), and replies that drip a
byte at a time. Outcome class of every case: a clear ProviderError naming the endpoint and
the symbol, never any fragment of the key; and time limits that bound the wall clock."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, quote_plus

import pytest

from vfr_ml_pipelines.lib.market_data.fmp_provider import FmpMarketDataProvider
from vfr_ml_pipelines.lib.market_data.provider import ProviderError

# 32 characters like a real FMP key, with a space and a slash so every encoding differs
API_KEY = "kA9 x/Qz7Lm2Np4Rs6Tu8Vw0Yb1Cd3Ef"
START, END = date(2024, 1, 2), date(2024, 1, 31)
BARS = {"symbol": "AAA", "historical": [
    {"date": "2024-01-02", "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "adjClose": 10.5, "volume": 1000},
]}
FRAGMENT = 6  # no run of this many consecutive key characters may appear anywhere


Behaviour = Callable[[BaseHTTPRequestHandler], None]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.seen.append(self.path)
        try:
            self.server.behaviour(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def log_message(self, *args) -> None:
        pass


class Server:
    def __init__(self, behaviour: Behaviour):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.behaviour = behaviour
        self.httpd.seen = []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def seen(self) -> list[str]:
        return self.httpd.seen

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def provider(url: str, **options) -> FmpMarketDataProvider:
    settings = {"base_url": url, "timeout": 2.0, "max_attempts": 2, "backoff_seconds": 0.01,
                "calls_per_minute": 100_000, "corporate_actions": False, **options}
    return FmpMarketDataProvider(API_KEY, symbols=["AAA"], **settings)


def key_fragments(text: str) -> list[str]:
    """Every run of FRAGMENT consecutive key characters found in `text`, in any of the
    encodings a message could carry, in any case."""
    found = []
    text = text.lower()  # a key echoed in other case is a leak too
    for form in {API_KEY, quote(API_KEY, safe=""), quote_plus(API_KEY)}:
        for i in range(len(form) - FRAGMENT + 1):
            piece = form[i:i + FRAGMENT].lower()
            if piece in text and piece not in found:
                found.append(piece)
    return found


@pytest.fixture
def messages(caplog) -> Iterator[Callable[[ProviderError], str]]:
    """Collects an error's text, its repr, chained exceptions and every log line."""
    caplog.set_level(logging.DEBUG)

    def collect(error: ProviderError) -> str:
        parts = [str(error), repr(error), repr(error.args), repr(error.__cause__), repr(error.__context__)]
        parts += [record.getMessage() for record in caplog.records]
        return "\n".join(parts)

    yield collect


def fails(call: Callable[[], object]) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        call()
    return info.value


# --- the key never shows, in any encoding, wherever the server puts it -----------------------

ECHOES = {
    # the request line echoed after 100 characters of padding: cut to 120 characters for the
    # message, the key used to straddle the cut and leak 20-31 of its 32 characters
    "echo past the snippet cut (html error page)":
        lambda h: reply(h, 502, ("<html>" + "x" * 100 + f" GET {h.path} failed</html>").encode()),
    "url-encoded key with + for the space, in a JSON error":
        lambda h: reply(h, 500, json.dumps({"Error Message": f"bad key {quote_plus(API_KEY)}"}).encode()),
    "lower-case percent encoding":
        lambda h: reply(h, 500, json.dumps({"error": quote(API_KEY, safe="").replace("%2F", "%2f")}).encode()),
    "the key in other case":
        lambda h: reply(h, 500, json.dumps({"error": f"KEY {API_KEY.upper()} UNKNOWN"}).encode()),
    "json-escaped key (slash as \\/)":
        lambda h: reply(h, 500, ('{"message": "key ' + API_KEY.replace("/", "\\/") + ' refused"}').encode()),
    "html-escaped key in a 403":
        lambda h: reply(h, 403, f"<p>key &quot;{API_KEY}&quot; is not valid</p>".encode()),
    "key in a 404 body with a long prefix":
        lambda h: reply(h, 404, (" " * 200 + f"no route {h.path}").encode()),
    "key in response headers":
        lambda h: reply(h, 500, b"{}", {"X-Request-Url": h.path, "X-Api-Key": API_KEY}),
    "error JSON with status 200 echoing the raw key":
        lambda h: reply(h, 200, json.dumps({"Error Message": f"Invalid API KEY: {API_KEY}"}).encode()),
    "truncated JSON whose body echoes the key":
        lambda h: reply(h, 200, ('{"symbol": "AAA", "url": "' + h.path + '", "historical": [').encode()),
}


@pytest.mark.parametrize("case", sorted(ECHOES))
def test_key_is_masked_in_every_echo(case, messages):
    with Server(ECHOES[case]) as server:
        error = fails(lambda: provider(server.url).prices(["AAA"], START, END))
    text = messages(error)
    assert key_fragments(text) == [], f"{case}: key fragments leaked: {key_fragments(text)}"
    assert "historical-price-full/AAA for symbol AAA" in str(error)
    assert error.symbol == "AAA"


def test_masking_happens_before_the_message_is_cut(messages):
    """A snippet is the first 120 characters: the key sitting across that boundary must not
    leave its first half behind."""
    def behaviour(h: BaseHTTPRequestHandler) -> None:
        reply(h, 200, ("<" + "y" * 105 + API_KEY + "z" * 50).encode())

    with Server(behaviour) as server:
        error = fails(lambda: provider(server.url).prices(["AAA"], START, END))
    text = messages(error)
    assert "not valid JSON" in str(error) and "***" in str(error)
    assert key_fragments(text) == []


def test_redirect_to_another_host_is_not_followed(messages):
    """The key is in the URL: following a redirect to another host would hand it over."""
    with Server(lambda h: reply(h, 200, json.dumps(BARS).encode())) as other:
        target = other.url.replace("127.0.0.1", "localhost")

        def behaviour(h: BaseHTTPRequestHandler) -> None:
            h.send_response(302)
            h.send_header("Location", target + h.path)
            h.send_header("Content-Length", "0")
            h.end_headers()

        with Server(behaviour) as server:
            error = fails(lambda: provider(server.url).prices(["AAA"], START, END))
        assert other.seen == [], "the other host must never receive the request (and the key)"
    text = messages(error)
    assert "redirected to another host (localhost, HTTP 302)" in str(error)
    assert key_fragments(text) == []


def test_redirect_on_the_same_host_is_followed():
    def behaviour(h: BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/moved"):
            reply(h, 200, json.dumps(BARS).encode())
            return
        h.send_response(301)
        h.send_header("Location", "/moved" + h.path)
        h.send_header("Content-Length", "0")
        h.end_headers()

    with Server(behaviour) as server:
        frame = provider(server.url).prices(["AAA"], START, END)
    assert list(frame["close"]) == [10.5]
    assert len(server.seen) == 2 and server.seen[1].startswith("/moved/api/v3/historical-price-full/AAA")


def test_redirect_loop_reports_without_the_key(messages):
    def behaviour(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", h.path)  # the same URL, key included, forever
        h.send_header("Content-Length", "0")
        h.end_headers()

    with Server(behaviour) as server:
        error = fails(lambda: provider(server.url).prices(["AAA"], START, END))
    assert "HTTP 30" in str(error)
    assert key_fragments(messages(error)) == []


# --- time limits that bound time -------------------------------------------------------------


def drip(body: bytes, every: float, headers_too: bool = False) -> Behaviour:
    """Sends `body` a byte at a time (optionally the status line and headers as well)."""
    def behaviour(h: BaseHTTPRequestHandler) -> None:
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        if headers_too:
            payload = head + body
        else:
            h.wfile.write(head)
            h.wfile.flush()
            payload = body
        for i in range(len(payload)):
            h.wfile.write(payload[i:i + 1])
            h.wfile.flush()
            time.sleep(every)
        h.close_connection = True

    return behaviour


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "status line and headers"])
def test_a_dripping_server_is_cut_off_at_the_deadline(headers_too, messages):
    """Each byte arrives well within the 0.5 s timeout, but the whole reply would take
    ~15 s: the deadline applies to the attempt as a whole."""
    body = json.dumps(BARS).encode()
    with Server(drip(body, every=0.1, headers_too=headers_too)) as server:
        started = time.monotonic()
        error = fails(lambda: provider(server.url, timeout=0.5, max_attempts=2).prices(["AAA"], START, END))
        took = time.monotonic() - started
    assert "giving up after 2 attempts; last: timed out after 0.5 s" in str(error)
    # two attempts of 0.5 s each plus a short backoff: far from the drip's ~15 s per attempt
    assert took < 5.0, f"the deadline did not bound the request: {took:.1f} s"
    assert key_fragments(messages(error)) == []


def test_the_run_deadline_stops_new_requests():
    """Every single attempt is within its timeout, yet the provider's run as a whole has a
    budget: once it is spent no request starts."""
    def slow(h: BaseHTTPRequestHandler) -> None:
        time.sleep(0.3)
        reply(h, 200, json.dumps({**BARS, "symbol": h.path.rsplit("/", 1)[-1].split("?")[0]}).encode())

    symbols = [f"S{i:02d}" for i in range(20)]
    with Server(slow) as server:
        p = FmpMarketDataProvider(API_KEY, symbols=symbols, base_url=server.url, timeout=2.0, run_deadline=1.0,
                                  max_attempts=1, calls_per_minute=100_000, corporate_actions=False)
        error = fails(lambda: p.prices(symbols, START, END))
        served = len(server.seen)
    assert "fmp run deadline of 1 s" in str(error)
    assert 2 <= served < len(symbols), f"{served} requests were made"


def test_unreachable_server_is_bounded_by_the_deadline():
    """A listener that accepts connections but never answers (a black hole)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        error = fails(lambda: provider(url, timeout=0.3, max_attempts=2).prices(["AAA"], START, END))
        took = time.monotonic() - started
    finally:
        listener.close()
    assert "timed out after 0.3 s" in str(error)
    assert took < 5.0


@pytest.mark.parametrize("option, value", [("timeout", 0), ("timeout", -1.0), ("run_deadline", 0)])
def test_non_positive_time_limits_are_refused(option, value):
    with pytest.raises(ValueError, match=f"{option} must be a positive number of seconds"):
        provider("http://127.0.0.1:9", **{option: value})


# --- one symbol's unusable answer holds out that symbol only; a failing server ends the load --

def by_symbol(bad: str, body: bytes, status: int = 200) -> Behaviour:
    """Good bars / a profile for every symbol, `body` (with `status`) for `bad`'s requests."""
    def behave(handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        if path.rstrip("/").endswith(f"/{bad}"):
            reply(handler, status, body)
        elif "/profile/" in path:
            symbol = path.rstrip("/").rsplit("/", 1)[-1]
            reply(handler, 200, json.dumps([{"companyName": symbol, "sector": "Tech", "ipoDate": "2000-01-03"}]).encode())
        else:
            symbol = path.rstrip("/").rsplit("/", 1)[-1]
            reply(handler, 200, json.dumps({**BARS, "symbol": symbol}).encode())
    return behave


@pytest.mark.parametrize("body", [b'{"unexpected": {"shape": 1}}', b'"a bare string"', b"[1, 2, 3]"],
                         ids=["object without historical", "a string", "a list of numbers"])
def test_one_symbols_unusable_prices_hold_out_that_symbol_only(body):
    with Server(by_symbol("BBB", body)) as server:
        load = provider(server.url).load_prices(["AAA", "BBB", "CCC"], START, END)
    assert sorted(load.frame["symbol"]) == ["AAA", "CCC"]  # the good rows are kept
    assert list(load.rejected["symbol"]) == ["BBB"]
    reason = load.rejected["reason"].iloc[0]
    assert "historical-price-full/BBB" in reason and "unexpected payload" in reason
    assert load.rejected["dataset"].iloc[0] == "prices" and load.rejected["day"].iloc[0] is None
    assert not key_fragments(reason + repr(load.rejected["raw"].iloc[0]))


def test_one_symbols_unusable_profile_leaves_it_out_of_the_universe():
    with Server(by_symbol("BBB", b'{"profile": "gone"}')) as server:
        fmp = provider(server.url)
        fmp.symbols = ["AAA", "BBB", "CCC"]
        load = fmp.load_universe(END)
        with pytest.raises(ProviderError, match="profile/BBB"):
            fmp.universe(END)  # the strict call still says what is wrong
    assert list(load.frame["symbol"]) == ["AAA", "CCC"]
    assert list(load.rejected["symbol"]) == ["BBB"] and load.rejected["dataset"].iloc[0] == "universe"


@pytest.mark.parametrize("status, body", [
    (401, b'{"Error Message": "Invalid API KEY."}'),
    (200, b'{"Error Message": "Limit Reach. Please upgrade your plan."}'),
    (503, b"down for maintenance"),
], ids=["401", "error message with 200", "503 after retries"])
def test_a_failing_server_is_not_blamed_on_a_symbol(status, body, messages):
    """A server-wide failure on one symbol's request ends the load with a clear error: it
    does not quarantine the symbol (which would hide an outage or a revoked key)."""
    with Server(by_symbol("BBB", body, status)) as server:
        error = fails(lambda: provider(server.url).load_prices(["AAA", "BBB", "CCC"], START, END))
    text = messages(error)
    assert "BBB" in str(error) and not key_fragments(text)
