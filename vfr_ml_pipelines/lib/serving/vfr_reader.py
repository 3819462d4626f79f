"""Reading VFR's cache exactly as VFR does, and checking a prediction against VFR's type.

VFR treats an entry as expired when `now - timestamp > ttl * 1000`, whatever Redis' own
expiry says. Its prediction and feature-vector readers look at `{key}:meta` first and, when
that says `compressed`, read `{key}:compressed` (an envelope whose data is the base64 of the
payload's JSON) instead of the plain key.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable
from typing import Any

import redis

from vfr_ml_pipelines.lib.horizons import VFR_CACHE_HORIZONS
from vfr_ml_pipelines.lib.serving.vfr_codec import MalformedEntryError, parse_js_json
from vfr_ml_pipelines.lib.serving.vfr_keys import (
    ENHANCEMENT_STATUS_KEY,
    base_key,
    compressed_key,
    feature_vector_key,
    meta_key,
    model_metadata_key,
    parse_prediction_key,
    prediction_key,
    prediction_pattern,
)


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
        meta = self.get(meta_key(key))
        if isinstance(meta, dict) and meta.get("compressed"):
            compressed = self.get(compressed_key(key))
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


def _scan(client: redis.Redis, pattern: str) -> list[str]:
    return [k.decode() if isinstance(k, bytes) else k for k in client.scan_iter(match=pattern, count=1000)]


def served_pairs(client: redis.Redis, prefix: str) -> list[tuple[str, str]]:
    """Every (horizon, model id) some plain prediction key under `prefix` is stored for
    (companions are not counted, as `served_symbols` does not match them)."""
    keys = (parse_prediction_key(k[len(prefix) :]) for k in _scan(client, prediction_pattern(prefix)) if base_key(k) == k)
    return sorted({(key.horizon, key.model_id) for key in keys if key is not None})


def served_symbols(client: redis.Redis, prefix: str, horizon: str, model_id: str) -> list[str]:
    """The symbols with a prediction key of (`horizon`, `model_id`) under `prefix`."""
    keys = _scan(client, prediction_pattern(prefix, horizon=horizon, model_id=model_id))
    return sorted({parsed.symbol for k in keys if (parsed := parse_prediction_key(k[len(prefix) :])) is not None})


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
