"""A small JSON-over-HTTP client for keyed REST APIs: a token-bucket rate limit, bounded
retries with exponential backoff and jitter, time limits that really bound time, and an API
key that never leaves the request.

Built on the standard library (urllib) so the core adds no dependency.

* **The key.** It is sent as a query parameter (FMP's convention). Every message this module
  produces, whether raised or logged, passes through `redact` *before* it is cut to length
  (a key cut in half cannot be recognised any more), and `redact` masks every encoding a
  server may echo: raw, percent-encoded (upper or lower case hex, `+` or `%20` for a space),
  JSON- and HTML-escaped, and any `apikey=` query value. Exceptions from urllib are never
  chained into ours: they carry the full URL, key included. A redirect to another host is
  not followed: the key is part of the URL and would go to that host.
* **Time.** `timeout` is a deadline for a whole attempt (connection, headers and body), not
  a per-read inactivity timeout: a server that drips its reply a byte at a time is cut off
  when it passes. A watchdog shuts the attempt's socket down at the deadline, which wakes
  any blocked read. `run_deadline` bounds the client's whole life (every request and retry
  of one provider run): past it no request starts and a running one is cut off.
"""

from __future__ import annotations

import email.utils
import html
import http.client
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.error import HTTPError, URLError
from urllib.parse import quote, quote_plus, urlencode, urlsplit
from urllib.request import HTTPHandler, HTTPRedirectHandler, HTTPSHandler, Request, build_opener

from vfr_ml_pipelines.lib.market_data.provider import ProviderError

log = logging.getLogger(__name__)

MASK = "***"
_SNIPPET_CHARS = 120
# how much of a body is read to make a snippet: far more than the snippet, so the key is
# masked wherever it sits before the text is cut
_SNIPPET_SCAN_BYTES = 64 * 1024


class RateLimiter:
    """Token bucket: up to `calls` requests at once, refilled at `calls` per `per_seconds`.
    `acquire` blocks until a token is free; callers are served one at a time."""

    def __init__(
        self, calls: int, per_seconds: float = 60.0, *,
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
    ):
        if calls < 1 or per_seconds <= 0:
            raise ValueError(f"rate limit needs calls >= 1 and per_seconds > 0, got {calls} per {per_seconds}")
        self.calls = calls
        self.per_seconds = per_seconds
        self._rate = calls / per_seconds
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(calls)
        self._stamp = clock()
        self._lock = threading.Lock()
        self.acquired = 0
        self.waits = 0

    def acquire(self) -> float:
        """Take one token; returns the seconds waited for it."""
        with self._lock:
            now = self._clock()
            # the stamp may lie in the future after a wait: no tokens accrue before it
            self._tokens = min(self.calls, self._tokens + max(0.0, now - self._stamp) * self._rate)
            self._stamp = max(self._stamp, now)
            waited = 0.0
            if self._tokens >= 1.0:
                self._tokens -= 1.0
            else:
                waited = (1.0 - self._tokens) / self._rate
                # account in virtual time, so an imprecise sleep cannot mint extra tokens
                self._tokens = 0.0
                self._stamp += waited
                self.waits += 1
                self._sleep(waited)
            self.acquired += 1
            return waited


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    # a server asking us to wait longer than this is treated as asking us to stop
    max_retry_after_seconds: float = 120.0

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        """Exponential with "equal jitter": half fixed, half random, so that parallel
        clients that failed together do not retry together."""
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return ceiling / 2 + rng() * ceiling / 2


@dataclass
class _Outcome:
    status: int | None = None
    headers: Mapping[str, str] | None = None
    body: bytes = b""
    failure: str | None = None  # timeout or connection problem, already redacted
    redirect_host: str | None = None  # a redirect to another host, refused


class _Watchdog:
    """Shuts down every socket of one attempt when its deadline passes. A blocked
    `recv` wakes up (with EOF or an error) as soon as its socket is shut down, whatever the
    per-read timeout, so the deadline holds against a server that drips bytes."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired
        if fired:
            _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _WatchedConnections:
    """Mixin for urllib's HTTP(S) handlers: every connection they open registers its socket
    with the attempt's watchdog (redirects included)."""

    watchdog: _Watchdog

    def do_open(self, http_class, req, **kwargs):  # noqa: ANN001 (urllib's signature)
        watchdog = self.watchdog

        class Watched(http_class):  # type: ignore[misc, valid-type]
            def connect(self) -> None:
                super().connect()
                watchdog.watch(self.sock)

        return super().do_open(Watched, req, **kwargs)  # type: ignore[misc]


class _WatchedHTTPHandler(_WatchedConnections, HTTPHandler):
    def __init__(self, watchdog: _Watchdog):
        super().__init__()
        self.watchdog = watchdog


class _WatchedHTTPSHandler(_WatchedConnections, HTTPSHandler):
    def __init__(self, watchdog: _Watchdog):
        super().__init__()
        self.watchdog = watchdog


