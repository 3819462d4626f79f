"""VFR's Redis cache format: the envelope, a writer and a reader with VFR's exact semantics.

VFR (ioredis with `keyPrefix`) stores every value as the JSON of
`{"data", "timestamp" (ms, written at), "ttl" (s), "source", "version"}` and treats an entry
as expired when `now - timestamp > ttl * 1000`, whatever Redis' own expiry says. Its
prediction and feature-vector readers look at `{key}:meta` first and, when that says
`compressed`, read `{key}:compressed` (an envelope whose data is the base64 of the payload's
JSON) instead of the plain key.

`publish` writes a whole set in one MULTI/EXEC (readers see the old set or the new one, never
a mix), validates every entry before sending anything, and retries connection failures by
re-sending the whole transaction. The design and its limits are in docs/serving.md.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
import redis.connection
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from vfr_ml_pipelines.lib.horizons import VFR_CACHE_HORIZONS

PREDICTION_KEY = "vfr:ml:prediction:{symbol}:{horizon}:{model_id}"
FEATURE_VECTOR_KEY = "vfr:ml:feature:vector:{symbol}"
MODEL_METADATA_KEY = "vfr:ml:model:metadata:{model_id}"
ENHANCEMENT_STATUS_KEY = "vfr:ml:enhancement:status"
# VFR's own writers compress payloads whose JSON is longer than this
COMPRESSION_THRESHOLD = 8192

SOURCE = "vfr-ml-pipelines"


def prediction_key(symbol: str, horizon: str, model_id: str) -> str:
    return PREDICTION_KEY.format(symbol=symbol.upper(), horizon=horizon, model_id=model_id)


def feature_vector_key(symbol: str) -> str:
    return FEATURE_VECTOR_KEY.format(symbol=symbol.upper())


def model_metadata_key(model_id: str) -> str:
    return MODEL_METADATA_KEY.format(model_id=model_id)


class MalformedEntryError(ValueError):
    """A value VFR's `JSON.parse` would reject. In VFR one such entry marks Redis as
    unavailable for the whole process, so it is never written and always reported."""


def _reject_constant(token: str) -> Any:
    raise MalformedEntryError(f"{token} is not valid JSON (JavaScript's JSON.parse rejects it)")


def parse_js_json(raw: str | bytes) -> Any:
    """Parse like JavaScript's JSON.parse: NaN, Infinity and -Infinity are errors."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise MalformedEntryError(f"not valid JSON: {exc}") from exc


# one encoder for every call: json.dumps with options builds a new one each time
_JS_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def _strict_json(value: Any) -> str:
    try:
        return _JS_ENCODER.encode(value)
    except ValueError as exc:
        raise MalformedEntryError(f"payload holds a non-finite number: {exc}") from exc


def encode_js_json(value: Any) -> bytes:
    """UTF-8 JSON that JavaScript's JSON.parse accepts; refuses NaN and Infinity instead of
    writing them.

    orjson writes it (about 5x the stdlib's speed; encoding is most of a publish's cost). It
    writes a non-finite float as `null` instead of refusing it, so any output that holds
    `null` (a None, or a NaN in disguise), and any value orjson declines (non-string keys,
    integers over 64 bits, numpy scalars), is encoded again by the strict stdlib encoder,
    which raises on NaN and Infinity. Our payloads hold no None, so that path is rare."""
    try:
        out = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        out = None
    if out is None or b"null" in out:
        return _strict_json(value).encode("utf-8")
    return out


def dumps_js_json(value: Any) -> str:
    """`encode_js_json` as text."""
    return encode_js_json(value).decode("utf-8")


def encode_entry(data: Any, *, now_ms: int, ttl: int, version: str, source: str = SOURCE) -> str:
    if int(ttl) <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl}")
    return dumps_js_json({"data": data, "timestamp": int(now_ms), "ttl": int(ttl), "source": source, "version": version})


def validate_entry(raw: str | bytes) -> dict[str, Any]:
    """Strict check of one stored value: valid JS JSON in the full envelope shape."""
    entry = parse_js_json(raw)
    if not isinstance(entry, dict):
        raise MalformedEntryError(f"envelope must be a JSON object, got {type(entry).__name__}")
    for name, kinds in (("data", object), ("timestamp", (int, float)), ("ttl", (int, float)), ("source", str), ("version", str)):
        if name not in entry:
            raise MalformedEntryError(f"envelope lacks {name!r}")
        if not isinstance(entry[name], kinds) or isinstance(entry[name], bool):
            raise MalformedEntryError(f"envelope field {name!r} has type {type(entry[name]).__name__}")
    return entry


