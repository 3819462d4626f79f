"""The prediction set published to VFR's Redis (lib/serving/publish_plan.py): which keys a
served version writes, and which keys of a previous set are stale (against a real Redis)."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, RegisteredVersion
from vfr_ml_pipelines.lib.serving.publish_plan import is_our_model_id, prediction_writes, stale_keys
from vfr_ml_pipelines.lib.serving.served_models import ServedVersion
from vfr_ml_pipelines.lib.serving.vfr_codec import encode_entry
from vfr_ml_pipelines.lib.serving.vfr_keys import (
    compressed_key,
    feature_vector_key,
    meta_key,
    model_metadata_key,
    prediction_key,
)

NOW_MS = 1_900_000_000_000


def _served(role: str, version: str = "3") -> ServedVersion:
    return ServedVersion("1w", role, RegisteredVersion("vfr-1w", version, "run", {}))


def _rows(symbols: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "as_of_date": date(2031, 3, 3), "symbol": s, "expected_return": 0.01, "probability": 0.6,
                "direction": "BUY", "confidence": 0.2, "features": json.dumps({"rsi_14": 50.0}),
                "feature_quality_score": 0.9,
            }
            for s in symbols
        ]
    )


def test_a_champion_is_written_under_default_and_its_own_id_a_challenger_under_its_id_only():
    champion = prediction_writes(_served(CHAMPION), _rows(["AAA", "BBB"]), NOW_MS, 600)
    assert [w.key for w in champion] == [
        prediction_key("AAA", "1w", "default"), prediction_key("AAA", "1w", "vfr-1w.v3"),
        prediction_key("BBB", "1w", "default"), prediction_key("BBB", "1w", "vfr-1w.v3"),
    ]
    # the payload names the real model under `default` too
    assert {w.data["modelId"] for w in champion} == {"vfr-1w.v3"}
    challenger = prediction_writes(_served(CHALLENGER, "4"), _rows(["AAA"]), NOW_MS, 600)
    assert [w.key for w in challenger] == [prediction_key("AAA", "1w", "vfr-1w.v4")]


def test_our_model_ids_are_default_and_vfr_prefixed():
    assert is_our_model_id("default") and is_our_model_id("vfr-1w.v3")
    assert not is_our_model_id("9d1c0e2a-uuid") and not is_our_model_id("default2")


def test_stale_keys_are_ours_outside_the_new_set_with_their_companions(redis_client, key_prefix):
    served = prediction_key("AAA", "1w", "default")
    gone_symbol = prediction_key("OLD", "1w", "default")
    gone_model = prediction_key("AAA", "1m", "vfr-1m.v1")
    vfr_own = prediction_key("AAA", "1w", "9d1c0e2a-uuid")
    other_horizon = prediction_key("AAA", "4h", "default")  # not a horizon of ours
    keys = [
        served, gone_symbol, meta_key(gone_symbol), compressed_key(gone_symbol), gone_model, vfr_own, other_horizon,
        model_metadata_key("vfr-1w.v3"), model_metadata_key("vfr-1w.v2"), model_metadata_key("9d1c0e2a-uuid"),
        feature_vector_key("AAA"),
    ]
    for key in keys:
        redis_client.set(key_prefix + key, encode_entry({}, now_ms=NOW_MS, ttl=60, version="t"), ex=60)
    stale = stale_keys(redis_client, key_prefix, {served, model_metadata_key("vfr-1w.v3")})
    assert sorted(stale) == sorted(
        [gone_symbol, meta_key(gone_symbol), compressed_key(gone_symbol), gone_model, model_metadata_key("vfr-1w.v2")]
    )
