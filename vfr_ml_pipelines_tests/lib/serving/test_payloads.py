from __future__ import annotations

import pytest

from vfr_ml_pipelines.lib.serving import payloads
from vfr_ml_pipelines.lib.serving.vfr_reader import validate_prediction


def test_direction_and_confidence_mapping():
    t = payloads.DirectionThresholds(buy=0.55, sell=0.45)
    assert payloads.direction_for(0.55, t) == "BUY"
    assert payloads.direction_for(0.5499, t) == "HOLD"
    assert payloads.direction_for(0.45, t) == "SELL"
    assert payloads.confidence_for(0.5) == 0.0
    assert payloads.confidence_for(0.9) == pytest.approx(0.8)
    assert payloads.confidence_for(0.1) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        payloads.DirectionThresholds(buy=0.4, sell=0.45)


def test_feature_vector_drops_missing_and_non_finite_values():
    vector = payloads.feature_vector(
        "aapl", {"a": 1.5, "b": float("nan"), "c": float("inf"), "d": None}, ["a", "b", "c", "d"], 123
    )
    assert vector == {
        "symbol": "AAPL", "features": {"a": 1.5}, "featureNames": ["a"], "timestamp": 123,
        "completeness": 0.25, "qualityScore": 1.0,
    }


def test_ml_prediction_is_valid_and_rejects_bad_values():
    vector = payloads.feature_vector("AAPL", {"a": 1.0}, ["a"], 1)
    good = payloads.ml_prediction(
        symbol="aapl", model_id="default", model_version="3", horizon="1w", expected_return=0.01,
        probability=0.6, direction="BUY", confidence=0.2, features=vector, made_at_ms=1000, ttl_seconds=60,
    )
    assert validate_prediction(good) == []
    assert good["expiresAt"] == 61_000 and good["symbol"] == "AAPL"
    with pytest.raises(ValueError, match="outside 0..1"):
        payloads.ml_prediction(**{**_args(vector), "probability": 1.2})
    with pytest.raises(ValueError, match="finite"):
        payloads.ml_prediction(**{**_args(vector), "expected_return": float("inf")})
    with pytest.raises(ValueError, match="horizon"):
        payloads.ml_prediction(**{**_args(vector), "horizon": "2w"})


def _args(vector):
    return dict(
        symbol="AAPL", model_id="default", model_version="3", horizon="1w", expected_return=0.01,
        probability=0.6, direction="BUY", confidence=0.2, features=vector, made_at_ms=1000, ttl_seconds=60,
    )


def test_validate_prediction_names_each_problem():
    problems = validate_prediction({"symbol": "aapl", "horizon": "2w"})
    assert "symbol is not upper case" in problems
    assert any("horizon" in p for p in problems)
    assert any("prediction missing" in p for p in problems)
