"""vfr_store/performance.py on a migrated PostgreSQL database of this module's own: the day's
aggregates of our rows only, and the ml_performance_metrics upsert, read back."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from vfr_ml_pipelines.lib.serving.ttl import MARKET_TZ
from vfr_ml_pipelines.lib.serving.vfr_store import performance as store
from vfr_ml_pipelines.lib.serving.vfr_tables import project_enhancement_names
from vfr_ml_pipelines_tests.lib.serving.outcome_rows import write_predictions

AS_OF = date(2031, 3, 3)


TABLES = "ml_predictions, vfr_ml.ml_prediction_sessions, ml_performance_metrics"  # emptied before each test (conftest.py)


def _day(d: date) -> tuple[datetime, datetime]:
    return datetime.combine(d, time(0), tzinfo=MARKET_TZ), datetime.combine(d + timedelta(days=1), time(0), tzinfo=MARKET_TZ)


def test_aggregates_count_the_day_predicted_and_the_day_known(db):
    with db.begin() as conn:
        write_predictions(conn, "1w", AS_OF, [("AAA", 10.0, 0.01, 0.2), ("BBB", 10.0, -0.01, 0.4), ("CCC", 10.0, 0.01, 0.3)])
        known_at = datetime.combine(AS_OF + timedelta(days=7), time(16), tzinfo=MARKET_TZ)
        conn.execute(text("UPDATE ml_predictions SET actual_value = 0.02, actual_timestamp = :t, prediction_error = -0.03, "
                          "direction_correct = (ticker = 'AAA') WHERE ticker IN ('AAA', 'BBB')"), {"t": known_at})
        made = store.day_aggregates(conn, project_enhancement_names(), *_day(AS_OF))
        known = store.day_aggregates(conn, project_enhancement_names(), *_day(AS_OF + timedelta(days=7)))
        other = store.day_aggregates(conn, ["someone_elses_definition"], *_day(AS_OF))
    assert (made.total, made.avg_confidence, made.outcomes) == (3, Decimal("0.3"), 0)
    assert (known.total, known.outcomes, known.scored, known.successful, known.mae) == (0, 2, 2, 1, Decimal("0.03"))
    assert other.total == 0


def test_upsert_overwrites_every_column_and_names_missing_ones(db):
    values = {"metric_date": AS_OF, **{c: 0 for c in store.METRIC_COLUMNS}, "direction_accuracy": Decimal("0.5000")}
    with db.begin() as conn:
        store.upsert_metrics(conn, values)
        store.upsert_metrics(conn, {**values, "total_predictions": 7, "direction_accuracy": None})
        row = conn.execute(text("SELECT total_predictions, direction_accuracy FROM ml_performance_metrics")).all()
        with pytest.raises(ValueError, match="cache_hit_ratio"):
            store.upsert_metrics(conn, {k: v for k, v in values.items() if k != "cache_hit_ratio"})
    assert [tuple(r) for r in row] == [(7, None)]
