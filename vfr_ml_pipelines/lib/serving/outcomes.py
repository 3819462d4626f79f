"""Realized outcomes of published predictions, with VFR's own definitions.

A prediction of `horizon` for the session t (vfr_ml.ml_prediction_sessions) is scored by the
label of (symbol, t, horizon) in `vfr_ml.labels` once that label is known (known_date <=
today); r is that forward return (total-return basis: adjusted closes). Directions follow
VFR's outcome tracker (scripts/ml/track-outcomes.ts): a return above +0.001 is UP, below
-0.001 DOWN, else NEUTRAL; the predicted direction is read the same way from the row's
predicted_value (+P(up) / -P(down) / 0, vfr_tables.PREDICTION_TYPE).

`ml_outcomes` (VFR's table, read by GET /api/ml/metrics through the views
ml_daily_performance / ml_stock_performance, refreshed after every change), one row per
prediction: prediction_timestamp (when it was made), outcome_timestamp = the close of
known_date (16:00 New York: when the outcome became known; VFR's tracker stamps the time it
ran), days_elapsed = calendar days from the session to known_date, predicted_direction,
predicted_value, predicted_confidence = confidence_score, initial_price = current_price,
final_price = current_price x (1 + r), actual_return = r, actual_direction,
direction_correct = predicted_direction = actual_direction (a NEUTRAL call is right only
on a NEUTRAL return, as in VFR), return_error = |predicted_value - actual_return| (VFR's
definition, a signed probability minus a return: kept as VFR computes it so its metrics
compare like with like), market_return = the equal-weighted mean forward return of every
labelled symbol of that session and horizon (VFR uses SPY, which a universe need not
hold), relative_performance = r - market_return, sector_return NULL (as VFR leaves it),
data_complete true, outlier_flag false. A return outside VFR's CHECK range (-1..10) is not
written and is counted as skipped.

`ml_predictions` (our rows): actual_value = r, actual_timestamp = the close of known_date,
prediction_error = r - expected return (the return error of the forecast, from
ml_prediction_sessions), direction_correct = VFR's rule for an UP / DOWN call and NULL for
a NEUTRAL one (no directional call: what the ml_performance_metrics roll-up scores).

Idempotence: rows are written only when a computed value differs from the stored one (IS
DISTINCT FROM), so a re-run changes nothing and reports 0, while a corrected label or a
re-written prediction (whose outcome `write_ml_predictions` cleared) is picked up by the
next run. Values are computed in exact numeric arithmetic from the label's shortest float
digits and rounded half to even to the column's scale (`vfr_ml.round_half_even`); a value
that would overflow its column is a ValueError naming the rows, never a rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Connection, text

from vfr_ml_pipelines.lib.serving.ttl import MARKET_TZ
from vfr_ml_pipelines.lib.serving.vfr_tables import MARKET_CLOSE, project_enhancement_names

# ml_outcomes.final_price is decimal(12,4): |value| < 10^8
_DECIMAL_12_4_LIMIT = 10**8


@dataclass(frozen=True)
class OutcomeReport:
    rows_updated: int  # ml_predictions rows whose outcome was filled or corrected by this run
    horizons: dict[str, int] = field(default_factory=dict)  # of them, per horizon
    pending: int = 0  # this project's rows still without an outcome after the run
    oldest_pending: date | None = None  # the session of the oldest of them
    outcomes_written: int = 0  # ml_outcomes rows inserted or corrected
    outcomes_skipped: int = 0  # known outcomes outside ml_outcomes' CHECK range (not written)


_FINITE = "NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)"

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
UNION ALL SELECT 'skipped', NULL, (SELECT count(*) FROM outcome) - (SELECT count(*) FROM storable)
"""
)

_PENDING = """
SELECT count(*) AS pending, min(s.as_of_date) AS oldest
FROM ml_predictions p JOIN vfr_ml.ml_prediction_sessions s ON s.prediction_id = p.prediction_id
WHERE p.enhancement_id IN (SELECT enhancement_id FROM ml_enhancement_definitions WHERE enhancement_name = ANY(:names))
  AND p.actual_value IS NULL
"""


def outcome_parameters(today: date) -> dict:
    """The bind parameters of the outcome statements for `today`."""
    if not isinstance(today, date):
        raise ValueError(f"today must be a date, got {today!r}")
    return {
        "names": project_enhancement_names(),
        "today": today,
        "tz": MARKET_TZ.key,
        "close": MARKET_CLOSE,
        "limit": _DECIMAL_12_4_LIMIT,
    }


def fill_outcomes(conn: Connection, *, today: date) -> OutcomeReport:
    """Fill (or correct) the realized outcome of every one of this project's
    `ml_predictions` rows whose label is known by `today`, in `ml_predictions` and
    `ml_outcomes` (one set-based statement), then refresh VFR's performance views when an
    outcome changed; rows whose horizon has not passed stay NULL. Runs inside the caller's
    transaction.

    Raises ValueError, before writing anything, when a known label is NaN / Infinity or an
    outcome would not fit its decimal column, naming the symbols and days."""
    params = outcome_parameters(today)
    # the labels' digits are read through their text form, which is the shortest exact one
    # only while extra_float_digits > 0 (PostgreSQL's default, 1); a session set lower
    # gets the default back for this transaction
    if int(conn.execute(text("SELECT current_setting('extra_float_digits')")).scalar_one()) <= 0:
        conn.execute(text("SELECT set_config('extra_float_digits', '1', true)"))
    not_finite = conn.execute(text(_NOT_FINITE), params).all()
    if not_finite:
        shown = ", ".join(f"{r.symbol} {r.horizon} {r.trade_date}: {r.forward_return}" for r in not_finite)
        raise ValueError(f"vfr_ml.labels forward_return not finite for predicted rows ({shown}); fix the labels first")
    overflows = conn.execute(text(_OVERFLOWS), params).all()
    if overflows:
        shown = ", ".join(f"{r.ticker} {r.prediction_horizon} {r.as_of_date}: final_price {r.final_price}" for r in overflows)
        raise ValueError(f"outcomes do not fit ml_outcomes' decimal(12,4) ({shown})")
    per_horizon: dict[str, int] = {}
    counts = {"written": 0, "skipped": 0}
    for row in conn.execute(text(_FILL), params):
        if row.what == "updated":
            per_horizon[row.horizon] = int(row.n)
        else:
            counts[row.what] = int(row.n)
    if counts["written"]:
        conn.execute(text("SELECT refresh_ml_performance_views()"))
    pending = conn.execute(text(_PENDING), params).one()
    return OutcomeReport(
        rows_updated=sum(per_horizon.values()),
        horizons=per_horizon,
        pending=int(pending.pending),
        oldest_pending=pending.oldest,
        outcomes_written=counts["written"],
        outcomes_skipped=counts["skipped"],
    )
