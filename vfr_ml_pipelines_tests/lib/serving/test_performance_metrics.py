"""The daily ml_performance_metrics roll-up, checked against hand-computed values on a real
PostgreSQL (a database of this module's own, emptied before each test)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text

from vfr_ml_pipelines.lib.serving.outcomes import fill_outcomes
from vfr_ml_pipelines.lib.serving.performance import roll_up_performance
from vfr_ml_pipelines.lib.serving.ttl import MARKET_TZ
from vfr_ml_pipelines.lib.serving.vfr_tables import ensure_enhancement_definition, prediction_timestamp
from vfr_ml_pipelines_tests.lib.serving.outcome_rows import emptied, write_label, write_predictions

D1, D2, D3 = date(2031, 3, 3), date(2031, 3, 4), date(2031, 3, 10)  # Monday, Tuesday, next Monday
COLUMNS = (
    "total_predictions", "successful_predictions", "fallback_predictions", "avg_latency_ms", "p95_latency_ms",
    "avg_confidence_score", "cache_hit_ratio", "direction_accuracy", "mean_absolute_error",
    "free_tier_predictions", "premium_tier_predictions", "enterprise_tier_predictions",
)


@pytest.fixture(scope="module")
def module_engine(make_engine):
    return make_engine("performance")


@pytest.fixture
def db(module_engine):
    return emptied(module_engine, "ml_predictions, vfr_ml.labels, ml_performance_metrics, vfr_ml.ml_prediction_sessions")


predict = write_predictions
label = write_label


def stored(conn, day: date) -> dict:
    rows = conn.execute(text(f"SELECT {', '.join(COLUMNS)} FROM ml_performance_metrics WHERE metric_date = :d"), {"d": day}).all()
    assert len(rows) == 1, rows
    return dict(zip(COLUMNS, rows[0]))


def build_history(conn) -> None:
    predict(conn, "1d", D1, [("AAA", 100.0, 0.02, 0.4), ("BBB", 50.0, -0.01, 0.1), ("CCC", 20.0, 0.0, 0.0),
                             ("DDD", 10.0, 0.02, 0.25)])
    predict(conn, "1w", D1, [("AAA", 100.0, 0.05, 0.3)])
    predict(conn, "1d", D2, [("AAA", 101.5, 0.01, 0.1002), ("BBB", 48.5, 0.01, 0.1003)])
    for symbol, forward_return in (("AAA", 0.015), ("BBB", -0.03), ("CCC", 0.01), ("DDD", -0.01)):
        label(conn, "1d", symbol, D1, D2, forward_return)
    label(conn, "1w", "AAA", D1, D3, 0.0)
    fill_outcomes(conn, today=D3)


NOTHING_MEASURED = {
    "fallback_predictions": 0, "avg_latency_ms": None, "p95_latency_ms": None, "cache_hit_ratio": None,
    "free_tier_predictions": 0, "premium_tier_predictions": 0, "enterprise_tier_predictions": 0,
}


def test_daily_values_by_hand(db):
    with db.begin() as conn:
        build_history(conn)
        day1 = roll_up_performance(conn, metric_date=D1)
        day2 = roll_up_performance(conn, metric_date=D2)
        day3 = roll_up_performance(conn, metric_date=D3)
        rows = {d: stored(conn, d) for d in (D1, D2, D3)}
    # D1: five predictions (confidences 0.4, 0.1, 0, 0.25, 0.3 -> mean 0.21), nothing known yet
    assert day1 == {
        "total_predictions": 5, "successful_predictions": 0, "avg_confidence_score": 0.21,
        "direction_accuracy": None, "mean_absolute_error": None, "outcomes_known": 0, "outcomes_scored": 0,
        **NOTHING_MEASURED,
    }
    # D2: two predictions (0.1002, 0.1003 -> 0.10025, a tie, half to even 0.1002); the four 1d
    # outcomes of D1 become known: AAA up/up, BBB down/down, CCC no call, DDD up/down ->
    # 2 of 3 calls right; |return errors| 0.5/100, 1/50, 0.2/20, 0.3/10 -> mean 0.065/4
    assert day2 == {
        "total_predictions": 2, "successful_predictions": 2, "avg_confidence_score": 0.1002,
        "direction_accuracy": 0.6667, "mean_absolute_error": 0.01625, "outcomes_known": 4, "outcomes_scored": 3,
        **NOTHING_MEASURED,
    }
    # D3: no prediction; AAA's 1w outcome (forecast +5 %, realized 0 %) becomes known
    assert day3 == {
        "total_predictions": 0, "successful_predictions": 0, "avg_confidence_score": None,
        "direction_accuracy": 0.0, "mean_absolute_error": 0.05, "outcomes_known": 1, "outcomes_scored": 1,
        **NOTHING_MEASURED,
    }
    assert rows[D2] == {
        "total_predictions": 2, "successful_predictions": 2, "avg_confidence_score": Decimal("0.1002"),
        "direction_accuracy": Decimal("0.6667"), "mean_absolute_error": Decimal("0.01625000"), **NOTHING_MEASURED,
    }
    assert rows[D1]["avg_confidence_score"] == Decimal("0.2100") and rows[D3]["direction_accuracy"] == Decimal("0.0000")


def test_rerun_upserts_one_row_and_picks_up_new_outcomes(db):
    with db.begin() as conn:
        build_history(conn)
        first = roll_up_performance(conn, metric_date=D2)
        assert roll_up_performance(conn, metric_date=D2) == first
        assert stored(conn, D2)["direction_accuracy"] == Decimal("0.6667")
    with db.begin() as conn:
        # one more 1d outcome known on D2 (EEE: forecast +1 %, realized +2 %)
        predict(conn, "1d", D1, [("EEE", 10.0, 0.01, 0.2)])
        label(conn, "1d", "EEE", D1, D2, 0.02)
        fill_outcomes(conn, today=D3)
        again = roll_up_performance(conn, metric_date=D2)
        row = stored(conn, D2)
        count = conn.execute(text("SELECT count(*) FROM ml_performance_metrics")).scalar_one()
    # 3 of 4 calls right; MAE (0.065 + 0.1/10) / 5 = 0.015
    assert (again["successful_predictions"], again["direction_accuracy"], again["mean_absolute_error"]) == (3, 0.75, 0.015)
    assert (row["direction_accuracy"], row["mean_absolute_error"]) == (Decimal("0.7500"), Decimal("0.01500000"))
    assert count == 1


def test_only_this_projects_rows_count_and_days_are_new_york_days(db):
    with db.begin() as conn:
        ours = ensure_enhancement_definition(conn, "1d")
        theirs = conn.execute(
            text(
                "INSERT INTO ml_enhancement_definitions (enhancement_name, enhancement_type, prediction_horizon) "
                "VALUES ('vfr_native_price_1d', 'price_prediction', '1d') "
                "ON CONFLICT (enhancement_name) DO UPDATE SET is_active = true RETURNING enhancement_id"
            )
        ).scalar_one()
        insert = text(
            "INSERT INTO ml_predictions (ticker, prediction_timestamp, enhancement_id, prediction_horizon, prediction_type, "
            "predicted_value, confidence_score, current_price, actual_value, actual_timestamp, prediction_error, direction_correct) "
            "VALUES (:t, :ts, :e, '1d', 'price_target', 101, :c, 100, :a, :ats, :err, :dc)"
        )
        # VFR's own row, predicted and known on D2: not this project's
        conn.execute(insert, {"t": "AAA", "ts": prediction_timestamp(D2), "e": theirs, "c": 0.9, "a": 99,
                              "ats": prediction_timestamp(D2), "err": -2, "dc": False})
        # ours, predicted 23:30 New York on D2 = 04:30 UTC on the next day: counts for D2
        late = datetime(2031, 3, 4, 23, 30, tzinfo=MARKET_TZ)
        conn.execute(insert, {"t": "BBB", "ts": late, "e": ours, "c": 0.2, "a": None, "ats": None, "err": None, "dc": None})
        d2 = roll_up_performance(conn, metric_date=D2)
        d2_next = roll_up_performance(conn, metric_date=date(2031, 3, 5))
    assert (d2["total_predictions"], d2["avg_confidence_score"], d2["outcomes_known"]) == (1, 0.2, 0)
    assert d2_next["total_predictions"] == 0


def test_bad_metric_date_raises(db):
    with pytest.raises(ValueError, match="metric_date must be a date"):
        with db.begin() as conn:
            roll_up_performance(conn, metric_date="2031-03-04")
