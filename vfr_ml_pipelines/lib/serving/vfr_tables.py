"""Rows for VFR's ML tables, checked against their CHECK constraints and decimal
precisions before they are written (an overflow is an error, never a rounding). The
statements that write them are in `vfr_store/predictions.py` and `vfr_store/models.py`."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal

import pandas as pd
from sqlalchemy import Connection

from vfr_ml_pipelines.lib.serving.ttl import MARKET_TZ
from vfr_ml_pipelines.lib.serving.vfr_store import models as models_store
from vfr_ml_pipelines.lib.serving.vfr_store import predictions as predictions_store

ENHANCEMENT_NAME = "vfr_ml_pipelines_{horizon}"
# ml_enhancement_definitions.prediction_horizon CHECK list (sql/001_vfr_ml_tables.sql)
ENHANCEMENT_HORIZONS = ("1h", "4h", "1d", "1w", "1m", "3m")
# The ml_predictions.prediction_type of this project's rows, with VFR's own meaning
# (PredictionLogger.ts): predicted_value = +P(up) for a BUY (UP), -P(down) = -(1 - P(up))
# for a SELL (DOWN), 0 for a HOLD (NEUTRAL), and prediction_timestamp = when the prediction
# was made. VFR's outcome tracker (scripts/ml/track-outcomes.ts) reads every row of the
# table whatever its type as that signed direction (> 0.001 UP, < -0.001 DOWN) and
# /api/ml/metrics counts rows by prediction_timestamp, so a price_target row would be read
# as a strong UP: this project writes none. The session a row is for and its expected
# return are kept in vfr_ml.ml_prediction_sessions (VFR does not read it).
PREDICTION_TYPE = "direction"
# Set when a definition is created; operators may tune it in VFR afterwards and re-runs
# leave it alone. confidence = |2p - 1|, so 0.10 is p = 0.55 / 0.45: the default BUY / SELL
# thresholds (payloads.DirectionThresholds). VFR's column default (0.50, p = 0.75) would
# hide nearly every forecast of a model whose edge is a few points of probability.
MIN_CONFIDENCE_THRESHOLD = Decimal("0.1000")
TICKER_MAX_LENGTH = 20  # ml_predictions.ticker varchar(20)
# deterministic ids make re-runs of the same day upsert the same rows
_ROW_NAMESPACE = uuid.UUID("6f1f2b8e-6b8a-4c55-9a4e-3c7f0d2a9b10")
MARKET_CLOSE = time(16, 0)


def exact_decimal(value: float | int | Decimal, what: str) -> Decimal:
    """`value` as a finite Decimal, or a ValueError naming `what`. A float is read through
    its shortest repr (0.1 is 0.1, not 0.1000000000000000055...), the digits PostgreSQL
    also prints for a double precision; a Decimal is used as it is."""
    if isinstance(value, Decimal):
        number = value
    else:
        try:
            number = Decimal(repr(float(value)))
        except (TypeError, ValueError):
            raise ValueError(f"{what}: {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{what}: {value!r} is not a finite number")
    return number


def fit_decimal(value: float | int | Decimal, precision: int, scale: int, what: str) -> Decimal:
    """`value` as a decimal(precision, scale), rounded half to even at `scale`, or a
    ValueError naming `what` when it is not a finite number or does not fit (an overflow
    is an error, never a rounding)."""
    number = exact_decimal(value, what).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN)
    if abs(number) >= Decimal(10) ** (precision - scale):
        raise ValueError(f"{what}: {value} does not fit decimal({precision},{scale})")
    return number


def prediction_timestamp(as_of: date) -> datetime:
    """Predictions are made from the close of the as-of trading day (16:00 New York; an
    early-close session keeps the same stamp, so one day has one stamp)."""
    return datetime.combine(as_of, MARKET_CLOSE, tzinfo=MARKET_TZ)


def project_enhancement_names() -> list[str]:
    """The names of this project's enhancement definitions, one per horizon: what
    outcomes and the performance roll-up filter on (VFR's own rows stay untouched)."""
    return [ENHANCEMENT_NAME.format(horizon=h) for h in ENHANCEMENT_HORIZONS]


def _check_horizon(horizon: str) -> None:
    if horizon not in ENHANCEMENT_HORIZONS:
        raise ValueError(f"horizon {horizon!r} is not one of ml_enhancement_definitions' {', '.join(ENHANCEMENT_HORIZONS)}")


def ensure_enhancement_definition(conn: Connection, horizon: str) -> uuid.UUID:
    """The id of this project's definition for `horizon` (`vfr_ml_pipelines_{horizon}`),
    created when missing: one definition per horizon, `direction_classification` of a `composite`
    factor (the models read technical, fundamental and sentiment features), premium tier,
    min_confidence_threshold MIN_CONFIDENCE_THRESHOLD, VFR's default weight.

    On an existing row the identity (type, factor, horizon) is restored and the row is
    marked active (publishing predictions for a horizon is what makes it active); the
    tunables (weight, threshold, tier) are left as an operator may have set them."""
    _check_horizon(horizon)
    return predictions_store.upsert_enhancement_definition(
        conn, ENHANCEMENT_NAME.format(horizon=horizon), horizon, MIN_CONFIDENCE_THRESHOLD
    )


@dataclass(frozen=True)
class MlPredictionValues:
    """The VFR-bound values of one `ml_predictions` row, fitted to their columns."""

    ticker: str
    predicted_value: Decimal  # decimal(15,8): the signed direction probability
    confidence_score: Decimal  # decimal(5,4), 0..1
    current_price: Decimal  # decimal(12,4), > 0


def signed_direction(direction: object, probability: object) -> float:
    """VFR's predicted_value of a direction row: +P(up) for BUY, -(1 - P(up)) for SELL, 0
    for HOLD (PredictionLogger.ts)."""
    if direction == "BUY":
        return float(probability)  # type: ignore[arg-type]
    if direction == "SELL":
        return -(1.0 - float(probability))  # type: ignore[arg-type]
    if direction == "HOLD":
        return 0.0
    raise ValueError(f"direction {direction!r} is not BUY, SELL or HOLD")


def ml_prediction_problems(
    symbol: object, direction: object, probability: object, confidence: object, current_price: object, *, where: str = ""
) -> tuple[MlPredictionValues | None, list[str]]:
    """The fitted values of one row, or None and every reason why they do not fit
    `ml_predictions` (each naming the symbol and the column). `write_ml_predictions`
    writes exactly these values; the prediction gate (prediction_checks.py) reports the
    problems before anything is published."""
    label = f"{symbol}{where}"
    problems: list[str] = []
    ticker = symbol.upper() if isinstance(symbol, str) else ""
    if not ticker or ticker != ticker.strip() or len(ticker) > TICKER_MAX_LENGTH:
        problems.append(f"{label}: ml_predictions.ticker {symbol!r} is not a symbol of 1..{TICKER_MAX_LENGTH} characters")

    def fit(value: object, precision: int, scale: int, column: str) -> Decimal | None:
        try:
            return fit_decimal(value, precision, scale, f"{label}: ml_predictions.{column}")  # type: ignore[arg-type]
        except ValueError as exc:
            problems.append(str(exc))
            return None

    price = fit(current_price, 12, 4, "current_price")
    if price is not None and price <= 0:
        problems.append(f"{label}: ml_predictions.current_price {current_price} is not above 0 at 4 decimals")
        price = None
    value = None
    try:
        value = fit(signed_direction(direction, probability), 15, 8, "predicted_value")
    except (TypeError, ValueError) as exc:
        problems.append(f"{label}: ml_predictions.predicted_value: {exc}")
    if value is not None and not Decimal(-1) <= value <= Decimal(1):
        problems.append(f"{label}: ml_predictions.predicted_value {value} (a signed probability) outside -1..1")
    score = fit(confidence, 5, 4, "confidence_score")
    if score is not None and not Decimal(0) <= score <= Decimal(1):
        problems.append(f"{label}: ml_predictions.confidence_score {confidence} outside 0..1")
    if problems or value is None or score is None or price is None:
        return None, problems
    return MlPredictionValues(ticker, value, score, price), []


def ml_prediction_values(
    symbol: object, direction: object, probability: object, confidence: object, current_price: object, *, where: str = ""
) -> MlPredictionValues:
    """`ml_prediction_problems` that raises one ValueError listing the problems."""
    values, problems = ml_prediction_problems(symbol, direction, probability, confidence, current_price, where=where)
    if values is None:
        raise ValueError("; ".join(problems))
    return values


def write_ml_predictions(conn: Connection, predictions: pd.DataFrame, horizon: str, as_of: date) -> int:
    """One `ml_predictions` row per symbol for the serving model of `horizon` for the
    session `as_of`, under this project's definition of that horizon (any of
    ENHANCEMENT_HORIZONS), in VFR's PredictionLogger meaning (PREDICTION_TYPE):
    predicted_value = `signed_direction`, confidence_score = confidence, current_price,
    prediction_timestamp = the row's `predicted_at` (when the prediction was made). The
    session, the model and the expected return go to `vfr_ml.ml_prediction_sessions`.

    `predictions` needs symbol, direction, probability, confidence, current_price,
    expected_return, predicted_at, model_name, model_version (as `predict.prediction_rows`
    makes them). Every row is fitted before anything is written; a value that does not fit
    is a ValueError naming the symbol and column. Re-runs for the same session update the
    same rows (deterministic ids); when a re-run changes the call or the price, the row's
    outcome (in ml_predictions and ml_outcomes) is cleared so `outcomes.fill_outcomes`
    recomputes it instead of leaving a stale one."""
    _check_horizon(horizon)
    enhancement_id = ensure_enhancement_definition(conn, horizon)
    rows = ml_prediction_records(predictions, horizon, as_of, enhancement_id)
    if not rows:
        return 0
    predictions_store.upsert_prediction_rows(conn, rows)
    predictions_store.upsert_prediction_sessions(conn, rows)
    predictions_store.drop_stale_outcomes(conn, [r["id"] for r in rows])
    return len(rows)


def ml_prediction_records(predictions: pd.DataFrame, horizon: str, as_of: date, enhancement_id: uuid.UUID) -> list[dict]:
    """The fitted parameters of `write_ml_predictions`' statements, one dict per symbol."""
    dupes = sorted(set(predictions["symbol"][predictions["symbol"].duplicated()]))
    if dupes:
        raise ValueError(f"ml_predictions for {horizon} on {as_of}: symbols appear more than once: {dupes[:10]}")
    rows = []
    for rec in predictions.itertuples(index=False):
        values = ml_prediction_values(
            rec.symbol, rec.direction, rec.probability, rec.confidence, rec.current_price, where=f" on {as_of} ({horizon})"
        )
        expected = exact_decimal(rec.expected_return, f"{rec.symbol} on {as_of} ({horizon}): expected_return")
        made_at = pd.Timestamp(rec.predicted_at)
        if made_at.tzinfo is None:
            raise ValueError(f"{rec.symbol} on {as_of} ({horizon}): predicted_at {rec.predicted_at} has no time zone")
        rows.append(
            {
                "id": uuid.uuid5(_ROW_NAMESPACE, f"{values.ticker}|{horizon}|{enhancement_id}|session {as_of.isoformat()}"),
                "ticker": values.ticker,
                "ts": made_at.to_pydatetime(),
                "enhancement_id": enhancement_id,
                "horizon": horizon,
                "type": PREDICTION_TYPE,
                "value": values.predicted_value,
                "confidence": values.confidence_score,
                "price": values.current_price,
                "tier": "premium",
                "as_of": as_of,
                "model_name": str(rec.model_name),
                "model_version": str(rec.model_version),
                "expected_return": float(expected),
            }
        )
    return rows


def upsert_ml_model(
    conn: Connection,
    *,
    name: str,
    version: str,
    model_type: str,
    horizon: str,
    target: str,
    validation_score: float | None,
    test_score: float | None,
    status: str,
) -> None:
    """Mirror one registry version into `ml_models`; other `deployed` versions of the same
    registered model become `deprecated` when this one is deployed."""
    scores = {
        name_: (None if v is None or not math.isfinite(v) else fit_decimal(v, 10, 6, f"ml_models {name} v{version}: {name_}"))
        for name_, v in (("validation_score", validation_score), ("test_score", test_score))
    }
    models_store.upsert_model_row(
        conn, name=name, version=version, model_type=model_type, horizon=horizon, target=target,
        validation_score=scores["validation_score"], test_score=scores["test_score"], status=status,
    )
    if status == "deployed":
        models_store.deprecate_other_deployed(conn, name, version)
