"""The atomic switch, against a real Redis: readers looping while whole prediction sets are
republished never meet a malformed entry, a miss of a covered symbol, or (reading every key
in one MGET) a mix of two sets; a symbol dropped from a set loses all its keys in the same
transaction."""

from __future__ import annotations

import base64
import random
import threading
from collections import Counter
from typing import Any

import pytest
import redis

from vfr_ml_pipelines.lib.serving import payloads
from vfr_ml_pipelines.lib.serving.vfr_codec import MalformedEntryError, encode_entry, parse_js_json, validate_entry
from vfr_ml_pipelines.lib.serving.vfr_keys import prediction_key
from vfr_ml_pipelines.lib.serving.vfr_reader import VfrCacheReader, validate_prediction
from vfr_ml_pipelines.lib.serving.vfr_writer import COMPRESSION_THRESHOLD, CacheWrite, publish

N_SYMBOLS = 2000
SYMBOLS = [f"T{i:04d}" for i in range(N_SYMBOLS)]
REMOVED_IN_B = SYMBOLS[1990:]  # 1990..1994 plain in A, 1995..1999 compressed in A
COVERED_BY_BOTH = SYMBOLS[:1990]
# large (compressed) payloads: 0..39 and 1995..1999 in A, 20..59 in B, so between the sets
# 0..19 go compressed -> plain, 40..59 plain -> compressed, 20..39 stay compressed
LARGE_IN_A = set(SYMBOLS[:40]) | set(SYMBOLS[1995:])
LARGE_IN_B = set(SYMBOLS[20:60])
TOGGLING = SYMBOLS[:60]
NOW_MS = 1_795_000_000_000
TTL = 86_400
READ_CLOCK = lambda: NOW_MS + 60_000  # noqa: E731  (entries are fresh for the reader)


def prediction(symbol: str, version: str, large: bool) -> dict[str, Any]:
    n_features = 400 if large else 50
    i = int(symbol[1:])
    names = [f"feature_{j:03d}" for j in range(n_features)]
    vector = payloads.feature_vector(symbol, {n: (i * 31 + j) / 997 for j, n in enumerate(names)}, names, NOW_MS - 3_600_000)
    expected_return = (i % 41 - 20) / 1000 + (0.0005 if version == "2" else 0.0)
    probability = 0.5 + expected_return * 10  # within 0.29..0.71
    return payloads.ml_prediction(
        symbol=symbol, model_id="default", model_version=version, horizon="1w", expected_return=expected_return,
        probability=probability, direction=payloads.direction_for(probability, payloads.DirectionThresholds()),
        confidence=payloads.confidence_for(probability), features=vector, made_at_ms=NOW_MS, ttl_seconds=TTL,
    )


EXPECTED = {
    "1": {s: prediction(s, "1", s in LARGE_IN_A) for s in SYMBOLS},
    "2": {s: prediction(s, "2", s in LARGE_IN_B) for s in COVERED_BY_BOTH},
}


def key(symbol: str) -> str:
    return prediction_key(symbol, "1w", "default")


def publish_set(client: redis.Redis, prefix: str, version: str, *, keep_plain_copy: bool = True):
    writes = [CacheWrite(key(s), p, TTL) for s, p in EXPECTED[version].items()]
    deletes = [key(s) for s in REMOVED_IN_B] if version == "2" else []
    return publish(client, prefix, writes, version=version, deletes=deletes, now_ms=NOW_MS, keep_plain_copy=keep_plain_copy)


def test_the_test_sets_are_what_they_claim():
    import json

    for symbol in LARGE_IN_A:
        assert len(json.dumps(EXPECTED["1"][symbol], separators=(",", ":"))) > COMPRESSION_THRESHOLD
    for symbol in set(SYMBOLS[60:1995]):
        assert len(json.dumps(EXPECTED["1"][symbol], separators=(",", ":"))) < COMPRESSION_THRESHOLD
    assert all(validate_prediction(p) == [] for v in EXPECTED.values() for p in v.values())


