"""The validation record a trained version carries (`models.validation_record`): its counts
against the serving direction rule, its spread by hand, and its round trip through MLflow."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.models import training_record
from vfr_ml_pipelines.lib.models.validation_record import (
    VALIDATION_RECORD_TAG, ValidationRecord, cross_sectional_spread, from_tags, validation_record,
)
from vfr_ml_pipelines.lib.serving.payloads import DirectionThresholds, direction_for
from vfr_ml_pipelines_tests.defs.monitoring.champion import champion_version, register_champion


def _predictions(probabilities, expected=None, segment="val", days=None) -> pd.DataFrame:
    n = len(probabilities)
    return pd.DataFrame({
        "trade_date": days if days is not None else pd.Timestamp("2026-01-05"),
        "expected_return": expected if expected is not None else np.zeros(n),
        "probability": probabilities, "segment": segment,
    })


def test_counts_match_the_serving_direction_rule() -> None:
    rng = np.random.default_rng(7)
    p = np.clip(rng.beta(5, 5, size=20_000), 0, 1)
    val = _predictions(p)
    test_rows = _predictions(np.full(500, 0.99), segment="test")  # never part of the record
    record = validation_record(pd.concat([val, test_rows]))
    assert record.rows == 20_000 and record.days == 1
    for buy, sell in [(0.55, 0.45), (0.6, 0.4), (0.51, 0.49)]:
        rule = DirectionThresholds(buy=buy, sell=sell)
        expected = pd.Series([direction_for(x, rule) for x in p]).value_counts().to_dict()
        assert record.direction_counts(buy, sell) == {d: expected.get(d, 0) for d in ("BUY", "HOLD", "SELL")}
    assert record.probability_mean == pytest.approx(p.mean())


def test_bin_edges_by_hand() -> None:
    record = validation_record(_predictions([0.0, 0.449, 0.5, 0.5499, 0.55, 0.57, 0.99, 1.0]))
    assert record.direction_counts(0.55, 0.45) == {"BUY": 4, "HOLD": 2, "SELL": 2}
    assert record.probability_counts[55] == 1 and record.probability_counts[99] == 2  # 0.99 and 1.0
    with pytest.raises(ValueError, match="buy=0.555 is not on the validation record's 0.01 grid"):
        record.direction_counts(0.555, 0.45)


def test_spread_is_the_mean_daily_cross_sectional_std() -> None:
    days = [pd.Timestamp("2026-01-05")] * 3 + [pd.Timestamp("2026-01-06")] * 2
    frame = _predictions([0.5] * 5, expected=[0.0, 0.03, 0.06, 1.0, 1.02], days=days)
    # day 1: std(ddof=0) of 0, 0.03, 0.06 = sqrt(0.0006); day 2: 0.01 (the level difference is not spread)
    assert cross_sectional_spread(frame) == pytest.approx((np.sqrt(0.0006) + 0.01) / 2)
    assert validation_record(frame).expected_return_spread == pytest.approx((np.sqrt(0.0006) + 0.01) / 2)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match=r"lack column\(s\) \['probability'\]"):
        validation_record(_predictions([0.5]).drop(columns="probability"))
    with pytest.raises(ValueError, match="no validation rows"):
        validation_record(_predictions([0.5], segment="test"))
    with pytest.raises(ValueError, match="within \\[0, 1\\]"):
        validation_record(_predictions([1.5]))
    with pytest.raises(ValueError, match=f"tag '{VALIDATION_RECORD_TAG}' is not a validation record"):
        from_tags({VALIDATION_RECORD_TAG: "{not json"})
    short = json.dumps({"rows": 3, "days": 1, "probability_counts": [3], "probability_mean": 0.5, "expected_return_spread": 0.1})
    with pytest.raises(ValueError, match="1 bins summing to 3, expected 100"):
        from_tags({VALIDATION_RECORD_TAG: short})


def test_round_trip_through_the_registry_and_older_versions(tmp_path) -> None:
    record = validation_record(_predictions(np.linspace(0.3, 0.7, 101)))
    registry = register_champion(tmp_path / "with", {VALIDATION_RECORD_TAG: record.to_tag()})
    assert from_tags(champion_version(registry).tags) == record
    older = register_champion(tmp_path / "without", {})
    assert from_tags(champion_version(older).tags) is None


def test_register_challenger_records_the_selected_candidates_validation(tmp_path) -> None:
    registry = register_champion(tmp_path, {})
    source = champion_version(registry)
    chosen = SimpleNamespace(name="lightgbm", predictions=_predictions([0.2, 0.5, 0.8, 0.9]))
    result = SimpleNamespace(horizon="1w", selected=lambda: chosen)
    challenger = training_record.register_challenger(registry, result, {"lightgbm": source}, "fingerprint-1")
    stored = from_tags(registry.version(challenger.name, challenger.version).tags)
    assert isinstance(stored, ValidationRecord)
    assert stored.direction_counts(0.55, 0.45) == {"BUY": 2, "HOLD": 1, "SELL": 1}
