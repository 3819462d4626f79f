"""VFR's own SQL, followed step by step on rows this project wrote (a database of this
module's own): the /api/ml/metrics queries (app/api/ml/metrics/route.ts) and the outcome
tracker's reading of ml_predictions (scripts/ml/track-outcomes.ts). The statements below are
written from reading that code (same tables, columns, filters and arithmetic)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from vfr_ml_pipelines.lib.serving.outcomes import fill_outcomes
from vfr_ml_pipelines.lib.serving.vfr_tables import write_ml_predictions
from vfr_ml_pipelines_tests.helpers import prediction_frame

AS_OF = date(2031, 3, 3)
KNOWN = {"1d": date(2031, 3, 4), "1w": date(2031, 3, 10), "1m": date(2031, 4, 1)}

# route.ts, groupBy=daily, timeframe=all
METRICS_DAILY = """
SELECT date, total_predictions, correct_predictions, direction_accuracy, avg_actual_return, avg_market_return,
       avg_relative_performance, mean_absolute_error, avg_confidence, high_confidence_accuracy,
       low_confidence_accuracy, sharpe_ratio
FROM ml_daily_performance
ORDER BY date DESC
"""
# route.ts, groupBy=stock
METRICS_STOCK = """
SELECT ticker, total_predictions, direction_accuracy, avg_return, avg_relative_performance, last_outcome_timestamp
FROM ml_stock_performance
ORDER BY total_predictions DESC
LIMIT 100
"""
# route.ts, groupBy=none, timeframe=all
METRICS_SUMMARY = """
SELECT COUNT(*) as total_predictions,
       SUM(CASE WHEN direction_correct THEN 1 ELSE 0 END) as correct_predictions,
       ROUND(AVG(CASE WHEN direction_correct THEN 1.0 ELSE 0.0 END), 4) as direction_accuracy,
       ROUND(AVG(actual_return), 6) as avg_actual_return,
       ROUND(AVG(market_return), 6) as avg_market_return,
       ROUND(AVG(ABS(return_error)), 6) as mean_absolute_error
FROM ml_outcomes
WHERE data_complete = true AND outlier_flag = false
"""
METRICS_RECENT = "SELECT COUNT(*) as count FROM ml_predictions WHERE prediction_timestamp >= NOW() - INTERVAL '24 hours'"
# track-outcomes.ts getPredictionsNeedingOutcomes(daysAgo)
TRACKER_SELECT = """
SELECT p.prediction_id, p.ticker, p.prediction_timestamp, p.predicted_value, p.confidence_score,
       p.current_price, p.prediction_horizon
FROM ml_predictions p
LEFT JOIN ml_outcomes o ON p.prediction_id = o.prediction_id
WHERE p.prediction_timestamp >= NOW() - INTERVAL '{plus_one} days'
  AND p.prediction_timestamp < NOW() - INTERVAL '{days} days'
  AND o.outcome_id IS NULL
ORDER BY p.prediction_timestamp DESC
"""
# track-outcomes.ts logOutcome (its 18 columns, ON CONFLICT (prediction_id) DO NOTHING)
TRACKER_INSERT = """
INSERT INTO ml_outcomes (prediction_id, ticker, prediction_timestamp, outcome_timestamp, days_elapsed,
    predicted_direction, predicted_value, predicted_confidence, initial_price, final_price, actual_return,
    actual_direction, direction_correct, return_error, market_return, sector_return, relative_performance, data_complete)
