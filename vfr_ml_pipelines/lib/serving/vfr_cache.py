"""VFR's Redis cache format: the envelope, a writer and a reader with VFR's exact semantics.

VFR (ioredis with `keyPrefix`) stores every value as the JSON of
`{"data", "timestamp" (ms, written at), "ttl" (s), "source", "version"}` and treats an entry
as expired when `now - timestamp > ttl * 1000`, whatever Redis' own expiry says. Its
prediction and feature-vector readers look at `{key}:meta` first and, when that says
`compressed`, read `{key}:compressed` (an envelope whose data is the base64 of the payload's
JSON) instead of the plain key.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

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


def dumps_js_json(value: Any) -> str:
    """Serialize for JSON.parse; refuses NaN and Infinity instead of writing them."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except ValueError as exc:
        raise MalformedEntryError(f"payload holds a non-finite number: {exc}") from exc


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


def publish(
    client: redis.Redis,
    prefix: str,
    writes: Sequence[CacheWrite],
    *,
    version: str,
    deletes: Iterable[str] = (),
    now_ms: int | None = None,
    compression_threshold: int | None = COMPRESSION_THRESHOLD,
) -> PublishReport:
    """Write entries and delete keys in one MULTI/EXEC transaction, so a reader sees either
    everything before or everything after. Every value is serialised (and so validated)
    before anything is sent: a payload with NaN fails the publish and writes nothing."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    report = PublishReport()
    commands: list[tuple[str, tuple[Any, ...]]] = []
    for write in writes:
        payload = dumps_js_json(write.data)
        key = prefix + write.key
        if write.compressible and compression_threshold is not None and len(payload) > compression_threshold:
            encoded = base64.b64encode(payload.encode("utf-8")).decode("ascii")
            meta = {"compressed": True, "originalSize": len(payload), "compressedSize": len(encoded)}
            commands.append(("set", (f"{key}:compressed", encode_entry(encoded, now_ms=now_ms, ttl=write.ttl, version=version), write.ttl)))
            commands.append(("set", (f"{key}:meta", encode_entry(meta, now_ms=now_ms, ttl=write.ttl, version=version), write.ttl)))
            commands.append(("delete", (key,)))
            report.compressed += 1
        else:
            commands.append(("set", (key, encode_entry(write.data, now_ms=now_ms, ttl=write.ttl, version=version), write.ttl)))
            # a stale compressed pair from an earlier large write would shadow this value
            commands.append(("delete", (f"{key}:meta", f"{key}:compressed")))
        report.written += 1
        report.keys.append(write.key)
    stale = [prefix + k for k in deletes]
    with client.pipeline(transaction=True) as pipe:
        for op, args in commands:
            if op == "set":
                key, value, ttl = args
                pipe.set(key, value, ex=int(ttl))
                report.bytes += len(value)
            else:
                pipe.delete(*args)
        if stale:
            pipe.delete(*stale)
        pipe.execute()
    report.deleted = len(stale)
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
    if payload.get("horizon") not in ("1h", "4h", "1d", "1w", "1m"):
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
