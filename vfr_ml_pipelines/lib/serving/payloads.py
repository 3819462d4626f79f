"""VFR's payload shapes (`MLPrediction`, `MLFeatureVector`, `MLModelConfig`,
`MLEnhancementStatus`) built from plain values, with no NaN or Infinity anywhere.

Mapping from a model's output to VFR's fields (documented in the README, "Models"):
- expectedReturn and probability: one calibrated model of the absolute forward return
  (`models.calibration.ReturnCalibration`): expectedReturn = intercept + slope x score
  (skill-sized spread, the market's drift as level), probability = P(return > 0) =
  sigmoid(1.702 x expectedReturn / residual std) (the logistic form of Phi), so probability
  > 0.5 exactly when expectedReturn > 0;
- direction: BUY when probability >= buy_threshold, SELL when <= sell_threshold, else HOLD
  (so BUY only with a positive and SELL only with a negative expectedReturn);
- confidence: |2 * probability - 1|, 0 for a coin flip and 1 for certainty.

Feature-row quality (`row_quality`) has one definition for every place VFR reads it (the
prediction payload's `features`, the Redis feature vector, `ml_feature_store`):
completeness = share of the published features (catalog.RAW_NAMES) that are finite;
qualityScore = the feature matrix's `quality_score` of the row (lib/features/matrix.py:
completeness of its source features, discounted for winsorized inputs and thin days); both
clamped to 0..1 and rounded to 4 decimals, the precision of ml_feature_store's decimal(5,4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vfr_ml_pipelines.lib.horizons import VFR_CACHE_HORIZONS


VFR_HORIZONS = VFR_CACHE_HORIZONS
DEFAULT_MODEL_ID = "default"


@dataclass(frozen=True)
class DirectionThresholds:
    buy: float = 0.55
    sell: float = 0.45

    def __post_init__(self) -> None:
        if not 0.0 <= self.sell < 0.5 < self.buy <= 1.0:
            raise ValueError(f"thresholds need 0 <= sell < 0.5 < buy <= 1, got sell={self.sell} buy={self.buy}")


def _finite(value: Any, what: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} is not a finite number: {value!r}")
    return number


def direction_for(probability: float, thresholds: DirectionThresholds) -> str:
    if probability >= thresholds.buy:
        return "BUY"
    if probability <= thresholds.sell:
        return "SELL"
    return "HOLD"


def confidence_for(probability: float) -> float:
    return min(1.0, abs(2.0 * probability - 1.0))


# quality figures are published at the precision of ml_feature_store's decimal(5,4)
QUALITY_DECIMALS = 4


@dataclass(frozen=True)
class RowQuality:
    completeness: float  # share of the published features that are finite
    quality_score: float  # the feature matrix row's quality_score


def present_features(values: Mapping[str, Any], expected_features: Sequence[str]) -> dict[str, float]:
    """The finite values of `expected_features` (missing, None, NaN, +-Infinity left out)."""
    present: dict[str, float] = {}
    for name in expected_features:
        value = values.get(name)
        if value is None or isinstance(value, bool):
            continue
        number = float(value)
        if math.isfinite(number):
            present[name] = number
    return present


def row_quality(symbol: str, values: Mapping[str, Any], expected_features: Sequence[str], quality_score: Any) -> RowQuality:
    """The one definition of a feature row's completeness and qualityScore (module
    docstring). A quality_score that is not a finite number is an error naming the symbol."""
    try:
        quality = float(quality_score)
    except (TypeError, ValueError):
        quality = math.nan
    if not math.isfinite(quality):
        raise ValueError(f"{symbol}: feature row quality_score {quality_score!r} is not a finite number")
    present = present_features(values, expected_features)
    completeness = len(present) / len(expected_features) if expected_features else 0.0
    return RowQuality(
        completeness=round(min(1.0, max(0.0, completeness)), QUALITY_DECIMALS),
        quality_score=round(min(1.0, max(0.0, quality)), QUALITY_DECIMALS),
    )


def feature_vector(
    symbol: str,
    values: Mapping[str, Any],
    expected_features: Sequence[str],
    as_of_ms: int,
    quality_score: float = 1.0,
) -> dict[str, Any]:
    """`MLFeatureVector`. A feature that is missing or not finite is left out (VFR reads
    `features` as numbers only) and lowers `completeness`; completeness and qualityScore
    are `row_quality`'s."""
    present = present_features(values, expected_features)
    quality = row_quality(symbol, values, expected_features, quality_score)
    return {
        "symbol": symbol.upper(),
        "features": present,
        "featureNames": list(present),
        "timestamp": int(as_of_ms),
        "completeness": quality.completeness,
        "qualityScore": quality.quality_score,
    }


