"""The daily roll-up of this project's predictions into VFR's `ml_performance_metrics`.

One row per metric_date (the table's UNIQUE key; re-runs overwrite it with the same values).
What each column holds, for the rows of this project's enhancement definitions only:

- total_predictions: rows predicted that day (prediction_timestamp on metric_date, New York);
- avg_confidence_score: their mean confidence_score;
- successful_predictions, direction_accuracy, mean_absolute_error: over the outcomes that
  became KNOWN that day (actual_timestamp on metric_date, filled by `outcomes.fill_outcomes`),
  whatever day they were predicted. Realized performance reported on the day it is known is
  what an operator monitors: a 1m forecast cannot be scored on the day it is made, and a
  day's row never changes later when older horizons mature. successful_predictions counts
  direction_correct outcomes; direction_accuracy = successful / outcomes with a direction
  call (direction_correct not NULL), NULL when there are none;
- mean_absolute_error: the mean |realized return - expected return| = |prediction_error|
  (`outcomes.fill_outcomes`), a fraction like VFR's expectedReturn; NULL when no outcome
  became known that day;
- avg_latency_ms, p95_latency_ms, cache_hit_ratio: NULL. Latency and cache hits happen
  inside VFR when it serves a request; this project precomputes predictions and cannot
  measure either (the same reason `payloads.enhancement_status` claims no latency);
- fallback_predictions and the per-tier counts: 0. They count VFR's requests (served by its
  fallback path, by subscriber tier), which this project does not see.

Every decimal is fitted with `vfr_tables.fit_decimal` (decimal(5,4) ratios, decimal(15,8)
error): an overflow is an error, never a rounding.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Connection

from vfr_ml_pipelines.lib.serving.ttl import MARKET_TZ
from vfr_ml_pipelines.lib.serving.vfr_store import performance as performance_store
from vfr_ml_pipelines.lib.serving.vfr_tables import fit_decimal, project_enhancement_names


def _fitted(value: Decimal | None, precision: int, scale: int, what: str) -> Decimal | None:
    return None if value is None else fit_decimal(value, precision, scale, what)


def _as_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def roll_up_performance(conn: Connection, *, metric_date: date) -> dict[str, float | int | None]:
    """Compute and upsert the `ml_performance_metrics` row of `metric_date` (see the module
    docstring for what each column means); returns the values written, plus `outcomes_known`
    (outcomes that became known that day) and `outcomes_scored` (of them, those with a
    direction call) for the caller's metadata. Runs inside the caller's transaction."""
    if not isinstance(metric_date, date) or isinstance(metric_date, datetime):
        raise ValueError(f"metric_date must be a date, got {metric_date!r}")
    day_start = datetime.combine(metric_date, time(0), tzinfo=MARKET_TZ)
    day_end = datetime.combine(metric_date + timedelta(days=1), time(0), tzinfo=MARKET_TZ)
    agg = performance_store.day_aggregates(conn, project_enhancement_names(), day_start, day_end)
    where = f"ml_performance_metrics {metric_date}"
    accuracy = Decimal(agg.successful) / Decimal(agg.scored) if agg.scored else None
    values = {
        "metric_date": metric_date,
        "total_predictions": int(agg.total),
        "successful_predictions": int(agg.successful),
        "fallback_predictions": 0,
        "avg_latency_ms": None,
        "p95_latency_ms": None,
        "avg_confidence_score": _fitted(agg.avg_confidence, 5, 4, f"{where}: avg_confidence_score"),
        "cache_hit_ratio": None,
        "direction_accuracy": _fitted(accuracy, 5, 4, f"{where}: direction_accuracy"),
        "mean_absolute_error": _fitted(agg.mae, 15, 8, f"{where}: mean_absolute_error"),
        "free_tier_predictions": 0,
        "premium_tier_predictions": 0,
        "enterprise_tier_predictions": 0,
    }
    performance_store.upsert_metrics(conn, values)
    written: dict[str, float | int | None] = {
        k: (_as_float(v) if isinstance(v, Decimal) else v) for k, v in values.items() if k != "metric_date"
    }
    written["outcomes_known"] = int(agg.outcomes)
    written["outcomes_scored"] = int(agg.scored)
    return written