def decode_snapshot(prefix: str, raw: list[bytes | None]) -> dict[str, dict[str, Any]]:
    """One MGET of [plain, :meta, :compressed] for every symbol, decoded as VFR decodes
    (meta first). Raises MalformedEntryError on anything VFR would choke on."""
    found: dict[str, dict[str, Any]] = {}
    for index, symbol in enumerate(SYMBOLS):
        plain, meta, compressed = (None if value is None else validate_entry(value) for value in raw[3 * index : 3 * index + 3])
        payload = None
        if meta is not None and meta["data"].get("compressed"):
            if compressed is None:
                raise MalformedEntryError(f"{symbol}: :meta says compressed but :compressed is missing")
            payload = parse_js_json(base64.b64decode(compressed["data"]).decode("utf-8"))
        elif compressed is not None:
            raise MalformedEntryError(f"{symbol}: :compressed without :meta")
        elif plain is not None:
            payload = plain["data"]
        if payload is not None:
            found[symbol] = payload
    return found


class SwitchHarness:
    """Readers loop; after each publish the publisher waits until every reader has finished
    one full iteration that started after it, so every reader meets every set."""

    def __init__(self, n_readers: int) -> None:
        self.generation = 0
        self.done_at = [-1] * n_readers
        self.stop = False
        self.condition = threading.Condition()
        self.errors: list[str] = []

    def begin(self) -> int:
        with self.condition:
            return self.generation

    def finished(self, reader: int, generation: int) -> None:
        with self.condition:
            self.done_at[reader] = max(self.done_at[reader], generation)
            self.condition.notify_all()

    def advance(self) -> None:
        with self.condition:
            self.generation += 1

    def wait_for_readers(self, timeout: float = 120) -> None:
        with self.condition:
            ok = self.condition.wait_for(lambda: min(self.done_at) >= self.generation or self.errors, timeout=timeout)
        assert ok, f"readers stalled: {self.done_at} at generation {self.generation}"


def test_readers_never_see_a_malformed_entry_a_miss_or_a_mix(redis_url, redis_client, key_prefix):
    publish_set(redis_client, key_prefix, "1")
    n_get, n_mget = 2, 2
    harness = SwitchHarness(n_get + n_mget)
    get_versions = [Counter() for _ in range(n_get)]
    snapshot_versions: list[str] = []
    misses: list[str] = []

    def get_reader(index: int) -> None:
        client = redis.Redis.from_url(redis_url)
        reader = VfrCacheReader(client, key_prefix, delete_expired=False, clock_ms=READ_CLOCK)
        rng = random.Random(index)
        try:
            while not harness.stop:
                generation = harness.begin()
                for _ in range(100):
                    # half the reads on the symbols whose storage form changes between sets
                    symbol = rng.choice(TOGGLING) if rng.random() < 0.5 else rng.choice(COVERED_BY_BOTH)
                    payload = reader.prediction(symbol)
                    if payload is None:
                        misses.append(symbol)
                        continue
                    version = payload.get("modelVersion")
                    if version not in EXPECTED or payload != EXPECTED[version][symbol] or validate_prediction(payload):
                        harness.errors.append(f"GET {symbol}: unexpected payload (version {version!r})")
                    get_versions[index][version] += 1
                harness.finished(index, generation)
        except Exception as exc:  # a MalformedEntryError included: reported below
            harness.errors.append(f"GET reader: {type(exc).__name__}: {exc}")
            harness.finished(index, 10**9)
        finally:
            client.close()

    def mget_reader(index: int) -> None:
        client = redis.Redis.from_url(redis_url)
        keys = [f"{key_prefix}{key(s)}{suffix}" for s in SYMBOLS for suffix in ("", ":meta", ":compressed")]
        try:
            while not harness.stop:
                generation = harness.begin()
                found = decode_snapshot(key_prefix, client.mget(keys))
                versions = {p["modelVersion"] for p in found.values()}
                if len(versions) != 1:
                    harness.errors.append(f"MGET snapshot mixes model versions {sorted(versions)}")
                    continue
                (version,) = versions
                expected = EXPECTED[version]
                if set(found) != set(expected):
                    harness.errors.append(
                        f"MGET snapshot of version {version}: missing {sorted(set(expected) - set(found))[:5]}, "
                        f"extra {sorted(set(found) - set(expected))[:5]}"
                    )
                elif any(found[s] != expected[s] for s in expected):
                    harness.errors.append(f"MGET snapshot of version {version}: a payload differs from the published one")
                snapshot_versions.append(version)
                harness.finished(n_get + index, generation)
        except Exception as exc:
            harness.errors.append(f"MGET reader: {type(exc).__name__}: {exc}")
            harness.finished(n_get + index, 10**9)
        finally:
            client.close()

    threads = [threading.Thread(target=get_reader, args=(i,)) for i in range(n_get)]
    threads += [threading.Thread(target=mget_reader, args=(i,)) for i in range(n_mget)]
    for thread in threads:
        thread.start()
    try:
        harness.wait_for_readers()
        for version in ("2", "1", "2", "1"):
            report = publish_set(redis_client, key_prefix, version)
            assert report.written == len(EXPECTED[version])
            harness.advance()
            harness.wait_for_readers()
            if version == "2":
                # the removed symbols' plain, :meta and :compressed keys are all gone
                removed = [f"{key_prefix}{key(s)}{suffix}" for s in REMOVED_IN_B for suffix in ("", ":meta", ":compressed")]
                assert redis_client.exists(*removed) == 0
    finally:
        harness.stop = True
        for thread in threads:
            thread.join(timeout=120)

    assert harness.errors == [], harness.errors[:5]
    assert misses == [], f"{len(misses)} misses of covered symbols, e.g. {misses[:5]}"
    # every reader met both sets (the harness guarantees it; this proves the test exercised the switch)
    for counter in get_versions:
        assert set(counter) == {"1", "2"}
    assert set(snapshot_versions) == {"1", "2"}


