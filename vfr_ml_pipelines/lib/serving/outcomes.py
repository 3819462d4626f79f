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

from sqlalchemy import Connection

from vfr_ml_pipelines.lib.serving.ttl import MARKET_TZ
from vfr_ml_pipelines.lib.serving.vfr_store import outcomes as outcome_store
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
    # what the fill computed (not compared: diagnostics): the known outcomes it recomputed,
    # "full" or "incremental", and the first price day loaded since the last fill
    considered: int = field(default=0, compare=False)
    mode: str = field(default="full", compare=False)
    restated_from: date | None = field(default=None, compare=False)


def outcome_parameters(today: date, *, full: bool = True, restated_from: date | None = None) -> dict:
    """The bind parameters of the outcome statements for `today`: every known outcome with
    `full`, else the pending ones and those whose label window reaches `restated_from`."""
    if not isinstance(today, date):
        raise ValueError(f"today must be a date, got {today!r}")
    return {
        "names": project_enhancement_names(),
        "today": today,
        "tz": MARKET_TZ.key,
        "close": MARKET_CLOSE,
        "limit": _DECIMAL_12_4_LIMIT,
        "full": bool(full),
        "restated_from": restated_from,
    }


def fill_outcomes(conn: Connection, *, today: date, full_recompute: bool = False) -> OutcomeReport:
    """Fill (or correct) the realized outcome of this project's `ml_predictions` rows whose
    label is known by `today`, in `ml_predictions` and `ml_outcomes` (one set-based
    statement), then refresh VFR's performance views when an outcome changed; rows whose
    horizon has not passed stay NULL. Runs inside the caller's transaction.

    Which rows are computed: with `full_recompute` (backfills, a label definition changed)
    or on the first fill, every known one; else only those still pending and those whose
    label window reaches a price loaded since the last fill (`vfr_ml.outcome_fills` records
    the newest `raw_prices.loaded_at` each fill saw). Labels are the prices' forward returns,
    rebuilt before this asset in every job, so a label changes only with a re-loaded price;
    a label changed any other way needs `full_recompute`.

    Raises ValueError, before writing anything, when a known label is NaN / Infinity or an
    outcome would not fit its decimal column, naming the symbols and days."""
    seen = outcome_store.prices_seen(conn)
    last = outcome_store.last_fill(conn)
    full = full_recompute or last is None
    restated = None if full else outcome_store.restated_from(conn, last.prices_seen_until)
    params = outcome_parameters(today, full=full, restated_from=restated)
    outcome_store.keep_shortest_float_digits(conn)
    not_finite = outcome_store.not_finite_labels(conn, params)
    if not_finite:
        shown = ", ".join(f"{r.symbol} {r.horizon} {r.trade_date}: {r.forward_return}" for r in not_finite)
        raise ValueError(f"vfr_ml.labels forward_return not finite for predicted rows ({shown}); fix the labels first")
    overflows = outcome_store.final_price_overflows(conn, params)
    if overflows:
        shown = ", ".join(f"{r.ticker} {r.prediction_horizon} {r.as_of_date}: final_price {r.final_price}" for r in overflows)
        raise ValueError(f"outcomes do not fit ml_outcomes' decimal(12,4) ({shown})")
    per_horizon, counts = outcome_store.write_outcomes(conn, params)
    if counts["written"]:
        outcome_store.refresh_performance_views(conn)
    mode = "full" if full else "incremental"
    outcome_store.record_fill(conn, mode=mode, seen=seen, restated=restated, considered=counts["considered"],
                              updated=sum(per_horizon.values()), written=counts["written"])
    pending = outcome_store.pending_outcomes(conn, params)
    return OutcomeReport(
        rows_updated=sum(per_horizon.values()),
        horizons=per_horizon,
        pending=int(pending.pending),
        oldest_pending=pending.oldest,
        outcomes_written=counts["written"],
        outcomes_skipped=counts["skipped"],
        considered=counts["considered"],
        mode=mode,
        restated_from=restated,
    )
