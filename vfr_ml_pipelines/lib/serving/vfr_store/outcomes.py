"""The SQL of the realized outcomes (`lib/serving/outcomes.py` says what each value means):
the outcome columns of this project's `ml_predictions` rows, VFR's `ml_outcomes`, and the
refresh of VFR's performance views, and the fills' record (`vfr_ml.outcome_fills`). Every
outcome statement takes the bind parameters of `outcomes.outcome_parameters` (names, today,
tz, close, limit, full, restated_from)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, text

_FINITE = "NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)"

# The rows a fill computes (p: the ml_predictions row, l: its label): all of them with :full
# (backfills), else those still without an outcome and those whose label window reaches a
# price loaded since the last fill (its known_date is on or after the first such day: a
# restated price changes the labels and the session's market return around it). Without it
# every publish recomputed every outcome ever known (growing by a session a day).
_IN_SCOPE = "(:full OR p.actual_value IS NULL OR l.known_date >= CAST(:restated_from AS date))"

# The outcome of every one of this project's rows whose label is known by :today.
_OUTCOMES = f"""
WITH ours AS (
    SELECT enhancement_id FROM ml_enhancement_definitions WHERE enhancement_name = ANY(:names)
),
base AS (
    SELECT p.prediction_id, p.ticker, p.prediction_horizon, p.prediction_timestamp, p.predicted_value,
           p.confidence_score, p.current_price, s.as_of_date, s.expected_return, l.known_date,
           l.forward_return::text::numeric AS r,
           (l.known_date + CAST(:close AS time)) AT TIME ZONE :tz AS outcome_timestamp
    FROM ml_predictions p
    JOIN vfr_ml.ml_prediction_sessions s ON s.prediction_id = p.prediction_id
    JOIN vfr_ml.labels l ON l.horizon = s.horizon AND l.symbol = s.symbol AND l.trade_date = s.as_of_date
    WHERE p.enhancement_id IN (SELECT enhancement_id FROM ours)
      AND l.known_date <= :today
      AND l.forward_return {_FINITE}
      AND {_IN_SCOPE}
),
-- one row per (horizon, session), computed once: inlined, the planner (which cannot
-- estimate `base`) re-ran it for every predicted row (70 s at 5,000 symbols)
market AS MATERIALIZED (
    SELECT l.horizon, l.trade_date, avg(l.forward_return::text::numeric) AS m
    FROM vfr_ml.labels l
    WHERE (l.horizon, l.trade_date) IN (SELECT DISTINCT prediction_horizon, as_of_date FROM base)
      AND l.forward_return {_FINITE}
    GROUP BY l.horizon, l.trade_date
),
outcome AS (
    SELECT b.*, mk.m,
           CASE WHEN b.predicted_value > 0.001 THEN 'UP' WHEN b.predicted_value < -0.001 THEN 'DOWN'
                ELSE 'NEUTRAL' END AS predicted_direction,
           CASE WHEN b.r > 0.001 THEN 'UP' WHEN b.r < -0.001 THEN 'DOWN' ELSE 'NEUTRAL' END AS actual_direction
    FROM base b JOIN market mk ON mk.horizon = b.prediction_horizon AND mk.trade_date = b.as_of_date
)
"""

_OVERFLOWS = (
    _OUTCOMES
    + """
SELECT ticker, prediction_horizon, as_of_date, current_price * (1 + r) AS final_price FROM outcome
WHERE abs(current_price * (1 + r)) >= :limit
ORDER BY as_of_date, ticker LIMIT 10
"""
)

_NOT_FINITE = f"""
SELECT l.symbol, l.horizon, l.trade_date, l.forward_return
FROM ml_predictions p
JOIN vfr_ml.ml_prediction_sessions s ON s.prediction_id = p.prediction_id
JOIN vfr_ml.labels l ON l.horizon = s.horizon AND l.symbol = s.symbol AND l.trade_date = s.as_of_date
WHERE p.enhancement_id IN (SELECT enhancement_id FROM ml_enhancement_definitions WHERE enhancement_name = ANY(:names))
  AND l.known_date <= :today
  AND {_IN_SCOPE}
  AND NOT (l.forward_return {_FINITE})
