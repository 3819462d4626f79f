"""Sending commands to Redis as one MULTI/EXEC, with retries that say what happened.

`run_transaction` packs the commands in RESP itself (redis-py's generic packer costs as much
as encoding the payloads), sends them on a fresh connection per attempt and re-sends the whole
transaction after a connection failure or timeout per a `RetryPolicy`; when all attempts fail,
`PublishError` says what, where, how often and whether the server might still apply it.
Nothing here knows VFR's formats (vfr_writer.py and kill_switch.py build the commands).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.connection
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transaction is re-sent after a connection failure or
    timeout: `attempts` in all, waiting base_delay, 2 x base_delay, 4 x ... (at most
    `max_delay`) between them. Deterministic (no jitter): there is one publisher."""

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError(
                f"RetryPolicy needs 0 <= base_delay <= max_delay, got base_delay={self.base_delay} max_delay={self.max_delay}"
            )

    def delay_after(self, failed_attempts: int) -> float:
        """Seconds to wait after the `failed_attempts`-th failure (1-based)."""
        return min(self.max_delay, self.base_delay * 2 ** (failed_attempts - 1))


DEFAULT_RETRY = RetryPolicy()
# used when the client has no socket timeout of its own: a hung server must not block forever
DEFAULT_SOCKET_TIMEOUT = 5.0
# BusyLoadingError (a server still loading its dataset) is a redis.ConnectionError
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
# ... but a wrong password or a missing permission does not heal by waiting
NOT_RETRYABLE_ERRORS: tuple[type[Exception], ...] = (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)


class PublishError(RuntimeError):
    """A transaction that could not be applied. Carries what was attempted, where, how
    often, the last error and whether the server might still apply it (see `maybe_applied`)."""

    def __init__(
        self, message: str, *, what: str, server: str, attempts: int, last_error: BaseException, maybe_applied: bool
    ) -> None:
        super().__init__(message)
        self.what = what
        self.server = server
        self.attempts = attempts
        self.last_error = last_error
        # True when a transaction reached the server in full but its answer never came back:
        # Redis then applies all of it (never a part), possibly after the caller gave up
        self.maybe_applied = maybe_applied


def server_label(client: redis.Redis) -> str:
    """Where `client` connects, as a URL with the password masked (for messages and logs)."""
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    username = kwargs.get("username") or ""
    if kwargs.get("password") or kwargs.get("credential_provider"):
        auth = f"{username}:***@"
    else:
        auth = f"{username}@" if username else ""
    db = kwargs.get("db", 0)
    if kwargs.get("path"):
        return f"unix://{auth}{kwargs['path']}?db={db}"
    scheme = "rediss" if issubclass(pool.connection_class, redis.SSLConnection) else "redis"
    return f"{scheme}://{auth}{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{db}"


def make_client(
    url: str, *, socket_timeout: float = DEFAULT_SOCKET_TIMEOUT, socket_connect_timeout: float = 2.0, **kwargs: Any
) -> redis.Redis:
    """A redis-py client with explicit timeouts (a hung server raises a TimeoutError after
    `socket_timeout` seconds instead of blocking) and periodic health checks of pooled
    connections. Any client works with `publish`; this one states the timeouts."""
    kwargs.setdefault("health_check_interval", 30)
    return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout, **kwargs)


def _fresh_connection(client: redis.Redis, socket_timeout: float | None) -> redis.connection.AbstractConnection:
    """A new connection with the client's settings (host or socket, TLS, credentials, db)
    but without redis-py's own retries (the caller's RetryPolicy is the only one, so
    `attempts` means attempts: redis-py 8 otherwise retries each command 10 times) and
    with a socket timeout even if the client has none."""
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs["retry"] = Retry(NoBackoff(), 0)
    if socket_timeout is not None:
        kwargs["socket_timeout"] = kwargs["socket_connect_timeout"] = socket_timeout
    if kwargs.get("socket_timeout") is None:
        kwargs["socket_timeout"] = DEFAULT_SOCKET_TIMEOUT
    if kwargs.get("socket_connect_timeout") is None:
        kwargs["socket_connect_timeout"] = kwargs["socket_timeout"]
    return pool.connection_class(**kwargs)


