"""Writing VFR's cache (vfr_writer) and reading it as VFR does (vfr_reader), against a real Redis."""

from __future__ import annotations

import base64
import json
import time

import pytest

from vfr_ml_pipelines.lib.serving import vfr_keys, vfr_writer
from vfr_ml_pipelines.lib.serving.vfr_codec import MalformedEntryError, encode_entry, parse_js_json, validate_entry
from vfr_ml_pipelines.lib.serving.vfr_reader import VfrCacheReader
from vfr_ml_pipelines.lib.serving.vfr_writer import CacheWrite, publish

KEY = vfr_keys.prediction_key("aapl", "1w", "default")


def _now_ms() -> int:
    return int(time.time() * 1000)


def test_written_value_reads_back_through_the_prefix(redis_client, key_prefix):
    publish(redis_client, key_prefix, [CacheWrite(KEY, {"symbol": "AAPL"}, 600)], version="t")
    assert redis_client.exists(f"{key_prefix}{KEY}") == 1
    assert VfrCacheReader(redis_client, key_prefix).prediction("aapl") == {"symbol": "AAPL"}
    assert VfrCacheReader(redis_client, "other:").prediction("aapl") is None
    assert 0 < redis_client.ttl(f"{key_prefix}{KEY}") <= 600


def test_entry_expires_by_timestamp_plus_ttl_whatever_redis_says(redis_client, key_prefix):
    stale = encode_entry({"x": 1}, now_ms=_now_ms() - 11_000, ttl=10, version="t")
    redis_client.set(f"{key_prefix}{KEY}", stale, ex=3600)
    reader = VfrCacheReader(redis_client, key_prefix)
    assert reader.get(KEY) is None
    assert redis_client.exists(f"{key_prefix}{KEY}") == 0, "VFR deletes an expired entry"


def test_entry_just_inside_its_ttl_is_a_hit(redis_client, key_prefix):
    fresh = encode_entry({"x": 1}, now_ms=_now_ms() - 9_000, ttl=10, version="t")
    redis_client.set(f"{key_prefix}{KEY}", fresh, ex=3600)
    assert VfrCacheReader(redis_client, key_prefix).get(KEY) == {"x": 1}


def test_meta_and_compressed_are_read_first(redis_client, key_prefix):
    payload = {"symbol": "AAPL", "from": "compressed"}
    encoded = base64.b64encode(json.dumps(payload).encode()).decode()
    redis_client.set(f"{key_prefix}{KEY}", encode_entry({"from": "plain"}, now_ms=_now_ms(), ttl=60, version="t"), ex=60)
    redis_client.set(f"{key_prefix}{KEY}:meta", encode_entry({"compressed": True}, now_ms=_now_ms(), ttl=60, version="t"), ex=60)
    redis_client.set(f"{key_prefix}{KEY}:compressed", encode_entry(encoded, now_ms=_now_ms(), ttl=60, version="t"), ex=60)
    assert VfrCacheReader(redis_client, key_prefix).prediction("AAPL") == payload


def test_publishing_a_plain_value_removes_a_stale_compressed_pair(redis_client, key_prefix):
    encoded = base64.b64encode(b'{"from":"old"}').decode()
    redis_client.set(f"{key_prefix}{KEY}:meta", encode_entry({"compressed": True}, now_ms=_now_ms(), ttl=600, version="t"), ex=600)
    redis_client.set(f"{key_prefix}{KEY}:compressed", encode_entry(encoded, now_ms=_now_ms(), ttl=600, version="t"), ex=600)
    publish(redis_client, key_prefix, [CacheWrite(KEY, {"from": "new"}, 600)], version="t")
    assert redis_client.exists(f"{key_prefix}{KEY}:meta", f"{key_prefix}{KEY}:compressed") == 0
    assert VfrCacheReader(redis_client, key_prefix).prediction("AAPL") == {"from": "new"}


def test_large_payload_is_written_as_vfr_writes_it_and_reads_back(redis_client, key_prefix):
    payload = {"symbol": "AAPL", "blob": "x" * 9000}
    report = publish(redis_client, key_prefix, [CacheWrite(KEY, payload, 600)], version="t")
    assert report.compressed == 1
    assert redis_client.exists(f"{key_prefix}{KEY}") == 0
    meta = validate_entry(redis_client.get(f"{key_prefix}{KEY}:meta"))
    assert meta["data"]["compressed"] is True
    assert VfrCacheReader(redis_client, key_prefix).prediction("AAPL") == payload


def test_a_nan_anywhere_fails_the_publish_and_writes_nothing(redis_client, key_prefix):
    publish(redis_client, key_prefix, [CacheWrite(KEY, {"v": 1}, 600)], version="t")
    other = vfr_keys.prediction_key("MSFT", "1w", "default")
    with pytest.raises(MalformedEntryError):
        publish(
            redis_client, key_prefix,
            [CacheWrite(other, {"v": 2}, 600), CacheWrite(KEY, {"v": float("nan")}, 600)], version="t",
        )
    reader = VfrCacheReader(redis_client, key_prefix)
    assert reader.prediction("AAPL") == {"v": 1}
    assert reader.prediction("MSFT") is None