VALUES (:id, :ticker, :ts, now(), 7, 'UP', :value, :conf, :price, :price, 0, 'NEUTRAL', false, 0, NULL, NULL, NULL, true)
ON CONFLICT (prediction_id) DO NOTHING
"""


def tracker_direction(predicted_value: float) -> str:
    """track-outcomes.ts: predicted direction from predicted_value."""
    if predicted_value > 0.001:
        return "UP"
    if predicted_value < -0.001:
        return "DOWN"
    return "NEUTRAL"


@pytest.fixture
def db(make_engine):
    engine = make_engine("vfr-metrics")
    yield engine
    engine.dispose()


def label(conn, horizon: str, symbol: str, forward_return: float) -> None:
    conn.execute(
        text(
            "INSERT INTO vfr_ml.labels (horizon, trade_date, symbol, forward_return, excess_return, known_date) "
            "VALUES (:h, :d, :s, :r, 0, :k)"
        ),
        {"h": horizon, "d": AS_OF, "s": symbol, "r": forward_return, "k": KNOWN[horizon]},
    )


def test_metrics_route_queries_read_our_outcomes(db):
    with db.begin() as conn:
        for horizon in ("1d", "1w", "1m"):
            frame = prediction_frame([("AAA", 100.0, 0.01, 0.2), ("BBB", 50.0, -0.02, 0.3)], AS_OF)
            frame["predicted_at"] = datetime.now(UTC) - timedelta(hours=1)
            write_ml_predictions(conn, frame, horizon, AS_OF)
            label(conn, horizon, "AAA", 0.02)
            label(conn, horizon, "BBB", 0.01)
        fill_outcomes(conn, today=KNOWN["1m"])
    with db.connect() as conn:
        daily = conn.execute(text(METRICS_DAILY)).all()
        stock = {r.ticker: r for r in conn.execute(text(METRICS_STOCK))}
        summary = conn.execute(text(METRICS_SUMMARY)).one()
        recent = conn.execute(text(METRICS_RECENT)).scalar_one()
    # AAA BUY and +2 %: right; BBB SELL and +1 %: wrong; on each outcome day (the close of
    # each horizon's known date) one of two is right
    assert [(r.date, r.total_predictions, r.correct_predictions, r.direction_accuracy) for r in daily] == [
        (KNOWN[h], 2, 1, Decimal("0.5000")) for h in ("1m", "1w", "1d")
    ]
    # the market return is the mean of the session's two labels (1.5 %)
    assert all(r.avg_market_return == Decimal("0.015") for r in daily)
    assert stock["AAA"].total_predictions == 3 and stock["AAA"].direction_accuracy == 1
    assert stock["BBB"].total_predictions == 3 and stock["BBB"].direction_accuracy == 0
    # |predicted_value - actual_return|: AAA |0.6 - 0.02|, BBB |-0.65 - 0.01| -> mean 0.62
    assert (summary.total_predictions, summary.correct_predictions, summary.direction_accuracy) == (6, 3, Decimal("0.5000"))
    assert summary.mean_absolute_error == Decimal("0.620000")
    assert recent == 6  # predictions made an hour ago are inside the 24-hour window


def test_outcome_tracker_reads_our_rows_as_the_directions_we_served(db):
    made = datetime.now(UTC) - timedelta(days=7, hours=12)
    with db.begin() as conn:
        frame = prediction_frame(
            [("AAA", 100.0, 0.01, 0.2), ("BBB", 50.0, -0.02, 0.3), ("CCC", 20.0, 0.0, 0.0)], AS_OF
        )
        frame["predicted_at"] = made
        write_ml_predictions(conn, frame, "1w", AS_OF)
    with db.connect() as conn:
        rows = conn.execute(text(TRACKER_SELECT.format(days=7, plus_one=8))).all()
    served = dict(zip(frame["symbol"], frame["direction"]))
    assert sorted(r.ticker for r in rows) == ["AAA", "BBB", "CCC"]
    # VFR reads a BUY as UP, a SELL as DOWN and a HOLD as NEUTRAL, as its cache path maps them
    assert {r.ticker: tracker_direction(float(r.predicted_value)) for r in rows} == {
        s: {"BUY": "UP", "SELL": "DOWN", "HOLD": "NEUTRAL"}[d] for s, d in served.items()
    }
    with db.begin() as conn:
        for symbol, r in (("AAA", 0.02), ("BBB", 0.01), ("CCC", 0.0)):
            label(conn, "1w", symbol, r)
        assert fill_outcomes(conn, today=KNOWN["1w"]).outcomes_written == 3
    with db.begin() as conn:
        # the tracker skips what we filled, and its own insert is harmless (one outcome per prediction)
        assert conn.execute(text(TRACKER_SELECT.format(days=7, plus_one=8))).all() == []
        for r in rows:
            conn.execute(text(TRACKER_INSERT), {"id": r.prediction_id, "ticker": r.ticker, "ts": r.prediction_timestamp,
                                                "value": r.predicted_value, "conf": r.confidence_score, "price": r.current_price})
        assert conn.execute(text("SELECT count(*) FROM ml_outcomes")).scalar_one() == 3
        assert conn.execute(text("SELECT count(*) FROM ml_outcomes WHERE days_elapsed = 7 AND data_complete")).scalar_one() == 3
