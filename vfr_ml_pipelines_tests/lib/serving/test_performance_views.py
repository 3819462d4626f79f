"""VFR's performance views (`ml_daily_performance`, `ml_stock_performance`, read by GET
/api/ml/metrics) after migration 016: each refresh reads small tables the triggers on
`ml_outcomes` keep current, and gives the very rows (same values, same numeric scales as
text, which is how VFR's driver reads them) as VFR's definitions computed over all of
`ml_outcomes` (012's SELECTs, the independent reference here), after every kind of write:
our fills, a restatement that changes outcomes, VFR's own tracker inserting an outcome with
no market return, outcomes flagged as outliers, predictions deleted (the cascade removes
their outcomes and a ticker's latest one), and a TRUNCATE."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.lib import settings
from vfr_ml_pipelines.lib.serving.outcomes import fill_outcomes
from vfr_ml_pipelines.lib.warehouse import apply_migrations, create_warehouse_engine
from vfr_ml_pipelines_tests.lib.serving.outcome_rows import write_label, write_predictions

# 012_vfr_outcomes.sql (VFR's database/migrations/ml_outcomes_tracking.sql), over every outcome
DAILY_REFERENCE = """
SELECT DATE(outcome_timestamp) as date, COUNT(*) as total_predictions,
    SUM(CASE WHEN direction_correct THEN 1 ELSE 0 END) as correct_predictions,
    ROUND(AVG(CASE WHEN direction_correct THEN 1.0 ELSE 0.0 END), 4) as direction_accuracy,
    AVG(actual_return) as avg_actual_return, AVG(market_return) as avg_market_return,
    AVG(relative_performance) as avg_relative_performance, AVG(ABS(return_error)) as mean_absolute_error,
    STDDEV(return_error) as return_error_stddev, AVG(predicted_confidence) as avg_confidence,
    AVG(CASE WHEN predicted_confidence >= 0.8 THEN CASE WHEN direction_correct THEN 1.0 ELSE 0.0 END END) as high_confidence_accuracy,
    AVG(CASE WHEN predicted_confidence < 0.6 THEN CASE WHEN direction_correct THEN 1.0 ELSE 0.0 END END) as low_confidence_accuracy,
    CASE WHEN STDDEV(actual_return) > 0 THEN AVG(actual_return) / STDDEV(actual_return) ELSE NULL END as sharpe_ratio
FROM ml_outcomes WHERE data_complete = true AND outlier_flag = false GROUP BY DATE(outcome_timestamp)
"""
STOCK_REFERENCE = """
SELECT ticker, COUNT(*) as total_predictions, AVG(CASE WHEN direction_correct THEN 1.0 ELSE 0.0 END) as direction_accuracy,
    AVG(actual_return) as avg_return, AVG(relative_performance) as avg_relative_performance,
    MAX(outcome_timestamp) as last_outcome_timestamp
FROM ml_outcomes WHERE data_complete = true AND outlier_flag = false GROUP BY ticker HAVING COUNT(*) >= 3
"""
# VFR's outcome tracker (scripts/ml/track-outcomes.ts logOutcome): no market or sector return
TRACKER_INSERT = """
INSERT INTO ml_outcomes (prediction_id, ticker, prediction_timestamp, outcome_timestamp, days_elapsed,
    predicted_direction, predicted_value, predicted_confidence, initial_price, final_price, actual_return,
    actual_direction, direction_correct, return_error, market_return, sector_return, relative_performance, data_complete)
SELECT prediction_id, ticker, prediction_timestamp, now(), 7, 'UP', predicted_value, confidence_score, current_price,
    current_price * 1.03, 0.03, 'UP', true, abs(predicted_value - 0.03), NULL, NULL, NULL, true
FROM ml_predictions WHERE ticker = :ticker
ON CONFLICT (prediction_id) DO NOTHING
"""

SYMBOLS = [f"S{i}" for i in range(7)]
FIRST = date(2031, 3, 3)  # a Monday
HORIZON_DAYS = {"1d": 1, "1w": 7, "1m": 29}


@pytest.fixture
def db(make_engine):
    engine = make_engine("vfr-perf-views")
    yield engine
    engine.dispose()


def _as_text(conn, query: str, key: str) -> list[str]:
    """Each row as PostgreSQL's text (numeric scales included), in key order."""
    return [r[0] for r in conn.execute(text(f"SELECT t::text FROM ({query}) AS t ORDER BY {key}"))]


def _assert_views_match_the_definitions(db) -> tuple[int, int]:
    with db.begin() as conn:
        conn.execute(text("SELECT refresh_ml_performance_views()"))
    with db.connect() as conn:
        daily = _as_text(conn, "SELECT * FROM ml_daily_performance", "date")
        stock = _as_text(conn, "SELECT * FROM ml_stock_performance", "ticker")
        assert daily == _as_text(conn, DAILY_REFERENCE, "date")
        assert stock == _as_text(conn, STOCK_REFERENCE, "ticker")
    return len(daily), len(stock)


def _sessions(conn, rng: np.random.Generator, days: list[date]) -> None:
    for day in days:
        for horizon, n in HORIZON_DAYS.items():
            rows = [(s, float(rng.uniform(10, 200)), float(rng.normal(0, 0.01)), float(rng.uniform(0, 1))) for s in SYMBOLS]
            write_predictions(conn, horizon, day, rows)
            for s in SYMBOLS:
                write_label(conn, horizon, s, day, day + timedelta(days=n), float(rng.normal(0.001, 0.03)))


