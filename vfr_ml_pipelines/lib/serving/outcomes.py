"""Realized outcomes of published predictions, filled into VFR's `ml_predictions`.

A prediction of `horizon` made from the close of day t is scored by the label of
(symbol, t, horizon) in `vfr_ml.labels` once that label is known (known_date <= today):

- actual_value = current_price * (1 + forward_return): the price the symbol reached at the
  horizon on the label's total-return basis (forward_return uses adjusted closes), in the
  unit of predicted_value = current_price * (1 + expected return) (vfr_tables.PREDICTION_TYPE);
- actual_timestamp = the close of known_date (16:00 New York, as `prediction_timestamp`);
- prediction_error = actual_value - predicted_value (price units; divided by current_price
  it is the return error realized - expected);
- direction_correct = did the price move the way the forecast said: sign(predicted_value -
  current_price) = sign(forward_return). This is the model's own direction accuracy
  (`metrics.summarize`, reported as `accuracy` in VFR's model metadata), so live and test
  accuracy compare directly. BUY / SELL / HOLD are not stored in `ml_predictions` (and
  their thresholds are configuration), so a HOLD is scored by the sign of its forecast
  like any other row; a forecast of exactly no move (predicted_value = current_price) makes
  no directional call and gets NULL (the column is nullable); a realized return of exactly
  0 is a miss for a forecast that called a move.

Idempotence: the UPDATE writes a row only when the computed outcome differs from the stored
one (IS DISTINCT FROM), so a re-run changes nothing and reports 0 rows, while a corrected
label (prices re-loaded) or a re-written prediction (whose outcome `write_ml_predictions`
cleared) is picked up by the next run. Values are computed in exact numeric arithmetic from
the label's shortest float digits and rounded half to even to the column's scale (the rule of
`vfr_tables.fit_decimal`, in SQL `vfr_ml.round_half_even` of sql/007_serving.sql); a value
that would overflow its column is a ValueError naming the rows, never a rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Connection, text

from vfr_ml_pipelines.lib.serving.ttl import MARKET_TZ
from vfr_ml_pipelines.lib.serving.vfr_tables import MARKET_CLOSE, project_enhancement_names

# ml_predictions.actual_value and prediction_error are decimal(15,8): |value| < 10^7
_DECIMAL_15_8_LIMIT = 10**7


@dataclass(frozen=True)
class OutcomeReport:
    rows_updated: int  # rows whose outcome was filled or corrected by this run
    horizons: dict[str, int] = field(default_factory=dict)  # rows updated per horizon
    pending: int = 0  # this project's rows still without an outcome after the run
    oldest_pending: date | None = None  # the as-of day of the oldest of them


# The outcome of every one of this project's rows whose label is known by :today.
# The as-of day of a row is the New York date of its prediction_timestamp (the close).
_OUTCOMES = """
WITH ours AS (
    SELECT enhancement_id FROM ml_enhancement_definitions WHERE enhancement_name = ANY(:names)
),
realized AS (
    SELECT p.prediction_id, p.ticker, p.prediction_horizon, l.trade_date, l.known_date, l.forward_return,
           p.predicted_value, p.current_price,
           vfr_ml.round_half_even(p.current_price * (1 + l.forward_return::text::numeric), 8) AS actual_value,
           (l.known_date + CAST(:close AS time)) AT TIME ZONE :tz AS actual_timestamp
    FROM ml_predictions p
    JOIN vfr_ml.labels l
      ON l.horizon = p.prediction_horizon
     AND l.symbol = p.ticker
     AND l.trade_date = (p.prediction_timestamp AT TIME ZONE :tz)::date
    WHERE p.enhancement_id IN (SELECT enhancement_id FROM ours)
      AND l.known_date <= :today
      AND l.forward_return NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)
),
outcome AS (
    SELECT r.*,
           r.actual_value - r.predicted_value AS prediction_error,
           CASE WHEN r.predicted_value = r.current_price THEN NULL
                ELSE sign(r.predicted_value - r.current_price) = sign(r.forward_return::numeric) END AS direction_correct
    FROM realized r
)
"""

_OVERFLOWS = (
    _OUTCOMES
    + """
SELECT ticker, prediction_horizon, trade_date, actual_value, prediction_error FROM outcome
WHERE abs(actual_value) >= :limit OR abs(prediction_error) >= :limit
ORDER BY trade_date, ticker LIMIT 10
"""
)

_NOT_FINITE = """
SELECT l.symbol, l.horizon, l.trade_date, l.forward_return
FROM ml_predictions p
JOIN vfr_ml.labels l
  ON l.horizon = p.prediction_horizon AND l.symbol = p.ticker
 AND l.trade_date = (p.prediction_timestamp AT TIME ZONE :tz)::date
WHERE p.enhancement_id IN (SELECT enhancement_id FROM ml_enhancement_definitions WHERE enhancement_name = ANY(:names))
  AND l.known_date <= :today
  AND l.forward_return IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)
ORDER BY l.trade_date, l.symbol LIMIT 10
"""

_UPDATE = (
    _OUTCOMES
    + """,
updated AS (
    UPDATE ml_predictions p SET
        actual_value = o.actual_value,
        actual_timestamp = o.actual_timestamp,
        prediction_error = o.prediction_error,
        direction_correct = o.direction_correct
    FROM outcome o
    WHERE p.prediction_id = o.prediction_id
      AND (p.actual_value, p.actual_timestamp, p.prediction_error, p.direction_correct)
          IS DISTINCT FROM (o.actual_value, o.actual_timestamp, o.prediction_error, o.direction_correct)
    RETURNING p.prediction_horizon
)
SELECT prediction_horizon AS horizon, count(*) AS n FROM updated GROUP BY prediction_horizon ORDER BY 1
"""
)

_PENDING = """
SELECT count(*) AS pending, min((prediction_timestamp AT TIME ZONE :tz)::date) AS oldest
FROM ml_predictions
WHERE enhancement_id IN (SELECT enhancement_id FROM ml_enhancement_definitions WHERE enhancement_name = ANY(:names))
  AND actual_value IS NULL
"""


def fill_outcomes(conn: Connection, *, today: date) -> OutcomeReport:
    """Fill (or correct) the realized outcome of every one of this project's
    `ml_predictions` rows whose label is known by `today`, in one set-based UPDATE; rows
    whose horizon has not passed stay NULL. Runs inside the caller's transaction.

    Raises ValueError, before writing anything, when a known label is NaN / Infinity or an
    outcome would not fit its decimal(15,8) column, naming the symbols and days."""
    if not isinstance(today, date):
        raise ValueError(f"today must be a date, got {today!r}")
    params = {
        "names": project_enhancement_names(),
        "today": today,
        "tz": MARKET_TZ.key,
        "close": MARKET_CLOSE,
        "limit": _DECIMAL_15_8_LIMIT,
    }
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
        shown = ", ".join(
            f"{r.ticker} {r.prediction_horizon} {r.trade_date}: actual_value {r.actual_value}, prediction_error {r.prediction_error}"
            for r in overflows
        )
        raise ValueError(f"outcomes do not fit ml_predictions' decimal(15,8) ({shown})")
    per_horizon = {r.horizon: int(r.n) for r in conn.execute(text(_UPDATE), params)}
    pending = conn.execute(text(_PENDING), params).one()
    return OutcomeReport(
        rows_updated=sum(per_horizon.values()),
        horizons=per_horizon,
        pending=int(pending.pending),
        oldest_pending=pending.oldest,
    )