ORDER BY l.trade_date, l.symbol LIMIT 10
"""

# ml_predictions' outcome columns (a CTE appended to _OUTCOMES)
_PREDICTION_UPDATE_CTE = """,
computed AS (
    SELECT prediction_id, prediction_horizon,
           vfr_ml.round_half_even(r, 8) AS actual_value,
           outcome_timestamp AS actual_timestamp,
           vfr_ml.round_half_even(r - expected_return::text::numeric, 8) AS prediction_error,
           CASE WHEN predicted_direction = 'NEUTRAL' THEN NULL ELSE predicted_direction = actual_direction END
               AS direction_correct
    FROM outcome
),
updated AS (
    UPDATE ml_predictions p SET
        actual_value = c.actual_value,
        actual_timestamp = c.actual_timestamp,
        prediction_error = c.prediction_error,
        direction_correct = c.direction_correct
    FROM computed c
    WHERE p.prediction_id = c.prediction_id
      AND (p.actual_value, p.actual_timestamp, p.prediction_error, p.direction_correct)
          IS DISTINCT FROM (c.actual_value, c.actual_timestamp, c.prediction_error, c.direction_correct)
    RETURNING p.prediction_horizon
)"""

_OUTCOME_COLUMNS = (
    "ticker, prediction_timestamp, outcome_timestamp, days_elapsed, predicted_direction, predicted_value, "
    "predicted_confidence, initial_price, final_price, actual_return, actual_direction, direction_correct, "
    "return_error, market_return, sector_return, relative_performance, data_complete, outlier_flag"
)
_COLUMNS = [c.strip() for c in _OUTCOME_COLUMNS.split(",")]

# VFR's ml_outcomes rows (a CTE appended after _PREDICTION_UPDATE_CTE)
_OUTCOME_UPSERT_CTE = f""",
storable AS (
    SELECT * FROM outcome WHERE r BETWEEN -1 AND 10 AND m BETWEEN -1 AND 10
),
written AS (
    INSERT INTO ml_outcomes AS o (prediction_id, {_OUTCOME_COLUMNS})
    SELECT prediction_id, ticker, prediction_timestamp, outcome_timestamp, known_date - as_of_date,
           predicted_direction, predicted_value, confidence_score, current_price,
           vfr_ml.round_half_even(current_price * (1 + r), 4), vfr_ml.round_half_even(r, 6), actual_direction,
           predicted_direction = actual_direction, vfr_ml.round_half_even(abs(predicted_value - r), 6),
           vfr_ml.round_half_even(m, 6), NULL, vfr_ml.round_half_even(r - m, 6), true, false
    FROM storable
    ON CONFLICT (prediction_id) DO UPDATE SET ({_OUTCOME_COLUMNS}) = ROW({", ".join(f"EXCLUDED.{c}" for c in _COLUMNS)})
    WHERE ({", ".join(f"o.{c}" for c in _COLUMNS)}) IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in _COLUMNS)})
    RETURNING 1
)"""

# both tables in one statement, sharing the (costly) outcome computation
_FILL = (
    _OUTCOMES
    + _PREDICTION_UPDATE_CTE
    + _OUTCOME_UPSERT_CTE
    + """
SELECT 'updated' AS what, prediction_horizon AS horizon, count(*) AS n FROM updated GROUP BY prediction_horizon
UNION ALL SELECT 'written', NULL, count(*) FROM written
UNION ALL SELECT 'considered', NULL, count(*) FROM outcome
UNION ALL SELECT 'skipped', NULL, (SELECT count(*) FROM outcome) - (SELECT count(*) FROM storable)
"""
)

_PENDING = """
SELECT count(*) AS pending, min(s.as_of_date) AS oldest
FROM ml_predictions p JOIN vfr_ml.ml_prediction_sessions s ON s.prediction_id = p.prediction_id
WHERE p.enhancement_id IN (SELECT enhancement_id FROM ml_enhancement_definitions WHERE enhancement_name = ANY(:names))
  AND p.actual_value IS NULL