def test_the_views_are_vfrs_definitions_after_every_kind_of_write(db):
    rng = np.random.default_rng(5)
    days = [FIRST + timedelta(days=i) for i in range(0, 12, 2)]
    with db.begin() as conn:
        _sessions(conn, rng, days[:4])
        fill_outcomes(conn, today=days[3] + timedelta(days=8))  # 1d and 1w outcomes known
    n_daily, n_stock = _assert_views_match_the_definitions(db)
    assert n_daily >= 6 and n_stock == len(SYMBOLS)

    # more sessions; a fill that adds outcomes of old and new days
    with db.begin() as conn:
        _sessions(conn, rng, days[4:])
        fill_outcomes(conn, today=days[-1] + timedelta(days=40))
    _assert_views_match_the_definitions(db)

    # a restatement: changed labels, recomputed outcomes (UPDATEs of ml_outcomes)
    with db.begin() as conn:
        conn.execute(text("UPDATE vfr_ml.labels SET forward_return = -forward_return WHERE symbol IN ('S1', 'S2')"))
        fill_outcomes(conn, today=days[-1] + timedelta(days=40), full_recompute=True)
        changed = conn.execute(text("SELECT count(*) FROM ml_outcomes WHERE ticker IN ('S1', 'S2') AND actual_return < 0")).scalar_one()
    assert changed > 0
    _assert_views_match_the_definitions(db)

    # VFR's own tracker, outcomes without market return, of a ticker of its own
    with db.begin() as conn:
        write_predictions(conn, "1w", days[0], [("VFRX", 50.0, 0.01, 0.5)])
        write_predictions(conn, "1d", days[1], [("VFRX", 51.0, 0.01, 0.9)])
        write_predictions(conn, "1m", days[2], [("VFRX", 52.0, -0.01, 0.3)])
        conn.execute(text(TRACKER_INSERT), {"ticker": "VFRX"})
    n_daily, n_stock = _assert_views_match_the_definitions(db)
    assert n_stock == len(SYMBOLS) + 1

    # outliers flagged, then the latest outcome of a ticker and most of another's deleted
    # (through the cascade from ml_predictions)
    with db.begin() as conn:
        conn.execute(text("UPDATE ml_outcomes SET outlier_flag = true WHERE ticker = 'S3' AND days_elapsed = 1"))
        latest = conn.execute(text("SELECT prediction_id FROM ml_outcomes WHERE ticker = 'S4' ORDER BY outcome_timestamp DESC LIMIT 1")).scalar_one()
        conn.execute(text("DELETE FROM ml_predictions WHERE prediction_id = :id"), {"id": latest})
        conn.execute(text("DELETE FROM ml_predictions WHERE ticker = 'S5' AND prediction_id NOT IN "
                          "(SELECT prediction_id FROM ml_outcomes WHERE ticker = 'S5' ORDER BY outcome_timestamp LIMIT 2)"))
    _, n_stock = _assert_views_match_the_definitions(db)
    assert n_stock == len(SYMBOLS), "S5 has 2 outcomes left: below the view's 3"

    with db.begin() as conn:
        conn.execute(text("TRUNCATE ml_outcomes"))
    assert _assert_views_match_the_definitions(db) == (0, 0)
    with db.begin() as conn:
        fill_outcomes(conn, today=days[-1] + timedelta(days=40), full_recompute=True)
    assert _assert_views_match_the_definitions(db)[1] == len(SYMBOLS) - 1


def test_a_refresh_reads_the_summaries_not_the_outcomes(db):
    """What keeps the refresh from growing with history: the views read one row per day and
    per ticker."""
    with db.connect() as conn:
        for view in ("ml_daily_performance", "ml_stock_performance"):
            definition = conn.execute(text("SELECT pg_get_viewdef(CAST(:v AS regclass))"), {"v": view}).scalar_one()
            assert "ml_outcomes" not in definition and "vfr_ml." in definition


def test_outcomes_written_before_the_migration_are_in_the_views(make_database, tmp_path):
    """A warehouse whose views were 012's: 016 carries its outcomes into the summaries, and
    later writes keep them current."""
    earlier = tmp_path / "sql"
    earlier.mkdir()
    for path in settings.sql_dir().glob("*.sql"):
        if int(path.name[:3]) < 16:
            shutil.copy(path, earlier / path.name)
    engine = create_warehouse_engine(make_database("vfr-perf-migration"))
    try:
        apply_migrations(engine, earlier)
        rng = np.random.default_rng(6)
        days = [FIRST + timedelta(days=i) for i in range(0, 8, 2)]
        with engine.begin() as conn:
            _sessions(conn, rng, days[:3])
            fill_outcomes(conn, today=days[2] + timedelta(days=8))
        assert apply_migrations(engine, settings.sql_dir()) == ["016_performance_summaries.sql"]
        assert _assert_views_match_the_definitions(engine)[1] == len(SYMBOLS)
        with engine.begin() as conn:
            _sessions(conn, rng, days[3:])
            fill_outcomes(conn, today=days[-1] + timedelta(days=40))
        _assert_views_match_the_definitions(engine)
    finally:
        engine.dispose()