@dataclass(frozen=True)
class CacheWrite:
    """One VFR cache entry to write: the key without prefix, the payload, its TTL."""

    key: str
    data: Any
    ttl: int
    compressible: bool = True


@dataclass
class PublishReport:
    written: int = 0
    compressed: int = 0
    deleted: int = 0
    bytes: int = 0
    keys: list[str] = field(default_factory=list)
    # transactions sent until each was applied (1 per transaction when each first try was)
    attempts: int = 0
    transactions: int = 0  # applied


# ----------------------------------------------------------------------------- sending


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


# ----------------------------------------------------------------------------- publishing


@dataclass
class _Plan:
    # per entry: its SETs (key, value, ttl) and the keys that go with it (a stale compressed
    # pair, or the plain key of a compressed entry)
    entries: list[tuple[list[tuple[str, bytes, int]], list[str]]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # deleted keys with their pairs

    @property
    def sets(self) -> list[tuple[str, bytes, int]]:
        return [write for writes, _ in self.entries for write in writes]

    def transactions(self, max_entries: int | None = None, batch: int = 1000) -> list[list[tuple[Any, ...]]]:
        """The commands as one transaction, or as several of at most `max_entries` entries
        each: an entry's SETs and its unlinks always share one, and the stale keys go with
        the last. Deletions first, then writes: inside a MULTI/EXEC the order is invisible."""
        if max_entries is None or len(self.entries) <= max_entries:
            groups = [self.entries]
        else:
            groups = [self.entries[i : i + max_entries] for i in range(0, len(self.entries), max_entries)]
        out: list[list[tuple[Any, ...]]] = []
        for number, group in enumerate(groups, start=1):
            unlink = [key for _, keys in group for key in keys]
            if number == len(groups):
                unlink.extend(self.stale)
            commands: list[tuple[Any, ...]] = [("UNLINK", *unlink[i : i + batch]) for i in range(0, len(unlink), batch)]
            commands.extend(("SET", key, value, "EX", ttl) for writes, _ in group for key, value, ttl in writes)
            if commands:
                out.append(commands)
        return out

    def commands(self) -> list[tuple[Any, ...]]:
        """Everything in one transaction."""
        return [command for transaction in self.transactions() for command in transaction]


def _payload_json(write: CacheWrite) -> bytes:
    try:
        return encode_js_json(write.data)
    except MalformedEntryError as exc:
        raise MalformedEntryError(f"{write.key}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise MalformedEntryError(f"{write.key}: payload is not JSON-serialisable: {exc}") from None


def _envelope(data_json: bytes, tail: bytes) -> bytes:
    """The envelope around already-serialised data: the same bytes as `encode_entry`
    without serialising the payload a second time."""
    return b'{"data":' + data_json + tail


def _plan_publish(
    prefix: str,
    writes: Sequence[CacheWrite],
    deletes: Iterable[str],
    *,
    version: str,
    now_ms: int,
    compression_threshold: int | None,
    keep_plain_copy: bool,
    report: PublishReport,
) -> _Plan:
    """Encode (and so validate) every entry before anything is sent."""
    plan = _Plan()
    seen: set[str] = set()
    source_json, version_json = encode_js_json(SOURCE), encode_js_json(version)
    for write in writes:
        if not isinstance(write.key, str) or not write.key:
            raise ValueError(f"a CacheWrite needs a non-empty string key, got {write.key!r}")
        if write.key in seen:
            raise ValueError(f"{write.key} is written twice in one publish")
        seen.add(write.key)
        ttl = int(write.ttl)
        if ttl <= 0:
            raise ValueError(f"{write.key}: ttl must be a positive number of seconds, got {write.ttl}")
        tail = b',"timestamp":%d,"ttl":%d,"source":%s,"version":%s}' % (now_ms, ttl, source_json, version_json)
        payload = _payload_json(write)
        key = prefix + write.key
        if write.compressible and compression_threshold is not None and len(payload) > compression_threshold:
            encoded = base64.b64encode(payload)  # base64 needs no JSON escaping
            meta = {"compressed": True, "originalSize": len(payload), "compressedSize": len(encoded)}
            sets = [(f"{key}:compressed", _envelope(b'"' + encoded + b'"', tail), ttl),
                    (f"{key}:meta", _envelope(encode_js_json(meta), tail), ttl)]
            unlink: list[str] = []
            if keep_plain_copy:
                sets.append((key, _envelope(payload, tail), ttl))
            else:
                unlink.append(key)
            report.compressed += 1
        else:
            sets = [(key, _envelope(payload, tail), ttl)]
            # a stale compressed pair from an earlier large write would shadow this value
            unlink = [f"{key}:meta", f"{key}:compressed"]
        plan.entries.append((sets, unlink))
        report.written += 1
        report.keys.append(write.key)
    stale = list(deletes)
    for key in stale:
        if key in seen:
            raise ValueError(f"{key} is both written and deleted in one publish")
        # a key is gone for VFR only when its compressed pair is gone too
        plan.stale.extend((prefix + key, f"{prefix}{key}:meta", f"{prefix}{key}:compressed"))
    report.deleted = len(stale)
    report.bytes = sum(len(value) for _, value, _ in plan.sets)
    return plan


def publish(
    client: redis.Redis,
    prefix: str,
    writes: Sequence[CacheWrite],
    *,
    version: str,
    deletes: Iterable[str] = (),
    now_ms: int | None = None,
    compression_threshold: int | None = COMPRESSION_THRESHOLD,
    keep_plain_copy: bool = False,
    max_entries_per_transaction: int | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    socket_timeout: float | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> PublishReport:
    """Write entries and delete keys in one MULTI/EXEC transaction, so a reader sees either
    everything before or everything after.

    - Every value is serialised (and so validated) before anything is sent: a payload with
      NaN or a non-JSON value raises MalformedEntryError naming the key and writes nothing.
    - A payload over `compression_threshold` characters is stored as VFR's own writer stores
      it (`{key}:compressed` + `{key}:meta`); a plain write removes a stale pair; a deleted
      key loses its pair too. `keep_plain_copy` also writes the plain key of a compressed
      entry, which closes a reader race (docs/serving.md) at the cost of memory.
    - Redis runs nothing else while it applies a transaction (about 1 us per entry), so
      readers wait for it. `max_entries_per_transaction` trades the set-wide switch for
      shorter waits: several transactions of at most that many entries, each entry still
      whole with its companions, the stale deletions in the last; until the last one is
      applied, readers can see new entries beside previous ones (docs/serving.md).
    - Connection failures and timeouts are retried per `retry`, re-sending the whole (same,
      idempotent) transaction on a fresh connection with `socket_timeout` (the client's own,
      else DEFAULT_SOCKET_TIMEOUT); when all attempts fail, PublishError says what, where,
      how often and why (and, when split, how many transactions had been applied).
    """
    if max_entries_per_transaction is not None and (
        isinstance(max_entries_per_transaction, bool) or int(max_entries_per_transaction) < 1
    ):
        raise ValueError(f"max_entries_per_transaction must be None or at least 1, got {max_entries_per_transaction!r}")
    now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    report = PublishReport()
    plan = _plan_publish(
        prefix, writes, deletes, version=version, now_ms=now_ms, compression_threshold=compression_threshold,
        keep_plain_copy=keep_plain_copy, report=report,
    )
    transactions = plan.transactions(max_entries_per_transaction)
    what = f"publishing {report.written:,} entr{'y' if report.written == 1 else 'ies'} ({report.bytes:,} bytes)"
    if report.deleted:
        what += f" and {report.deleted:,} deletion{'' if report.deleted == 1 else 's'}"
    for number, commands in enumerate(transactions, start=1):
        part = what if len(transactions) == 1 else f"{what}, transaction {number} of {len(transactions)}"
        try:
            _, attempts = run_transaction(
                client, commands, what=part, retry=retry, socket_timeout=socket_timeout, on_retry=on_retry
            )
        except PublishError as exc:
            if number == 1:
                raise
            raise PublishError(
                f"{exc} {number - 1} of {len(transactions)} transactions of this publish had been applied before it: "
                "until a publish succeeds, readers see their new entries beside the previous ones of the rest.",
                what=exc.what, server=exc.server, attempts=exc.attempts, last_error=exc.last_error,
                maybe_applied=exc.maybe_applied,
            ) from None
        report.attempts += attempts
        report.transactions += 1
    return report


def scan_keys(client: redis.Redis, pattern: str, count: int = 1000) -> list[str]:
    return sorted(k.decode() if isinstance(k, bytes) else k for k in client.scan_iter(match=pattern, count=count))


class VfrCacheReader:
    """Reads exactly as VFR does (RedisCache.get plus MLCacheService's compressed path).

    A value VFR's JSON.parse would reject raises MalformedEntryError (in VFR it turns every
    later read of the process into a miss). Expired entries are deleted, as VFR does, unless
    `delete_expired` is False.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "veritak:mcp:",
        *,
        delete_expired: bool = True,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.delete_expired = delete_expired
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))

    def get(self, key: str) -> Any:
        raw = self.client.get(self.prefix + key)
        if not raw:
            return None
        entry = parse_js_json(raw)
        if not isinstance(entry, dict):
            return None
        timestamp, ttl = entry.get("timestamp"), entry.get("ttl")
        # JavaScript compares NaN (from a missing field) as false: such entries never expire
        if isinstance(timestamp, (int, float)) and isinstance(ttl, (int, float)):
            if self.clock_ms() - timestamp > ttl * 1000:
                if self.delete_expired:
                    self.client.delete(self.prefix + key)
                return None
        return entry.get("data")

    def _get_maybe_compressed(self, key: str) -> Any:
        meta = self.get(f"{key}:meta")
        if isinstance(meta, dict) and meta.get("compressed"):
            compressed = self.get(f"{key}:compressed")
            if compressed:
                try:
                    return parse_js_json(base64.b64decode(str(compressed)).decode("utf-8"))
                except (MalformedEntryError, ValueError):
                    # VFR's ML cache catches this one and reports a miss
                    return None
        value = self.get(key)
        return value or None

    def prediction(self, symbol: str, horizon: str = "1w", model_id: str = "default") -> dict[str, Any] | None:
        return self._get_maybe_compressed(prediction_key(symbol, horizon, model_id))

    def feature_vector(self, symbol: str) -> dict[str, Any] | None:
        return self._get_maybe_compressed(feature_vector_key(symbol))

    def model_metadata(self, model_id: str) -> dict[str, Any] | None:
        return self.get(model_metadata_key(model_id)) or None

    def enhancement_status(self) -> dict[str, Any] | None:
        return self.get(ENHANCEMENT_STATUS_KEY) or None


def validate_prediction(payload: Any) -> list[str]:
    """Problems that would make `payload` not a valid `MLPrediction` (empty when valid)."""
    problems: list[str] = []
    if not isinstance(payload, dict):
        return [f"not an object: {type(payload).__name__}"]

    def need(obj: dict[str, Any], name: str, kinds: Any, where: str) -> Any:
        if name not in obj:
            problems.append(f"{where}{name} missing")
            return None
        value = obj[name]
        if not isinstance(value, kinds) or isinstance(value, bool) and kinds is not bool:
            problems.append(f"{where}{name} has type {type(value).__name__}")
            return None
        return value

    symbol = need(payload, "symbol", str, "")
    if symbol is not None and symbol != symbol.upper():
        problems.append("symbol is not upper case")
    need(payload, "modelId", str, "")
    need(payload, "modelVersion", str, "")
    if payload.get("horizon") not in VFR_CACHE_HORIZONS:
        problems.append(f"horizon {payload.get('horizon')!r} is not a VFR horizon")
    stamp = need(payload, "timestamp", (int, float), "")
    expires = need(payload, "expiresAt", (int, float), "")
    if stamp is not None and expires is not None and expires <= stamp:
        problems.append("expiresAt is not after timestamp")
    prediction = need(payload, "prediction", dict, "")
    if prediction is not None:
        if prediction.get("direction") not in ("BUY", "SELL", "HOLD"):
            problems.append(f"prediction.direction {prediction.get('direction')!r}")
        for name in ("confidence", "probability"):
            value = need(prediction, name, (int, float), "prediction.")
            if value is not None and not 0 <= value <= 1:
                problems.append(f"prediction.{name} {value} outside 0..1")
        value = need(prediction, "expectedReturn", (int, float), "prediction.")
        if value is not None and not math.isfinite(value):
            problems.append("prediction.expectedReturn is not finite")
    features = need(payload, "features", dict, "")
    if features is not None:
        names = need(features, "featureNames", list, "features.")
        values = need(features, "features", dict, "features.")
        if names is not None and values is not None and set(names) != set(values):
            problems.append("features.featureNames does not match features.features")
        for name in ("completeness", "qualityScore"):
            value = need(features, name, (int, float), "features.")
            if value is not None and not 0 <= value <= 1:
                problems.append(f"features.{name} {value} outside 0..1")
    return problems
