"""The SQL of VFR's `ml_performance_metrics` (one row per metric_date): the day's aggregates
of this project's `ml_predictions` rows and the upsert of the row. What each column means is
in `lib/serving/performance.py`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, text

_AGGREGATES = """
WITH ours AS (
    SELECT enhancement_id FROM ml_enhancement_definitions WHERE enhancement_name = ANY(:names)
),
predicted AS (
    SELECT count(*) AS total, avg(confidence_score) AS avg_confidence
    FROM ml_predictions
    WHERE enhancement_id IN (SELECT enhancement_id FROM ours)
      AND prediction_timestamp >= :day_start AND prediction_timestamp < :day_end
),
known AS (
    SELECT count(*) AS outcomes,
           count(direction_correct) AS scored,
           count(*) FILTER (WHERE direction_correct) AS successful,
           avg(abs(prediction_error)) AS mae
    FROM ml_predictions
    WHERE enhancement_id IN (SELECT enhancement_id FROM ours)
      AND actual_value IS NOT NULL
      AND actual_timestamp >= :day_start AND actual_timestamp < :day_end
)
SELECT * FROM predicted CROSS JOIN known
"""

# every column but the key, in the table's order; the upsert overwrites them all
METRIC_COLUMNS = (
    "total_predictions", "successful_predictions", "fallback_predictions", "avg_latency_ms", "p95_latency_ms",
    "avg_confidence_score", "cache_hit_ratio", "direction_accuracy", "mean_absolute_error",
    "free_tier_predictions", "premium_tier_predictions", "enterprise_tier_predictions",
)
_UPSERT = (
    f"INSERT INTO ml_performance_metrics (metric_date, {', '.join(METRIC_COLUMNS)}) "
    f"VALUES (:metric_date, {', '.join(':' + c for c in METRIC_COLUMNS)}) "
    f"ON CONFLICT (metric_date) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in METRIC_COLUMNS)}"
)


def day_aggregates(conn: Connection, enhancement_names: Sequence[str], day_start: datetime, day_end: datetime) -> Row:
    """Of the rows of these definitions: predicted in [day_start, day_end) (total,
    avg_confidence) and whose outcome became known then (outcomes, scored, successful, mae)."""
    return conn.execute(
        text(_AGGREGATES), {"names": list(enhancement_names), "day_start": day_start, "day_end": day_end}
    ).one()


def upsert_metrics(conn: Connection, values: Mapping[str, Any]) -> None:
    """The row of values["metric_date"], every METRIC_COLUMNS value given (None for NULL)."""
    missing = [c for c in ("metric_date", *METRIC_COLUMNS) if c not in values]
    if missing:
        raise ValueError(f"ml_performance_metrics row: missing columns {missing}")
    conn.execute(text(_UPSERT), dict(values))
