"""VFR's key formats: what is built parses back, and nothing else parses as ours."""

from __future__ import annotations

from vfr_ml_pipelines.lib.serving import vfr_keys


def test_prediction_key_is_upper_case_symbol_horizon_model():
    assert vfr_keys.prediction_key("aapl", "1w", "default") == "vfr:ml:prediction:AAPL:1w:default"


def test_a_built_prediction_key_parses_back_with_or_without_a_companion_suffix():
    key = vfr_keys.prediction_key("brk.b", "3m", "vfr-3m.v12")
    expected = vfr_keys.PredictionKey("BRK.B", "3m", "vfr-3m.v12")
    assert vfr_keys.parse_prediction_key(key) == expected
    assert vfr_keys.parse_prediction_key(vfr_keys.meta_key(key)) == expected
    assert vfr_keys.parse_prediction_key(vfr_keys.compressed_key(key)) == expected
    assert vfr_keys.base_key(vfr_keys.compressed_key(key)) == key


def test_other_keys_do_not_parse_as_predictions_or_metadata():
    assert vfr_keys.parse_prediction_key(vfr_keys.model_metadata_key("vfr-1w.v1")) is None
    assert vfr_keys.parse_prediction_key("vfr:ml:prediction:AAPL") is None
    assert vfr_keys.parse_model_metadata_key(vfr_keys.prediction_key("AAPL", "1w", "default")) is None
    assert vfr_keys.parse_model_metadata_key(vfr_keys.meta_key(vfr_keys.model_metadata_key("vfr-1w.v1"))) == "vfr-1w.v1"


def test_scan_patterns_take_the_prefix_literally():
    assert vfr_keys.prediction_pattern("veritak:mcp:", horizon="1w") == "veritak:mcp:vfr:ml:prediction:*:1w:*"
    assert vfr_keys.prediction_pattern("t[1]:", horizon="1w", model_id="default") == "t\\[1\\]:vfr:ml:prediction:*:1w:default"
    assert vfr_keys.prediction_pattern("p:") == "p:vfr:ml:prediction:*:*:*"
    assert vfr_keys.model_metadata_pattern("p:", "vfr-") == "p:vfr:ml:model:metadata:vfr-*"