def ml_prediction(
    *,
    symbol: str,
    model_id: str,
    model_version: str,
    horizon: str,
    expected_return: float,
    probability: float,
    direction: str,
    confidence: float,
    features: dict[str, Any],
    made_at_ms: int,
    ttl_seconds: int,
) -> dict[str, Any]:
    if horizon not in VFR_HORIZONS:
        raise ValueError(f"horizon {horizon!r} is not one VFR reads ({', '.join(VFR_HORIZONS)})")
    if direction not in ("BUY", "SELL", "HOLD"):
        raise ValueError(f"{symbol}: direction must be BUY, SELL or HOLD, got {direction!r}")
    for what, value in (("probability", probability), ("confidence", confidence)):
        if not 0.0 <= _finite(value, f"{symbol} {what}") <= 1.0:
            raise ValueError(f"{symbol}: {what} {value} is outside 0..1")
    return {
        "symbol": symbol.upper(),
        "modelId": model_id,
        "modelVersion": str(model_version),
        "horizon": horizon,
        "prediction": {
            "direction": direction,
            "confidence": float(confidence),
            "expectedReturn": _finite(expected_return, f"{symbol} expectedReturn"),
            "probability": float(probability),
        },
        "features": features,
        "timestamp": int(made_at_ms),
        "expiresAt": int(made_at_ms) + int(ttl_seconds) * 1000,
    }


def model_config(
    *,
    model_id: str,
    model_type: str,
    version: str,
    status: str,
    horizon: str,
    features: Sequence[str],
    hyperparameters: Mapping[str, Any],
    metrics: Mapping[str, float],
    created_at_ms: int,
    updated_at_ms: int,
    deployed_at_ms: int | None,
) -> dict[str, Any]:
    """`MLModelConfig`. VFR's performance fields are classification-style; the regression
    maps onto them as: accuracy / validationAccuracy = test direction accuracy,
    validationLoss = test RMSE, trainingLoss = train RMSE."""

    def metric(name: str) -> float:
        value = metrics.get(name)
        return float(value) if value is not None and math.isfinite(float(value)) else 0.0

    config: dict[str, Any] = {
        "modelId": model_id,
        "modelType": model_type,
        "version": str(version),
        "status": status,
        "horizon": horizon,
        "features": list(features),
        "hyperparameters": {k: v for k, v in hyperparameters.items() if not isinstance(v, float) or math.isfinite(v)},
        "performanceMetrics": {
            "accuracy": metric("test_direction_accuracy"),
            "precision": metric("test_precision"),
            "recall": metric("test_recall"),
            "f1Score": metric("test_f1"),
            "sharpeRatio": metric("test_sharpe"),
            "validationAccuracy": metric("test_direction_accuracy"),
            "trainingLoss": metric("train_rmse"),
            "validationLoss": metric("test_rmse"),
            "lastUpdated": int(updated_at_ms),
        },
        "createdAt": int(created_at_ms),
        "updatedAt": int(updated_at_ms),
    }
    if deployed_at_ms is not None:
        config["deployedAt"] = int(deployed_at_ms)
    return config


def enhancement_status(*, available: bool, models_loaded: int, features_ready: bool, now_ms: int) -> dict[str, Any]:
    """`MLEnhancementStatus`. Latency and hit rate are measured by VFR itself; this project
    precomputes everything, so it reports zero latency and no hit-rate claim."""
    return {
        "available": bool(available),
        "modelsLoaded": int(models_loaded),
        "featuresReady": bool(features_ready),
        "lastUpdate": int(now_ms),
        "performance": {"averageLatency": 0, "cacheHitRate": 0, "activeModels": int(models_loaded)},
    }