"""


def keep_shortest_float_digits(conn: Connection) -> None:
    """The labels' digits are read through their text form, which is the shortest exact one
    only while extra_float_digits > 0 (PostgreSQL's default, 1): a session set lower gets
    the default back for this transaction."""
    if int(conn.execute(text("SELECT current_setting('extra_float_digits')")).scalar_one()) <= 0:
        conn.execute(text("SELECT set_config('extra_float_digits', '1', true)"))


def not_finite_labels(conn: Connection, params: Mapping[str, Any]) -> list[Row]:
    """Up to 10 known labels of predicted rows that are NaN / Infinity (symbol, horizon,
    trade_date, forward_return)."""
    return list(conn.execute(text(_NOT_FINITE), dict(params)).all())


def final_price_overflows(conn: Connection, params: Mapping[str, Any]) -> list[Row]:
    """Up to 10 outcomes whose final price would not fit decimal(12,4) (ticker,
    prediction_horizon, as_of_date, final_price)."""
    return list(conn.execute(text(_OVERFLOWS), dict(params)).all())


def write_outcomes(conn: Connection, params: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    """Fill or correct the outcome columns of `ml_predictions` and the `ml_outcomes` rows in
    one statement; returns (rows updated per horizon, {"written": ml_outcomes rows written,
    "skipped": outcomes outside ml_outcomes' CHECK range, "considered": outcomes computed})."""
    per_horizon: dict[str, int] = {}
    counts = {"written": 0, "skipped": 0, "considered": 0}
    for row in conn.execute(text(_FILL), dict(params)):
        if row.what == "updated":
            per_horizon[row.horizon] = int(row.n)
        else:
            counts[row.what] = int(row.n)
    return per_horizon, counts


def refresh_performance_views(conn: Connection) -> None:
    """VFR's ml_daily_performance / ml_stock_performance, recomputed from ml_outcomes."""
    conn.execute(text("SELECT refresh_ml_performance_views()"))


def pending_outcomes(conn: Connection, params: Mapping[str, Any]) -> Row:
    """(pending, oldest): this project's rows still without an outcome, and the session of the oldest."""
    return conn.execute(text(_PENDING), dict(params)).one()


_LAST_FILL = "SELECT prices_seen_until FROM vfr_ml.outcome_fills ORDER BY id DESC LIMIT 1"
# a load's loaded_at is its transaction's start (DEFAULT now()), and it is seen only once it
# commits: a load still open when the fill reads this may commit later with a loaded_at
# below the newest one seen, so the watermark stays below the start of every transaction
# open on this database (1 us below: loaded_at > watermark then includes it)
_PRICES_SEEN = """
SELECT least(
    (SELECT max(loaded_at) FROM vfr_ml.raw_prices),
    (SELECT min(xact_start) - interval '1 microsecond' FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL))
"""
_RESTATED_FROM = """
SELECT min(trade_date) FROM vfr_ml.raw_prices
WHERE CAST(:since AS timestamptz) IS NULL OR loaded_at > CAST(:since AS timestamptz)
"""
_RECORD_FILL = """
INSERT INTO vfr_ml.outcome_fills (mode, prices_seen_until, restated_from, considered, updated, written)
VALUES (:mode, :seen, :restated_from, :considered, :updated, :written)
"""


def last_fill(conn: Connection) -> Row | None:
    """The latest fill's record (prices_seen_until), None before the first fill."""
    return conn.execute(text(_LAST_FILL)).one_or_none()


def prices_seen(conn: Connection) -> Any:
    """The watermark a fill records, read before it computes: the newest price load (max
    raw_prices.loaded_at; None without prices), or below it the start of the oldest other
    transaction open on the database (a price load that commits after this fill's read, with
    an earlier loaded_at, is still seen by the next fill; a load committed meanwhile is seen
    again). Other roles' transactions count only where pg_stat_activity shows their start
    (the same role, or pg_read_all_stats)."""
    return conn.execute(text(_PRICES_SEEN)).scalar_one()


def restated_from(conn: Connection, since: Any) -> Any:
    """The first trade_date among prices loaded after `since` (every price when None);
    None when nothing was loaded since."""
    return conn.execute(text(_RESTATED_FROM), {"since": since}).scalar_one()


def record_fill(conn: Connection, *, mode: str, seen: Any, restated: Any, considered: int, updated: int, written: int) -> None:
    conn.execute(text(_RECORD_FILL), {"mode": mode, "seen": seen, "restated_from": restated, "considered": considered,
                                      "updated": updated, "written": written})
