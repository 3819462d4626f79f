"""The kill switch against a real Redis: every ML key of the prefix goes (compressed variants
included), nothing else does (other prefixes, other VFR keys), the status says unavailable in
VFR's format, and a second run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import redis

from vfr_ml_pipelines.lib.serving import payloads
from vfr_ml_pipelines.lib.serving.kill_switch import DELETE_BATCH, KillReport, disable_ml
from vfr_ml_pipelines.lib.serving.ttl import publish_ttl_seconds
from vfr_ml_pipelines.lib.serving.vfr_codec import validate_entry
from vfr_ml_pipelines.lib.serving.vfr_keys import (
    ENHANCEMENT_STATUS_KEY,
    feature_vector_key,
    glob_escape,
    model_metadata_key,
    prediction_key,
)
from vfr_ml_pipelines.lib.serving.vfr_reader import VfrCacheReader
from vfr_ml_pipelines.lib.serving.vfr_writer import CacheWrite, publish

NOW_MS = 1_795_000_000_000  # 2026-11-18 (a Wednesday), 23:33 UTC
TTL = 86_400


def ml_writes(symbols: list[str], large: set[str]) -> list[CacheWrite]:
    """Predictions under `default` and a model id (large ones compressed), feature vectors,
    model metadata and an `available: true` status: what a publish leaves behind."""
    writes = []
    for symbol in symbols:
        n = 400 if symbol in large else 10
        names = [f"f{j}" for j in range(n)]
        vector = payloads.feature_vector(symbol, {name: j / 3 for j, name in enumerate(names)}, names, NOW_MS)
        for model_id in ("default", "lightgbm_1w@3"):
            payload = payloads.ml_prediction(
                symbol=symbol, model_id=model_id, model_version="3", horizon="1w", expected_return=0.01, probability=0.6,
                direction="BUY", confidence=0.2, features=vector, made_at_ms=NOW_MS, ttl_seconds=TTL,
            )
            writes.append(CacheWrite(prediction_key(symbol, "1w", model_id), payload, TTL))
        writes.append(CacheWrite(feature_vector_key(symbol), vector, TTL))
    writes.append(CacheWrite(model_metadata_key("lightgbm_1w@3"), {"modelId": "lightgbm_1w@3"}, TTL, compressible=False))
    writes.append(CacheWrite(model_metadata_key("xgboost_1w@1"), {"modelId": "xgboost_1w@1"}, TTL, compressible=False))
    status = payloads.enhancement_status(available=True, models_loaded=1, features_ready=True, now_ms=NOW_MS)
    writes.append(CacheWrite(ENHANCEMENT_STATUS_KEY, status, TTL, compressible=False))
    return writes


def keys_under(client: redis.Redis, prefix: str) -> set[str]:
    return {k.decode() for k in client.scan_iter(match=glob_escape(prefix) + "*", count=1000)}


def test_disable_removes_every_ml_key_and_marks_the_status_unavailable(redis_client, key_prefix):
    symbols = [f"K{i:03d}" for i in range(30)]
    large = {"K000", "K001", "K002"}
    publish(redis_client, key_prefix, ml_writes(symbols, large), version="3", now_ms=NOW_MS)
    # a non-ML VFR key under the same prefix must survive
    redis_client.set(f"{key_prefix}vfr:stock:K000", "not ours", ex=600)
    stored = keys_under(redis_client, key_prefix)
    n_predictions = sum(k.startswith(f"{key_prefix}vfr:ml:prediction:") for k in stored)
    n_features = sum(k.startswith(f"{key_prefix}vfr:ml:feature:vector:") for k in stored)
    # 30 symbols x 2 model ids; the 3 large ones stored as :compressed + :meta (2 keys each)
    # instead of 1, for predictions and (3 x 400 features > 8,192 chars) feature vectors alike
    assert n_predictions == 30 * 2 + 3 * 2 and n_features == 30 + 3

    report = disable_ml(redis_client, key_prefix, version="kill-test", now_ms=NOW_MS + 1000)

    assert report == KillReport(prediction_keys_removed=66, feature_keys_removed=33, metadata_keys_removed=2, status_written=True)
    assert keys_under(redis_client, key_prefix) == {f"{key_prefix}{ENHANCEMENT_STATUS_KEY}", f"{key_prefix}vfr:stock:K000"}
    reader = VfrCacheReader(redis_client, key_prefix, clock_ms=lambda: NOW_MS + 2000)
    assert all(reader.prediction(s) is None and reader.feature_vector(s) is None for s in symbols)

    # the status, exactly as VFR reads it
    raw = redis_client.get(f"{key_prefix}{ENHANCEMENT_STATUS_KEY}")
    entry = validate_entry(raw)
    expected_ttl = publish_ttl_seconds(datetime.fromtimestamp((NOW_MS + 1000) / 1000, tz=UTC))
    assert entry["ttl"] == expected_ttl and entry["timestamp"] == NOW_MS + 1000 and entry["version"] == "kill-test"
    assert entry["data"] == {
        "available": False, "modelsLoaded": 0, "featuresReady": False, "lastUpdate": NOW_MS + 1000,
        "performance": {"averageLatency": 0, "cacheHitRate": 0, "activeModels": 0},
    }
    assert reader.enhancement_status()["available"] is False
    assert 0 < redis_client.ttl(f"{key_prefix}{ENHANCEMENT_STATUS_KEY}") <= expected_ttl


def test_other_prefixes_are_untouched(redis_client, key_prefix):
    """Only keys under the prefix go: not a deployment whose prefix extends ours, nor one
    whose prefix merely contains ours, nor one matched by our prefix read as a glob."""
    ours = f"{key_prefix}we*ird[1]:"  # glob characters in a prefix are taken literally
    neighbours = [f"{key_prefix}weXird1:", f"{key_prefix}weird1:", f"{key_prefix}x{ours[len(key_prefix):]}", f"{ours}staging:"]
    writes = ml_writes(["AAA", "BBB"], {"BBB"})
    for prefix in [ours, *neighbours]:
        publish(redis_client, prefix, writes, version="3", now_ms=NOW_MS)
    before = {p: {k: redis_client.get(k) for k in keys_under(redis_client, p)} for p in neighbours}
    # each neighbour holds a full set (the nested "staging" one under ours is counted apart)
    assert all(len(keys) >= 9 for keys in before.values())

    report = disable_ml(redis_client, ours, version="kill-test", now_ms=NOW_MS)
    assert report.prediction_keys_removed == 2 * 2 + 2 and report.feature_keys_removed == 2 + 1

    for prefix, snapshot in before.items():
        assert {k: redis_client.get(k) for k in keys_under(redis_client, prefix)} == snapshot, prefix
    remaining_ours = {k for k in keys_under(redis_client, ours) if not k.startswith(f"{ours}staging:")}
    assert remaining_ours == {f"{ours}{ENHANCEMENT_STATUS_KEY}"}


def test_features_can_be_kept(redis_client, key_prefix):
    publish(redis_client, key_prefix, ml_writes(["AAA", "BBB"], set()), version="3", now_ms=NOW_MS)
    report = disable_ml(redis_client, key_prefix, include_features=False, version="kill-test", now_ms=NOW_MS)
    assert report == KillReport(prediction_keys_removed=4, feature_keys_removed=0, metadata_keys_removed=2, status_written=True)
    reader = VfrCacheReader(redis_client, key_prefix, clock_ms=lambda: NOW_MS + 1000)
    assert reader.feature_vector("AAA")["symbol"] == "AAA" and reader.prediction("AAA") is None
    assert reader.enhancement_status()["featuresReady"] is True


def test_disable_is_idempotent(redis_client, key_prefix):
    publish(redis_client, key_prefix, ml_writes(["AAA", "BBB"], {"AAA"}), version="3", now_ms=NOW_MS)
    first = disable_ml(redis_client, key_prefix, version="kill-test", now_ms=NOW_MS)
    state = {k: redis_client.get(k) for k in keys_under(redis_client, key_prefix)}
    second = disable_ml(redis_client, key_prefix, version="kill-test", now_ms=NOW_MS)
    assert first.prediction_keys_removed == 6 and first.status_written
    assert second == KillReport(0, 0, 0, True)
    assert {k: redis_client.get(k) for k in keys_under(redis_client, key_prefix)} == state


def test_many_keys_go_in_several_batches_and_a_republish_re_enables(redis_client, key_prefix):
    symbols = [f"M{i:04d}" for i in range(DELETE_BATCH + 300)]
    writes = ml_writes(symbols, set())
    publish(redis_client, key_prefix, writes, version="3", now_ms=NOW_MS)
    report = disable_ml(redis_client, key_prefix, version="kill-test", now_ms=NOW_MS)
    assert report.prediction_keys_removed == 2 * len(symbols) and report.feature_keys_removed == len(symbols)
    assert keys_under(redis_client, key_prefix) == {f"{key_prefix}{ENHANCEMENT_STATUS_KEY}"}

    publish(redis_client, key_prefix, writes, version="3", now_ms=NOW_MS)
    reader = VfrCacheReader(redis_client, key_prefix, clock_ms=lambda: NOW_MS + 1000)
    assert reader.enhancement_status()["available"] is True
    assert reader.prediction("M0000")["symbol"] == "M0000"


def test_glob_escape():
    assert glob_escape("a*b?c[d]e\\f") == "a\\*b\\?c\\[d\\]e\\\\f"
    assert glob_escape("veritak:mcp:") == "veritak:mcp:"


def test_keys_vfr_wrote_itself_survive(redis_client, key_prefix):
    """VFR writes into the same namespaces (its feature integrators' vectors with a 900 s TTL,
    compressed ones as :meta/:compressed, predictions it caches under a model uuid, its models'
    metadata): the switch removes only envelopes whose source is ours, even where VFR has
    rewritten a key we had published."""
    from vfr_ml_pipelines.lib.serving.vfr_codec import SOURCE, encode_entry

    publish(redis_client, key_prefix, ml_writes(["AAA", "BBB", "CCC"], {"CCC"}), version="3", now_ms=NOW_MS)
    vfr = {
        feature_vector_key("AAA"): encode_entry({"symbol": "AAA", "features": {"rsi": 41.0}}, now_ms=NOW_MS, ttl=900, version="1.0", source="ml-feature-vector"),
        feature_vector_key("VFRONLY"): encode_entry({"symbol": "VFRONLY", "features": {}}, now_ms=NOW_MS, ttl=900, version="1.0", source="ml-feature-vector"),
        f"{feature_vector_key('BIG')}:compressed": encode_entry("eyJ9", now_ms=NOW_MS, ttl=900, version="1.0", source="ml-feature-vector"),
        f"{feature_vector_key('BIG')}:meta": encode_entry({"compressed": True}, now_ms=NOW_MS, ttl=900, version="1.0", source="ml-feature-meta"),
        prediction_key("AAA", "1w", "0b6f3c1e-uuid"): encode_entry({"symbol": "AAA"}, now_ms=NOW_MS, ttl=300, version="1.0", source="ml-prediction"),
        model_metadata_key("sentiment-fusion"): encode_entry({"modelId": "sentiment-fusion"}, now_ms=NOW_MS, ttl=3600, version="1.0", source="ml-model"),
        feature_vector_key("RAW"): "not json at all",
    }
    for key, value in vfr.items():
        redis_client.set(key_prefix + key, value, ex=900)
    redis_client.rpush(key_prefix + feature_vector_key("LIST"), "a list, not an envelope")

    report = disable_ml(redis_client, key_prefix, version="kill-test", now_ms=NOW_MS)

    # ours: AAA and BBB x 2 ids, CCC x 2 ids as :compressed + :meta pairs; BBB's vector and
    # CCC's pair (AAA's vector was VFR's by then); 2 metadata keys
    assert report == KillReport(prediction_keys_removed=2 * 2 + 2 * 2, feature_keys_removed=1 + 2, metadata_keys_removed=2, status_written=True, foreign_keys_kept=len(vfr) + 1)
    for key, value in vfr.items():
        assert redis_client.get(key_prefix + key) == value.encode(), key
    assert redis_client.lrange(key_prefix + feature_vector_key("LIST"), 0, -1) == [b"a list, not an envelope"]
    left = {k[len(key_prefix):] for k in keys_under(redis_client, key_prefix)}
    assert left == {*vfr, feature_vector_key("LIST"), ENHANCEMENT_STATUS_KEY}
    assert all(validate_entry(redis_client.get(key_prefix + k))["source"] != SOURCE for k in vfr if k != feature_vector_key("RAW"))
    # a second run finds only VFR's keys and leaves them
    assert disable_ml(redis_client, key_prefix, version="kill-test", now_ms=NOW_MS) == KillReport(0, 0, 0, True, foreign_keys_kept=len(vfr) + 1)


def test_every_envelope_we_write_carries_the_mark(redis_client, key_prefix):
    """The switch recognises our keys by the tail of the envelope: plain, compressed and
    `:meta` values of a publish, and `encode_entry`, all end with it."""
    from vfr_ml_pipelines.lib.serving.kill_switch import OUR_MARK, TAIL_BYTES
    from vfr_ml_pipelines.lib.serving.vfr_codec import encode_entry

    publish(redis_client, key_prefix, ml_writes(["AAA", "BBB"], {"BBB"}), version="3.1.0", now_ms=NOW_MS)
    values = [redis_client.get(k) for k in keys_under(redis_client, key_prefix)]
    values.append(encode_entry({"x": 1}, now_ms=NOW_MS, ttl=60, version="3.1.0").encode())
    assert len(values) > 10 and any(b'"compressed":true' in v for v in values)
    for value in values:
        assert value.endswith(b'"}') and OUR_MARK.encode() + b'"3.1.0"}' == value[-len(OUR_MARK) - 8:]
        assert OUR_MARK.encode() in value[-TAIL_BYTES:]