def test_a_switch_to_the_compressed_form_races_vfrs_reader_unless_the_plain_copy_is_kept(redis_client, key_prefix):
    """VFR reads `:meta` first, then the plain key. If a publish turns a symbol from plain to
    compressed between those two GETs, and the publish removes the plain key, the reader finds
    neither: a miss. Replayed here step by step, with and without `keep_plain_copy`."""
    symbol = "T0045"  # plain in A, compressed in B
    assert symbol not in LARGE_IN_A and symbol in LARGE_IN_B
    k = key(symbol)
    reader = VfrCacheReader(redis_client, key_prefix, delete_expired=False, clock_ms=READ_CLOCK)
    for keep_plain_copy, outcome in ((False, None), (True, EXPECTED["2"][symbol])):
        publish_set(redis_client, key_prefix, "1", keep_plain_copy=keep_plain_copy)
        assert reader.get(f"{k}:meta") is None  # VFR's first GET: no compressed form
        publish_set(redis_client, key_prefix, "2", keep_plain_copy=keep_plain_copy)  # the switch lands here
        assert reader.get(k) == outcome  # VFR's second GET: the plain key
        # a reader starting after the switch is fine either way
        assert reader.prediction(symbol) == EXPECTED["2"][symbol]


def test_published_bytes_are_exactly_the_envelope(redis_client, key_prefix):
    """publish builds the envelope around the payload JSON it already has; the result must be
    byte for byte what encode_entry produces."""
    symbol = "T0100"
    version = 'v\u00e9 "1"'  # a version string that JSON has to escape
    publish(redis_client, key_prefix, [CacheWrite(key(symbol), EXPECTED["1"][symbol], TTL)], version=version, now_ms=NOW_MS)
    stored = redis_client.get(f"{key_prefix}{key(symbol)}")
    assert stored == encode_entry(EXPECTED["1"][symbol], now_ms=NOW_MS, ttl=TTL, version=version).encode()
    assert 0 < redis_client.ttl(f"{key_prefix}{key(symbol)}") <= TTL


def test_a_bad_publish_is_rejected_before_anything_is_sent(redis_client, key_prefix):
    publish_set(redis_client, key_prefix, "1")
    before = sorted(redis_client.scan_iter(match=f"{key_prefix}*", count=1000))
    values_before = redis_client.mget(before)
    good = [CacheWrite(key(s), EXPECTED["2"][s], TTL) for s in COVERED_BY_BOTH[:100]]
    with pytest.raises(MalformedEntryError, match=key("T1500")):
        publish(redis_client, key_prefix, [*good, CacheWrite(key("T1500"), {"when": object()}, TTL)], version="2")
    with pytest.raises(MalformedEntryError, match="non-finite"):
        publish(redis_client, key_prefix, [*good, CacheWrite(key("T1501"), {"x": float("inf")}, TTL)], version="2")
    with pytest.raises(ValueError, match="written twice"):
        publish(redis_client, key_prefix, [*good, good[0]], version="2")
    with pytest.raises(ValueError, match="both written and deleted"):
        publish(redis_client, key_prefix, good, version="2", deletes=[good[0].key])
    with pytest.raises(ValueError, match="ttl"):
        publish(redis_client, key_prefix, [*good, CacheWrite(key("T1502"), {}, 0)], version="2")
    after = sorted(redis_client.scan_iter(match=f"{key_prefix}*", count=1000))
    assert after == before and redis_client.mget(after) == values_before