def _as_resp_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _resp_arg(value: Any) -> bytes:
    data = _as_resp_bytes(value)
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _pack_transaction(commands: Sequence[tuple[Any, ...]], chunk_bytes: int = 1 << 20) -> list[bytes]:
    """MULTI, the commands and EXEC in RESP, joined into chunks of about `chunk_bytes`.
    Written here rather than with redis-py's generic packer, which costs as much as the
    JSON encoding of the payloads; chunked because a socket timeout bounds each send call
    as a whole, so one 15 MB send on a slow link could time out while making progress."""
    chunks: list[bytes] = []
    pending: list[bytes] = []
    size = 0
    for command in (("MULTI",), *commands, ("EXEC",)):
        if len(command) == 5 and command[0] == "SET" and command[3] == "EX":
            # the bulk of a publish: one formatting operation per entry
            key, value, ttl = (_as_resp_bytes(command[1]), _as_resp_bytes(command[2]), _as_resp_bytes(command[4]))
            packed = b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nEX\r\n$%d\r\n%s\r\n" % (
                len(key), key, len(value), value, len(ttl), ttl,
            )
        else:
            packed = b"*%d\r\n" % len(command) + b"".join(_resp_arg(arg) for arg in command)
        pending.append(packed)
        size += len(packed)
        if size >= chunk_bytes:
            chunks.append(b"".join(pending))
            pending, size = [], 0
    if pending:
        chunks.append(b"".join(pending))
    return chunks


class _Attempt:
    """One try of a transaction on a fresh connection."""

    def __init__(self) -> None:
        self.sent_in_full = False

    def run(self, client: redis.Redis, commands: Sequence[tuple[Any, ...]], socket_timeout: float | None) -> list[Any]:
        conn = _fresh_connection(client, socket_timeout)
        try:
            conn.connect()
            # a round trip right before the transaction: a server that does not answer now
            # fails the attempt before any part of the transaction is on its way
            conn.send_command("PING")
            conn.read_response()
            conn.send_packed_command(_pack_transaction(commands), check_health=False)
            self.sent_in_full = True
            conn.read_response()  # +OK of MULTI
            queue_errors: list[redis.ResponseError] = []
            for _ in commands:
                try:
                    conn.read_response()  # +QUEUED
                except redis.ResponseError as exc:  # e.g. OOM: EXEC will then abort everything
                    queue_errors.append(exc)
            try:
                results = conn.read_response()
            except redis.exceptions.ExecAbortError:
                raise queue_errors[0] if queue_errors else redis.exceptions.ExecAbortError("EXEC aborted") from None
            if results is None:
                raise redis.exceptions.WatchError("EXEC returned nil")
            for result in results:
                if isinstance(result, Exception):
                    raise result
            return list(results)
        finally:
            conn.disconnect()


def run_transaction(
    client: redis.Redis,
    commands: Sequence[tuple[Any, ...]],
    *,
    what: str,
    retry: RetryPolicy = DEFAULT_RETRY,
    socket_timeout: float | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[Any], int]:
    """Apply `commands` (tuples like ("SET", key, value, "EX", 60)) in one MULTI/EXEC, on
    a fresh connection per attempt, re-sending the whole transaction after a connection
    failure or timeout as `retry` says. Returns (EXEC results, attempts used).

    Re-sending is safe for idempotent transactions (the same SETs with the same values, the
    same deletions). After the last attempt, or on an error that waiting cannot fix, raises
    PublishError (the redis-py exception is `last_error`; not chained, so the message is the
    whole story). `on_retry(failed_attempt, error, delay)` is called before each wait."""
    server = server_label(client)
    maybe_applied = False
    attempt = 0
    while True:
        attempt += 1
        current = _Attempt()
        try:
            return current.run(client, commands, socket_timeout), attempt
        except NOT_RETRYABLE_ERRORS as exc:
            error, retryable = exc, False
        except RETRYABLE_ERRORS as exc:
            error, retryable = exc, True
        except redis.RedisError as exc:
            error, retryable = exc, False
        maybe_applied = maybe_applied or (current.sent_in_full and retryable)
        if retryable and attempt < retry.attempts:
            delay = retry.delay_after(attempt)
            if on_retry is not None:
                on_retry(attempt, error, delay)
            sleep(delay)
            continue
        raise PublishError(
            _failure_message(what, server, attempt, error, retryable, maybe_applied),
            what=what, server=server, attempts=attempt, last_error=error, maybe_applied=maybe_applied,
        ) from None


def _failure_message(what: str, server: str, attempts: int, error: BaseException, retryable: bool, maybe_applied: bool) -> str:
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    why = "" if retryable else " (not retried: waiting does not fix this error)"
    if maybe_applied:
        state = (
            "The previous set was left intact unless Redis had received a whole transaction before its connection "
            "failed: MULTI/EXEC applies all of it or none of it, so readers see either the previous set or the new "
            "one, never a mix."
        )
    else:
        state = "No transaction reached the server in full, so nothing was applied: the previous set was left intact."
    return f"{what} to {server} failed after {tries}{why}; last error: {type(error).__name__}: {str(error).rstrip('.')}. {state}"



def scan_keys(client: redis.Redis, pattern: str, count: int = 1000) -> list[str]:
    return sorted(k.decode() if isinstance(k, bytes) else k for k in client.scan_iter(match=pattern, count=count))
