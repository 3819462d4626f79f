"""The blocking prediction gate: good frames pass, each kind of problem is reported with
its symbol, field and value, and the gate agrees with the ml_predictions writer."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.serving.payloads import DirectionThresholds
from vfr_ml_pipelines.lib.serving.predict import prediction_rows, symbol_fields
from vfr_ml_pipelines.lib.serving.prediction_checks import (
    MAX_LISTED_PROBLEMS,
    check_predictions,
    direction_share_problems,
    direction_shares,
)
from vfr_ml_pipelines.lib.serving.vfr_tables import write_ml_predictions

UNIVERSE = ["AAA", "BBB", "CCC", "DDD", "EEE"]


def good_rows(horizon: str = "1w", symbols: list[str] = UNIVERSE) -> pd.DataFrame:
    """Hand-built rows: p, confidence = |2p - 1|, direction by 0.55 / 0.45, expected
    return on the side of 0 that p says."""
    base = [
        # probability, expected_return, direction
        (0.70, 0.020, "BUY"),
        (0.30, -0.015, "SELL"),
        (0.50, 0.0, "HOLD"),
        (0.52, 0.001, "HOLD"),
        (0.45, -0.004, "SELL"),
    ]
    rows = []
    for i, symbol in enumerate(symbols):
        p, er, direction = base[i % len(base)]
        rows.append(
            {
                "as_of_date": date(2026, 11, 20), "horizon": horizon, "model_name": "vfr-lightgbm-1w",
                "model_version": "3", "symbol": symbol, "expected_return": er, "probability": p,
                "direction": direction, "confidence": abs(2 * p - 1), "current_price": 10.0 + 7 * i,
                "features": json.dumps({"rsi_14": 55.0 + i, "ret_5d": 0.01 * i}),
                "feature_completeness": 1.0, "predicted_at": datetime(2026, 11, 20, 23, tzinfo=UTC),
            }
        )
    return pd.DataFrame(rows)


def with_value(frame: pd.DataFrame, symbol: str, **values) -> pd.DataFrame:
    out = frame.reset_index(drop=True)
    (index,) = out.index[out["symbol"] == symbol]
    for column, value in values.items():
        out[column] = out[column].astype(object)
        out.at[index, column] = value
    return out


def test_good_rows_pass_with_full_coverage():
    result = check_predictions(good_rows(), UNIVERSE)
    assert result.problems == []
    assert result.passed is True
    assert result.coverage == 1.0
    assert result.metadata["rows"] == 5 and result.metadata["covered_symbols"] == 5
    assert (result.metadata["buy"], result.metadata["hold"], result.metadata["sell"]) == (1, 2, 2)


def test_rows_built_by_prediction_rows_pass():
    """The frame shape the pipeline really produces (predict.prediction_rows) passes."""
    features = pd.DataFrame({"symbol": UNIVERSE, "rsi_14": [40.0, 50.0, np.nan, 60.0, 70.0],
                             "quality_score": [0.9, 0.8, 0.5, 1.0, 0.77777]})
    prices = pd.DataFrame({"symbol": UNIVERSE, "close": [10.0, 20.0, 30.0, 40.0, 50.0]})
    # one calibrated model gives both: P(up) above 0.5 exactly for positive expected returns
    rows = prediction_rows(
        features, prices, np.array([0.03, -0.02, 0.0, 0.004, -0.05]),
        probabilities=np.array([0.8, 0.45, 0.5, 0.62, 0.3]), feature_names=["rsi_14"],
        thresholds=DirectionThresholds(), as_of=date(2026, 11, 20), horizon="1w",
        model_name="m", model_version="1", predicted_at=datetime(2026, 11, 20, 23, tzinfo=UTC),
    )
    result = check_predictions(rows, UNIVERSE, thresholds=DirectionThresholds())
    assert result.problems == [] and result.passed
    # the row quality is payloads.row_quality's: completeness over the published features,
    # the matrix's quality score at 4 decimals
    assert rows["feature_completeness"].tolist() == [1.0, 1.0, 0.0, 1.0, 1.0]
    assert rows["feature_quality_score"].tolist() == [0.9, 0.8, 0.5, 1.0, 0.7778]
    assert [json.loads(f) for f in rows["features"]] == [{"rsi_14": 40.0}, {"rsi_14": 50.0}, {}, {"rsi_14": 60.0}, {"rsi_14": 70.0}]
    assert rows["current_price"].tolist() == [10.0, 20.0, 30.0, 40.0, 50.0]
    assert rows["direction"].tolist() == ["BUY", "SELL", "HOLD", "BUY", "SELL"]
    # the model-independent part computed once for a session gives the same rows
    fields = symbol_fields(features, prices, feature_names=["rsi_14"], as_of=date(2026, 11, 20))
    kwargs = dict(probabilities=np.array([0.8, 0.45, 0.5, 0.62, 0.3]), feature_names=["rsi_14"],
                  thresholds=DirectionThresholds(), as_of=date(2026, 11, 20), horizon="1w",
                  model_name="m", model_version="1", predicted_at=datetime(2026, 11, 20, 23, tzinfo=UTC))
    shared = prediction_rows(features, prices, np.array([0.03, -0.02, 0.0, 0.004, -0.05]), fields=fields, **kwargs)
    pd.testing.assert_frame_equal(shared, rows)
    with pytest.raises(ValueError, match="not those of these feature rows"):
        prediction_rows(features.iloc[::-1], prices, np.zeros(5), fields=fields, **kwargs)
    with pytest.raises(ValueError, match="no quality_score column"):
        prediction_rows(
            features.drop(columns=["quality_score"]), prices, np.zeros(5), probabilities=np.full(5, 0.5),
            feature_names=["rsi_14"], thresholds=DirectionThresholds(), as_of=date(2026, 11, 20), horizon="1w",
            model_name="m", model_version="1", predicted_at=datetime(2026, 11, 20, 23, tzinfo=UTC),
        )


def test_probability_and_expected_return_must_not_point_opposite_ways():
    # P(up) 0.52 with a negative expected return, and P(up) 0.45 with a positive one
    rows = with_value(with_value(good_rows(), "DDD", expected_return=-0.002), "EEE", expected_return=0.003)
    result = check_predictions(rows, UNIVERSE, check_ordering=False)
    assert result.problems == [
        "DDD: probability 0.52 and expected_return -0.002 point opposite ways",
        "EEE: probability 0.45 and expected_return 0.003 point opposite ways",
    ]
    assert check_predictions(rows, UNIVERSE, check_ordering=False, check_signs=False).passed
    # a coin flip (p = 0.5) or a zero expected return contradicts nothing
    assert check_predictions(with_value(good_rows(), "CCC", expected_return=0.01), UNIVERSE, check_ordering=False).passed


def test_direction_shares_far_from_validation_fail_with_a_clear_message():
    rows = good_rows()  # BUY 1, SELL 2, HOLD 2 of 5
    assert direction_shares(rows) == {"BUY": 0.2, "SELL": 0.4, "HOLD": 0.4}
    problems, distance = direction_share_problems(rows, {"BUY": 0.3, "SELL": 0.3, "HOLD": 0.4}, "m")
    assert problems == [] and distance == pytest.approx(0.1)
    all_sell = rows.assign(direction="SELL")
    problems, distance = direction_share_problems(all_sell, {"BUY": 0.3, "SELL": 0.0, "HOLD": 0.7}, "vfr-lightgbm-1m/3")
    assert distance == pytest.approx(1.0)
    assert problems == [
        "vfr-lightgbm-1m/3: BUY/SELL/HOLD shares 0.00/1.00/0.00 of 5 predictions are far from the validation "
        "period's 0.30/0.00/0.70 (distance 1.00 > 0.5); the model says something it never said on validation: "
        "check this session's features and the model's calibration before serving it"
    ]
    # all SELL is fine when the validation period said the same
    assert direction_share_problems(all_sell, {"BUY": 0.0, "SELL": 0.9, "HOLD": 0.1}, "m")[0] == []


@pytest.mark.parametrize(
    ("symbol", "values", "expected"),
    [
        ("BBB", {"probability": 1.00001}, "BBB: probability 1.00001 outside 0..1"),
        ("BBB", {"probability": float("nan")}, "BBB: probability nan is not a finite number"),
        ("CCC", {"confidence": float("inf")}, "CCC: confidence inf is not a finite number"),
        ("CCC", {"confidence": -0.2}, "CCC: confidence -0.2 outside 0..1"),
        ("AAA", {"confidence": 0.39}, "AAA: confidence 0.39 is not |2p - 1|"),
        ("AAA", {"direction": "UP"}, "AAA: direction 'UP' is not one of BUY, SELL, HOLD"),
        ("BBB", {"direction": "BUY"}, "BBB: direction BUY contradicts probability 0.3"),
        ("AAA", {"direction": "SELL"}, "AAA: direction SELL contradicts probability 0.7"),
        ("AAA", {"expected_return": -0.01}, "EEE: probability 0.45 below AAA's 0.7 although its expected_return -0.004 is above -0.01"),
        ("AAA", {"expected_return": 0.51}, "AAA: expected_return 0.51 beyond the plausible +-0.5 for 1w"),
        ("DDD", {"expected_return": None}, "DDD: expected_return None is not a finite number"),
        ("DDD", {"current_price": 0.0}, "DDD: current_price 0.0 is not above 0"),
        ("DDD", {"current_price": 1e9}, "DDD: ml_predictions.current_price: 1000000000.0 does not fit decimal(12,4)"),
        ("DDD", {"current_price": 0.00004}, "DDD: ml_predictions.current_price 4e-05 is not above 0 at 4 decimals"),
        ("EEE", {"feature_completeness": 1.5}, "EEE: feature_completeness 1.5 outside 0..1"),
        ("EEE", {"features": '{"rsi_14": NaN}'}, "EEE: features is not strict JSON"),
        ("EEE", {"features": {"rsi_14": float("inf"), "ret_5d": 0.1}}, "EEE: features rsi_14=inf not finite numbers"),
        ("EEE", {"features": "[1, 2]"}, "EEE: features is list, not a JSON object"),
        ("EEE", {"horizon": "2w"}, "EEE 2w: horizon '2w' is not one VFR reads"),
    ],
)
def test_each_problem_names_symbol_field_and_value(symbol, values, expected):
    result = check_predictions(with_value(good_rows(), symbol, **values), UNIVERSE)
    assert result.passed is False
    assert any(p.startswith(expected) for p in result.problems), result.problems


def test_one_nan_is_reported_once_not_again_as_a_table_misfit():
    result = check_predictions(with_value(good_rows(), "AAA", current_price=float("nan")), UNIVERSE)
    assert result.problems == ["AAA: current_price nan is not a finite number"]


def test_duplicates_strangers_and_bad_symbols():
    rows = pd.concat([good_rows(), good_rows().iloc[[0]], good_rows(symbols=["ZZZ", "X" * 21])])
    result = check_predictions(rows, UNIVERSE)
    assert "AAA: symbol appears 2 times" in result.problems
    assert "ZZZ: symbol is not in the universe" in result.problems
    assert any(p.startswith(f"{'X' * 21}: ml_predictions.ticker") for p in result.problems), result.problems
    # the same symbol in two horizons is not a duplicate
    two = check_predictions(pd.concat([good_rows("1d"), good_rows("1w")]), UNIVERSE)
    assert two.passed, two.problems


def test_coverage_threshold_per_horizon():
    universe = [f"S{i:02d}" for i in range(20)]
    result = check_predictions(good_rows(symbols=universe[:19]), universe, min_coverage=0.95)
    assert result.passed and result.coverage == pytest.approx(19 / 20)
    short = check_predictions(good_rows(symbols=universe[:18]), universe, min_coverage=0.95)
    assert not short.passed and short.coverage == pytest.approx(18 / 20)
    assert short.problems[0].startswith("coverage 0.9000 of 1w below 0.95: 2 of 20 universe symbols have no prediction (e.g. S18, S19)")
    # full 1d but short 1w: the lower share counts
    mixed = pd.concat([good_rows("1d", universe), good_rows("1w", universe[:10])])
    result = check_predictions(mixed, universe)
    assert result.coverage == pytest.approx(0.5) and not result.passed
    empty = check_predictions(good_rows().iloc[0:0], UNIVERSE)
    assert not empty.passed and empty.coverage == 0.0
    assert "no predictions for any of the 5 universe symbols" in empty.problems


def test_thresholds_make_the_direction_exact():
    hold_at_60 = with_value(good_rows(), "AAA", direction="HOLD", probability=0.6, confidence=0.2)
    assert check_predictions(hold_at_60, UNIVERSE).passed  # not contradictory without thresholds
    result = check_predictions(hold_at_60, UNIVERSE, thresholds=DirectionThresholds(buy=0.55, sell=0.45))
    assert any(p.startswith("AAA: direction HOLD contradicts probability 0.6") and "give BUY" in p for p in result.problems)
    assert check_predictions(hold_at_60, UNIVERSE, thresholds=DirectionThresholds(buy=0.65, sell=0.45)).passed


def test_probability_must_not_fall_as_expected_return_rises():
    # a calibrator with a negative slope: every neighbour pair reverses
    reversed_rows = good_rows().assign(probability=lambda f: 1 - f["probability"], direction="HOLD")
    reversed_rows["confidence"] = (2 * reversed_rows["probability"] - 1).abs()
    result = check_predictions(reversed_rows, UNIVERSE, check_signs=False)
    assert result.problems == [
        "EEE: probability 0.55 below BBB's 0.7 although its expected_return -0.004 is above -0.015",
        "CCC: probability 0.5 below EEE's 0.55 although its expected_return 0.0 is above -0.004",
        "DDD: probability 0.48 below CCC's 0.5 although its expected_return 0.001 is above 0.0",
        "AAA: probability 0.30000000000000004 below DDD's 0.48 although its expected_return 0.02 is above 0.001",
    ]
    assert check_predictions(reversed_rows, UNIVERSE, check_ordering=False, check_signs=False).passed
    # two models (or horizons) are ordered separately
    two_models = pd.concat([good_rows(), reversed_rows.assign(model_version="4", probability=0.5, confidence=0.0)])
    # (and two versions of one horizon are duplicates: both would be served under `default`)
    assert check_predictions(two_models, UNIVERSE).problems == [f"{s}: symbol appears 2 times" for s in UNIVERSE]


def test_plausibility_bounds_per_horizon_and_overrides():
    big_day = with_value(good_rows("1d"), "AAA", expected_return=0.25)
    assert not check_predictions(big_day, UNIVERSE).passed  # 1d default bound 0.2
    assert check_predictions(big_day, UNIVERSE, max_abs_expected_return={"1d": 0.3}).passed
    assert check_predictions(with_value(good_rows("1m"), "AAA", expected_return=0.25), UNIVERSE).passed  # 1m bound 1.0


def test_problems_are_capped_with_a_count_of_the_rest():
    universe = [f"S{i:03d}" for i in range(100)]
    rows = good_rows(symbols=universe).assign(probability=2.0)
    result = check_predictions(rows, universe)
    # per row: probability outside 0..1 (direction / confidence checks skip an invalid p)
    assert result.metadata["problems"] == 100
    assert len(result.problems) == MAX_LISTED_PROBLEMS + 1
    assert result.problems[-1] == f"... and {100 - MAX_LISTED_PROBLEMS} more"


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="no column.*'probability'"):
        check_predictions(good_rows().drop(columns=["probability"]), UNIVERSE)
    with pytest.raises(ValueError, match="universe is empty"):
        check_predictions(good_rows(), [])
    with pytest.raises(ValueError, match="min_coverage"):
        check_predictions(good_rows(), UNIVERSE, min_coverage=1.5)
    with pytest.raises(ValueError, match=r"max_abs_expected_return\['1w'\]"):
        check_predictions(good_rows(), UNIVERSE, max_abs_expected_return={"1w": -1.0})


@pytest.mark.parametrize(
    "values",
    [{"current_price": 1e9}, {"current_price": 0.00004}, {"direction": "UP"}, {"confidence": 1.00006, "probability": 1.00003}],
)
def test_the_gate_refuses_what_the_writer_refuses(engine, values):
    """A frame the gate passes is written; a table misfit the gate reports makes the writer
    raise (the gate reads the writer's own fitting). Symbols of their own: the `engine`
    database is shared with other test modules."""
    universe = [f"GATE{c}" for c in "ABCDE"]
    good = good_rows(symbols=universe)
    assert check_predictions(good, universe).passed
    with engine.begin() as conn:
        assert write_ml_predictions(conn, good, "1w", date(2031, 1, 6)) == 5
    bad = with_value(good, "GATEA", **values)
    assert not check_predictions(bad, universe).passed
    with pytest.raises(ValueError, match="GATEA"):
        with engine.begin() as conn:
            write_ml_predictions(conn, bad, "1w", date(2031, 1, 7))
