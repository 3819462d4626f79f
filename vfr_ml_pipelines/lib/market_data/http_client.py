"""A small JSON-over-HTTP client for keyed REST APIs: a token-bucket rate limit, bounded
retries with exponential backoff and jitter, and an API key that never leaves the request.

Built on the standard library (urllib) so the core adds no dependency. The key is sent as a
query parameter (FMP's convention) and every message this module produces, whether raised
or logged, passes through `redact`, including text echoed back by the server. Exceptions
from urllib are never chained into ours: they carry the full URL, key included.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

from vfr_ml_pipelines.lib.market_data.provider import ProviderError

log = logging.getLogger(__name__)

MASK = "***"
_SNIPPET_CHARS = 120


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


class JsonHttpClient:
    def __init__(
        self, base_url: str, *, api_key: str, provider: str, key_param: str = "apikey", timeout: float = 15.0,
        retry: RetryPolicy = RetryPolicy(), rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep, rng: Callable[[], float] = random.random,
    ):
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.provider = provider
        self.key_param = key_param
        self.timeout = timeout
        self.retry = retry
        self.rate_limiter = rate_limiter
        self._sleep = sleep
        self._rng = rng

    def __repr__(self) -> str:
        return f"JsonHttpClient(base_url={self.base_url!r}, api_key={MASK}, timeout={self.timeout})"

    def redact(self, text: str) -> str:
        key = self._api_key
        if not key:
            return text
        for form in {key, quote(key, safe=""), quote(key)}:
            text = text.replace(form, MASK)
        return text

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
            outcome = self._attempt(url)
            retry_after = None
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
            elif outcome.status >= 400:
                detail = self._server_message(outcome.body)
                raise ProviderError(f"{what}: HTTP {outcome.status}" + (f": {detail}" if detail else ""), symbol=symbol)
            else:
                return self._decode(outcome.body, what, symbol)
            if attempt < self.retry.max_attempts:
                delay = retry_after if retry_after is not None else self.retry.backoff(attempt, self._rng)
                log.warning(
                    "%s failed (%s); attempt %d of %d, retrying in %.2f s", what, last, attempt, self.retry.max_attempts, delay
                )
                self._sleep(delay)
        raise ProviderError(f"{what}: giving up after {self.retry.max_attempts} attempts; last: {last}", symbol=symbol)

    # --- one request, no exception escapes (they carry the URL) ---------------------------

    def _attempt(self, url: str) -> _Outcome:
        request = Request(url, headers={"Accept": "application/json", "User-Agent": "vfr-ml-pipelines"})
        try:
            with urlopen(request, timeout=self.timeout) as response:
                return _Outcome(response.status, response.headers, response.read())
        except HTTPError as error:
            try:
                body = error.read()
            except (OSError, http.client.HTTPException):
                body = b""
            return _Outcome(error.code, error.headers, body)
        except (TimeoutError, socket.timeout):
            return _Outcome(failure=f"timed out after {self.timeout:g} s")
        except URLError as error:
            if isinstance(error.reason, (TimeoutError, socket.timeout)):
                return _Outcome(failure=f"timed out after {self.timeout:g} s")
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
        text = body[:_SNIPPET_CHARS].decode("utf-8", errors="replace")
        return self.redact(" ".join(text.split()))


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
