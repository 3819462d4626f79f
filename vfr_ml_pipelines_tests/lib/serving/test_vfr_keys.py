"""VFR's key formats: what is built parses back, and nothing else parses as ours."""

from __future__ import annotations

from vfr_ml_pipelines.lib.serving.vfr_keys import (
    PredictionKey,
    base_key,
    compressed_key,
    meta_key,
    model_metadata_key,
    model_metadata_pattern,
    parse_model_metadata_key,
    parse_prediction_key,
    prediction_key,
    prediction_pattern,
)


def test_prediction_key_is_upper_case_symbol_horizon_model():
    assert prediction_key("aapl", "1w", "default") == "vfr:ml:prediction:AAPL:1w:default"


def test_a_built_prediction_key_parses_back_with_or_without_a_companion_suffix():
    key = prediction_key("brk.b", "3m", "vfr-3m.v12")
    expected = PredictionKey("BRK.B", "3m", "vfr-3m.v12")
    assert parse_prediction_key(key) == expected
    assert parse_prediction_key(meta_key(key)) == expected
    assert parse_prediction_key(compressed_key(key)) == expected
    assert base_key(compressed_key(key)) == key


def test_other_keys_do_not_parse_as_predictions_or_metadata():
    assert parse_prediction_key(model_metadata_key("vfr-1w.v1")) is None
    assert parse_prediction_key("vfr:ml:prediction:AAPL") is None
    assert parse_model_metadata_key(prediction_key("AAPL", "1w", "default")) is None
    assert parse_model_metadata_key(meta_key(model_metadata_key("vfr-1w.v1"))) == "vfr-1w.v1"


def test_scan_patterns_take_the_prefix_literally():
    assert prediction_pattern("veritak:mcp:", horizon="1w") == "veritak:mcp:vfr:ml:prediction:*:1w:*"
    assert prediction_pattern("t[1]:", horizon="1w", model_id="default") == "t\\[1\\]:vfr:ml:prediction:*:1w:default"
    assert prediction_pattern("p:") == "p:vfr:ml:prediction:*:*:*"
    assert model_metadata_pattern("p:", "vfr-") == "p:vfr:ml:model:metadata:vfr-*"
