"""Rows for VFR's ML tables, checked against their CHECK constraints and decimal
precisions before they are written (an overflow is an error, never a rounding)."""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal

import pandas as pd
from sqlalchemy import Connection, text

from vfr_ml_pipelines.lib.serving.ttl import MARKET_TZ

ENHANCEMENT_NAME = "vfr_ml_pipelines_{horizon}"
# deterministic ids make re-runs of the same day upsert the same rows
_ROW_NAMESPACE = uuid.UUID("6f1f2b8e-6b8a-4c55-9a4e-3c7f0d2a9b10")
MARKET_CLOSE = time(16, 0)


def fit_decimal(value: float, precision: int, scale: int, what: str) -> Decimal:
    """`value` as a decimal(precision, scale), or a ValueError naming `what`."""
    if value is None or not math.isfinite(float(value)):
        raise ValueError(f"{what}: {value!r} is not a finite number")
    quantum = Decimal(1).scaleb(-scale)
    number = Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_EVEN)
    if abs(number) >= Decimal(10) ** (precision - scale):
        raise ValueError(f"{what}: {value} does not fit decimal({precision},{scale})")
    return number


def prediction_timestamp(as_of: date) -> datetime:
    """Predictions are made from the close of the as-of trading day."""
    return datetime.combine(as_of, MARKET_CLOSE, tzinfo=MARKET_TZ)


def ensure_enhancement_definition(conn: Connection, horizon: str) -> uuid.UUID:
    row = conn.execute(
        text(
            """
            INSERT INTO ml_enhancement_definitions
                (enhancement_name, enhancement_type, target_factor, prediction_horizon, tier_requirement)
            VALUES (:name, 'price_prediction', 'composite', :horizon, 'premium')
            ON CONFLICT (enhancement_name) DO UPDATE SET is_active = true
            RETURNING enhancement_id
            """
        ),
        {"name": ENHANCEMENT_NAME.format(horizon=horizon), "horizon": horizon},
    ).one()
    return row.enhancement_id


def write_ml_predictions(conn: Connection, predictions: pd.DataFrame, horizon: str, as_of: date) -> int:
    """One `ml_predictions` row per symbol for the serving model of `horizon` on `as_of`.

    prediction_type is `price_target`: predicted_value = current_price * (1 + expected return),
    the price the model expects at the horizon."""
    enhancement_id = ensure_enhancement_definition(conn, horizon)
    stamp = prediction_timestamp(as_of)
    rows = []
    for rec in predictions.itertuples(index=False):
        where = f"ml_predictions row for {rec.symbol} on {as_of}"
        price = fit_decimal(rec.current_price, 12, 4, f"{where}: current_price")
        target = fit_decimal(rec.current_price * (1.0 + rec.expected_return), 15, 8, f"{where}: predicted_value")
        confidence = fit_decimal(rec.confidence, 5, 4, f"{where}: confidence_score")
        if not Decimal(0) <= confidence <= Decimal(1):
            raise ValueError(f"{where}: confidence_score {rec.confidence} outside 0..1")
        rows.append(
            {
                "id": uuid.uuid5(_ROW_NAMESPACE, f"{rec.symbol}|{horizon}|{enhancement_id}|{stamp.isoformat()}"),
                "ticker": rec.symbol.upper(),
                "ts": stamp,
                "enhancement_id": enhancement_id,
                "horizon": horizon,
                "value": target,
                "confidence": confidence,
                "price": price,
                "tier": "premium",
            }
        )
    if not rows:
        return 0
    conn.execute(
        text(
            """
            INSERT INTO ml_predictions
                (prediction_id, ticker, prediction_timestamp, enhancement_id, prediction_horizon,
                 prediction_type, predicted_value, confidence_score, current_price, cache_hit, tier_used)
            VALUES (:id, :ticker, :ts, :enhancement_id, :horizon, 'price_target', :value, :confidence,
                    :price, false, :tier)
            ON CONFLICT (prediction_id) DO UPDATE SET
                predicted_value = EXCLUDED.predicted_value,
                confidence_score = EXCLUDED.confidence_score,
                current_price = EXCLUDED.current_price
            """
        ),
        rows,
    )
    return len(rows)


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
    conn.execute(
        text(
            """
            INSERT INTO ml_models (model_name, model_version, model_type, objective, target_variable,
                                   prediction_horizon, validation_score, test_score, status)
            VALUES (:name, :version, :type, 'price_prediction', :target, :horizon, :vs, :ts, :status)
            ON CONFLICT (model_name, model_version) DO UPDATE SET
                status = EXCLUDED.status, validation_score = EXCLUDED.validation_score,
                test_score = EXCLUDED.test_score
            """
        ),
        {
            "name": name, "version": version, "type": model_type, "target": target, "horizon": horizon,
            "vs": scores["validation_score"], "ts": scores["test_score"], "status": status,
        },
    )
    if status == "deployed":
        conn.execute(
            text(
                "UPDATE ml_models SET status = 'deprecated' "
                "WHERE model_name = :name AND model_version <> :version AND status = 'deployed'"
            ),
            {"name": name, "version": version},
        )
