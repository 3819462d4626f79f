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
) -> pd.DataFrame:
    """One row per symbol. `forecasts` are expected returns (fractions) and `probabilities`
    the calibrated P(return > 0) (`lib/models/serving_model.py`). `feature_names` are the
    features shown to VFR with each prediction (the raw, interpretable ones); `features`
    carries each row's `quality_score` (the feature matrix's), and feature_completeness /
    feature_quality_score are `payloads.row_quality`'s, the numbers the Redis vector and
    ml_feature_store get too. A non-finite forecast or a probability outside 0..1 is an
    error naming the symbol, never a silently published NaN."""
    if "quality_score" not in features.columns:
        raise ValueError("prediction_rows: the feature rows have no quality_score column (the feature matrix's)")
    if len(forecasts) != len(features) or len(probabilities) != len(features):
        raise ValueError(f"{len(forecasts)} forecasts and {len(probabilities)} probabilities for {len(features)} symbols")
    bad = [sym for sym, f in zip(features["symbol"], forecasts) if not np.isfinite(f)]
    if bad:
        raise ValueError(f"non-finite forecast on {as_of} for symbols {bad[:10]}")
    bad = [sym for sym, p in zip(features["symbol"], probabilities) if not (np.isfinite(p) and 0.0 <= p <= 1.0)]
    if bad:
        raise ValueError(f"probability outside 0..1 on {as_of} for symbols {bad[:10]}")
    close = prices.set_index("symbol")["close"]
    missing = sorted(set(features["symbol"]) - set(close.index))
    if missing:
        raise ValueError(f"no close price on {as_of} for symbols {missing[:10]}")
    rows = []
    for (_, feat), forecast, probability in zip(features.iterrows(), forecasts, probabilities):
        probability = float(probability)
        # NaN and +-Infinity (PostgreSQL stores both in double precision) count as missing
        values = {n: (float(feat[n]) if _is_finite(feat.get(n)) else None) for n in feature_names}
        quality = row_quality(feat["symbol"], values, feature_names, feat["quality_score"])
        rows.append(
            {
                "as_of_date": as_of,
                "horizon": horizon,
                "model_name": model_name,
                "model_version": model_version,
                "symbol": feat["symbol"],
                "expected_return": float(forecast),
                "probability": probability,
                "direction": direction_for(probability, thresholds),
                "confidence": confidence_for(probability),
                "current_price": float(close[feat["symbol"]]),
                "features": json.dumps({k: v for k, v in values.items() if v is not None}, allow_nan=False),
                "feature_completeness": quality.completeness,
                "feature_quality_score": quality.quality_score,
                "predicted_at": predicted_at,
            }
        )
    return pd.DataFrame(rows)