def test_reader_reports_what_javascript_json_parse_rejects(redis_client, key_prefix):
    redis_client.set(f"{key_prefix}{KEY}", '{"data": {"v": NaN}, "timestamp": 1, "ttl": 1}', ex=60)
    with pytest.raises(MalformedEntryError):
        VfrCacheReader(redis_client, key_prefix).get(KEY)
    with pytest.raises(MalformedEntryError):
        parse_js_json("{truncated")
    for bad in ('{"data": 1, "timestamp": 1, "ttl": 1, "source": "s"}', "[1, 2]", '{"data": 1, "timestamp": "1", "ttl": 1, "source": "s", "version": "v"}'):
        with pytest.raises(MalformedEntryError):
            validate_entry(bad)


def test_publish_deletes_requested_keys_in_the_same_transaction(redis_client, key_prefix):
    gone = vfr_keys.prediction_key("OLD", "1w", "default")
    redis_client.set(f"{key_prefix}{gone}", encode_entry(1, now_ms=_now_ms(), ttl=60, version="t"), ex=60)
    report = publish(redis_client, key_prefix, [CacheWrite(KEY, {"v": 1}, 60)], version="t", deletes=[gone])
    assert report.deleted == 1 and redis_client.exists(f"{key_prefix}{gone}") == 0


def test_a_non_json_payload_names_its_key(redis_client, key_prefix):
    with pytest.raises(MalformedEntryError, match=r"AAPL.*not JSON-serialisable"):
        publish(redis_client, key_prefix, [CacheWrite(KEY, {"when": object()}, 60)], version="t")
    assert redis_client.exists(f"{key_prefix}{KEY}") == 0


def _versioned(symbols: list[str], version: str, size: int = 0) -> list[CacheWrite]:
    return [CacheWrite(vfr_keys.prediction_key(s, "1w", "default"), {"v": version, "pad": "x" * size}, 600) for s in symbols]


def test_a_split_publish_sends_bounded_transactions_and_keeps_each_entry_whole(redis_client, key_prefix):
    symbols = [f"S{i}" for i in range(7)]
    publish(redis_client, key_prefix, _versioned(symbols, "1", size=9000), version="1")  # compressed pairs
    assert redis_client.exists(f"{key_prefix}{vfr_keys.prediction_key('S3', '1w', 'default')}:meta") == 1
    gone = vfr_keys.prediction_key("GONE", "1w", "default")
    publish(redis_client, key_prefix, [CacheWrite(gone, {"v": "old"}, 600)], version="1")

    report = publish(redis_client, key_prefix, _versioned(symbols, "2"), version="2", deletes=[gone],
                     max_entries_per_transaction=3)
    assert report.transactions == 3 and report.attempts == 3  # 3 + 3 + 1 entries
    reader = VfrCacheReader(redis_client, key_prefix)
    assert all(reader.prediction(s)["v"] == "2" for s in symbols)  # the plain values, not a stale pair
    assert not list(redis_client.scan_iter(match=f"{key_prefix}*:meta"))
    assert not list(redis_client.scan_iter(match=f"{key_prefix}*:compressed"))
    assert redis_client.exists(f"{key_prefix}{gone}") == 0


def test_split_transactions_carry_each_entry_with_its_companions_and_stale_keys_last():
    writes = _versioned(["A", "B", "C"], "1") + [CacheWrite("big", {"pad": "x" * 9000}, 60)]
    plan = vfr_writer._plan_publish("p:", writes, ["old"], version="1", now_ms=1, compression_threshold=8192,
                                   keep_plain_copy=False, report=vfr_writer.PublishReport())
    transactions = plan.transactions(2)
    assert len(transactions) == 2
    first, last = ({c[1] if c[0] == "SET" else c[1:] for c in t} for t in transactions)
    assert "p:vfr:ml:prediction:A:1w:default" in first and "p:vfr:ml:prediction:B:1w:default" in first
    assert ("p:vfr:ml:prediction:A:1w:default:meta", "p:vfr:ml:prediction:A:1w:default:compressed",
            "p:vfr:ml:prediction:B:1w:default:meta", "p:vfr:ml:prediction:B:1w:default:compressed") in first
    assert {"p:big:compressed", "p:big:meta", "p:vfr:ml:prediction:C:1w:default"} <= last
    unlinked_last = next(c for c in transactions[1] if c[0] == "UNLINK")[1:]
    assert {"p:big", "p:old", "p:old:meta", "p:old:compressed"} <= set(unlinked_last)
    # unsplit: the same commands in one transaction
    assert plan.transactions() == [plan.commands()]
    def keys_set(batches):
        return sorted(c[1] for t in batches for c in t if c[0] == "SET")

    assert keys_set(transactions) == keys_set([plan.commands()])


@pytest.mark.parametrize("bad", [0, -1, True])
def test_max_entries_per_transaction_must_be_positive(redis_client, key_prefix, bad):
    with pytest.raises(ValueError, match="max_entries_per_transaction"):
        publish(redis_client, key_prefix, _versioned(["A"], "1"), version="1", max_entries_per_transaction=bad)
