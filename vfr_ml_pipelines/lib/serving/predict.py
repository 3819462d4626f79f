"""Turning a model's forecasts on the latest day into VFR-ready prediction rows."""

from __future__ import annotations

import json
import math
from datetime import date, datetime

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.serving.payloads import DirectionThresholds, confidence_for, direction_for, row_quality


def _is_finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def symbol_fields(features: pd.DataFrame, prices: pd.DataFrame, *, feature_names: list[str], as_of: date) -> pd.DataFrame:
    """The part of a session's prediction rows that does not depend on the model, one row per
    symbol of `features`, in order: symbol, current_price, features (the finite values of
    `feature_names` as JSON), feature_completeness, feature_quality_score
    (`payloads.row_quality`). Built once per session and shared by every served version: per
    symbol and version it cost more than scoring the model."""
    if "quality_score" not in features.columns:
        raise ValueError("prediction_rows: the feature rows have no quality_score column (the feature matrix's)")
    close = prices.set_index("symbol")["close"]
    missing = sorted(set(features["symbol"]) - set(close.index))
    if missing:
        raise ValueError(f"no close price on {as_of} for symbols {missing[:10]}")
    rows = []
    for _, feat in features.iterrows():
        # NaN and +-Infinity (PostgreSQL stores both in double precision) count as missing
        values = {n: (float(feat[n]) if _is_finite(feat.get(n)) else None) for n in feature_names}
        quality = row_quality(feat["symbol"], values, feature_names, feat["quality_score"])
        rows.append({
            "symbol": feat["symbol"],
            "current_price": float(close[feat["symbol"]]),
            "features": json.dumps({k: v for k, v in values.items() if v is not None}, allow_nan=False),
            "feature_completeness": quality.completeness,
            "feature_quality_score": quality.quality_score,
        })
    return pd.DataFrame(rows, columns=["symbol", "current_price", "features", "feature_completeness", "feature_quality_score"])


def prediction_rows(
    features: pd.DataFrame,
    prices: pd.DataFrame,
    forecasts: np.ndarray,
    *,
    probabilities: np.ndarray,
    feature_names: list[str],
    thresholds: DirectionThresholds,
    as_of: date,
    horizon: str,
    model_name: str,
    model_version: str,
    predicted_at: datetime,
    fields: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per symbol. `forecasts` are expected returns (fractions) and `probabilities`
    the calibrated P(return > 0) (`lib/models/serving_model.py`). `feature_names` are the
    features shown to VFR with each prediction (the raw, interpretable ones); `features`
    carries each row's `quality_score` (the feature matrix's), and feature_completeness /
    feature_quality_score are `payloads.row_quality`'s, the numbers the Redis vector and
    ml_feature_store get too. `fields`: `symbol_fields` of the same `features` (computed here
    when not given). A non-finite forecast or a probability outside 0..1 is an error naming
    the symbol, never a silently published NaN."""
    if len(forecasts) != len(features) or len(probabilities) != len(features):
        raise ValueError(f"{len(forecasts)} forecasts and {len(probabilities)} probabilities for {len(features)} symbols")
    bad = [sym for sym, f in zip(features["symbol"], forecasts) if not np.isfinite(f)]
    if bad:
        raise ValueError(f"non-finite forecast on {as_of} for symbols {bad[:10]}")
    bad = [sym for sym, p in zip(features["symbol"], probabilities) if not (np.isfinite(p) and 0.0 <= p <= 1.0)]
    if bad:
        raise ValueError(f"probability outside 0..1 on {as_of} for symbols {bad[:10]}")
    if fields is None:
        fields = symbol_fields(features, prices, feature_names=feature_names, as_of=as_of)
    elif list(fields["symbol"]) != list(features["symbol"]):
        raise ValueError("prediction_rows: `fields` are not those of these feature rows")
    probabilities = [float(p) for p in probabilities]
    return pd.DataFrame({
        "as_of_date": as_of,
        "horizon": horizon,
        "model_name": model_name,
        "model_version": model_version,
        "symbol": fields["symbol"].to_numpy(),
        "expected_return": np.asarray(forecasts, dtype=np.float64),
        "probability": probabilities,
        "direction": [direction_for(p, thresholds) for p in probabilities],
        "confidence": [confidence_for(p) for p in probabilities],
        "current_price": fields["current_price"].to_numpy(),
        "features": fields["features"].to_numpy(),
        "feature_completeness": fields["feature_completeness"].to_numpy(),
        "feature_quality_score": fields["feature_quality_score"].to_numpy(),
        "predicted_at": predicted_at,
    })