class _SameHostRedirects(HTTPRedirectHandler):
    """Follows redirects on the same host only: the URL carries the API key."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 (urllib's signature)
        target = urlsplit(newurl)
        if target.netloc and target.netloc != urlsplit(req.full_url).netloc:
            raise _RefusedRedirect(target.hostname or target.netloc, code)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _RefusedRedirect(Exception):
    def __init__(self, host: str, code: int):
        super().__init__(host, code)
        self.host = host
        self.code = code


class JsonHttpClient:
    def __init__(
        self, base_url: str, *, api_key: str, provider: str, key_param: str = "apikey", timeout: float = 15.0,
        run_deadline: float | None = None, retry: RetryPolicy = RetryPolicy(), rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep, rng: Callable[[], float] = random.random,
    ):
        if not timeout > 0:
            raise ValueError(f"{provider}: timeout must be a positive number of seconds, got {timeout!r}")
        if run_deadline is not None and not run_deadline > 0:
            raise ValueError(f"{provider}: run_deadline must be a positive number of seconds, got {run_deadline!r}")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        # case-insensitive: a key echoed in other case (or with lower-case hex) is still a leak
        self._key_forms = re.compile("|".join(map(re.escape, _encodings(api_key))), re.IGNORECASE) if api_key else None
        self._key_param = re.compile(rf"({re.escape(key_param)}=)[^&\s\"'<>]+", re.IGNORECASE)
        self.provider = provider
        self.key_param = key_param
        self.timeout = timeout
        self.run_deadline = run_deadline
        self._run_ends = None if run_deadline is None else time.monotonic() + run_deadline
        self.requests = 0
        self.retry = retry
        self.rate_limiter = rate_limiter
        self._sleep = sleep
        self._rng = rng

    def __repr__(self) -> str:
        return f"JsonHttpClient(base_url={self.base_url!r}, api_key={MASK}, timeout={self.timeout})"

    def redact(self, text: str) -> str:
        """`text` with every encoding of the key, and any `apikey=` value, masked. Call it
        before cutting a text to length."""
        if self._key_forms is None:
            return text
        return self._key_param.sub(rf"\g<1>{MASK}", self._key_forms.sub(MASK, text))

    def get(self, endpoint: str, params: Mapping[str, object] | None = None, *, symbol: str | None = None) -> object:
        """GET `base_url/endpoint` and return the decoded JSON. Raises ProviderError naming
        the endpoint, the symbol and the last status; never the key."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = f"{self.base_url}/{endpoint.lstrip('/')}?{urlencode({**query, self.key_param: self._api_key})}"
        what = f"{self.provider}: {endpoint}" + (f" for symbol {symbol}" if symbol else "")
        last = "no attempt made"
        for attempt in range(1, self.retry.max_attempts + 1):
            if self.rate_limiter is not None:
                self.rate_limiter.acquire()
            outcome = self._attempt(url, *self._attempt_seconds(what, symbol, last))
            retry_after = None
            if outcome.redirect_host is not None:
                raise ProviderError(
                    f"{what}: the server redirected to another host ({outcome.redirect_host}, HTTP {outcome.status}); "
                    "not followed, since the request carries the API key: check the base URL",
                    symbol=symbol,
                )
            if outcome.failure is not None:
                last = outcome.failure
            elif outcome.status in (401, 403):
                detail = self._server_message(outcome.body)
                raise ProviderError(
                    f"{what}: the API key was rejected (HTTP {outcome.status})" + (f": {detail}" if detail else ""),
                    symbol=symbol, field="apikey",
                )
            elif outcome.status == 429 or outcome.status >= 500:
                detail = self._server_message(outcome.body)
                last = f"HTTP {outcome.status}" + (f": {detail}" if detail else "")
                retry_after = _retry_after(outcome.headers)
                if retry_after is not None and retry_after > self.retry.max_retry_after_seconds:
                    raise ProviderError(
                        f"{what}: the server asks to wait {retry_after:.0f} s before retrying ({last}); giving up",
                        symbol=symbol,
                    )
            elif outcome.status >= 300:
                detail = self._server_message(outcome.body)
                raise ProviderError(f"{what}: HTTP {outcome.status}" + (f": {detail}" if detail else ""), symbol=symbol)
            else:
                return self._decode(outcome.body, what, symbol)
            if attempt < self.retry.max_attempts:
                delay = retry_after if retry_after is not None else self.retry.backoff(attempt, self._rng)
                remaining = self._run_remaining()
                if remaining is not None and delay >= remaining:
                    break  # the retry could not start before the run deadline
                log.warning(
                    "%s failed (%s); attempt %d of %d, retrying in %.2f s", what, last, attempt, self.retry.max_attempts, delay
                )
                self._sleep(delay)
        raise ProviderError(f"{what}: giving up after {self.retry.max_attempts} attempts; last: {last}", symbol=symbol)

    # --- time limits ----------------------------------------------------------------------

    def _run_remaining(self) -> float | None:
        return None if self._run_ends is None else self._run_ends - time.monotonic()

    def _attempt_seconds(self, what: str, symbol: str | None, last: str) -> tuple[float, bool]:
        """This attempt's deadline (the timeout, or what is left of the run if less) and
        whether the run's deadline is the one that binds. Raises once the run deadline has
        passed."""
        remaining = self._run_remaining()
        if remaining is None:
            return self.timeout, False
        if remaining <= 0:
            raise ProviderError(
                f"{what}: the {self.provider} run deadline of {self.run_deadline:g} s has passed after "
                f"{self.requests} request(s); no new request is started (last: {last})",
                symbol=symbol,
            )
        return min(self.timeout, remaining), remaining < self.timeout

    # --- one request, no exception escapes (they carry the URL) ---------------------------

    def _attempt(self, url: str, seconds: float, run_bound: bool = False) -> _Outcome:
        self.requests += 1
        request = Request(url, headers={"Accept": "application/json", "User-Agent": "vfr-ml-pipelines"})
        with _Watchdog(seconds) as watchdog:
            opener = build_opener(_WatchedHTTPHandler(watchdog), _WatchedHTTPSHandler(watchdog), _SameHostRedirects())
            outcome = self._exchange(opener, request, seconds)
        timed_out = outcome.failure is not None and outcome.failure.startswith("timed out")
        if watchdog.fired and (outcome.failure is not None or outcome.status is None or outcome.status < 300):
            # whatever the read saw (EOF, a reset, a partial body), the cause is the deadline
            timed_out = True
            outcome = _Outcome(failure=f"timed out after {seconds:g} s (the whole reply must arrive within it)")
        if timed_out and run_bound:
            return _Outcome(failure=f"the {self.provider} run deadline of {self.run_deadline:g} s passed during the request")
        return outcome

    def _exchange(self, opener, request: Request, seconds: float) -> _Outcome:  # noqa: ANN001 (urllib's opener)
        try:
            with opener.open(request, timeout=seconds) as response:
                return _Outcome(response.status, response.headers, response.read())
        except _RefusedRedirect as refused:
            return _Outcome(status=refused.code, redirect_host=refused.host)
        except HTTPError as error:
            try:
                body = error.read()
            except (OSError, http.client.HTTPException):
                body = b""
            return _Outcome(error.code, error.headers, body)
        except (TimeoutError, socket.timeout):
            return _Outcome(failure=f"timed out after {seconds:g} s")
        except URLError as error:
            if isinstance(error.reason, (TimeoutError, socket.timeout)):
                return _Outcome(failure=f"timed out after {seconds:g} s")
            if isinstance(error.reason, _RefusedRedirect):
                return _Outcome(status=error.reason.code, redirect_host=error.reason.host)
            return _Outcome(failure=self.redact(f"connection failed: {error.reason}"))
        except (OSError, http.client.HTTPException) as error:
            return _Outcome(failure=self.redact(f"connection failed: {type(error).__name__}: {error}"))

    def _decode(self, body: bytes, what: str, symbol: str | None) -> object:
        problem = None
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            problem = f"{type(error).__name__}: {getattr(error, 'msg', error)}"
        if problem is not None:
            raise ProviderError(
                f"{what}: the response is not valid JSON ({problem}; {len(body)} bytes starting "
                f"{self._snippet(body)!r}); the body was truncated or is an error page",
                symbol=symbol,
            )
        message = _error_message(payload)
        if message is not None:
            raise ProviderError(f"{what}: the server reported an error: {self.redact(message)}", symbol=symbol)
        return payload

    def _server_message(self, body: bytes) -> str:
        try:
            message = _error_message(json.loads(body.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            message = None
        if message is None:
            message = self._snippet(body) if body.strip() else ""
        return self.redact(message)[:300]

    def _snippet(self, body: bytes) -> str:
        # redact first, cut after: a key cut at the edge would no longer be recognised
        text = body[:_SNIPPET_SCAN_BYTES].decode("utf-8", errors="replace")
        return self.redact(" ".join(text.split()))[:_SNIPPET_CHARS]


def _encodings(key: str) -> list[str]:
    """Every form in which a server may echo `key`, longest first (so that a form
    containing another is masked whole)."""
    if not key:
        return []
    forms = {key, html.escape(key), json.dumps(key)[1:-1], json.dumps(key, ensure_ascii=False)[1:-1]}
    for encode in (quote, quote_plus):
        for safe in ("", "/"):
            forms.add(encode(key, safe=safe))
    return sorted(forms, key=len, reverse=True)


def _error_message(payload: object) -> str | None:
    """FMP's error payloads: {"Error Message": ...} (invalid key, bad endpoint; often with
    HTTP 200), {"message": "Limit Reach ..."} and {"error": ...}."""
    if not isinstance(payload, dict):
        return None
    for key in ("Error Message", "error", "message"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            # a data payload may carry a "message" next to its data; only a bare one is an error
            if key == "message" and len(payload) > 2:
                continue
            return value.strip()
    return None


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
