"""LightGBM regression of the forward return (first version: one date split)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.models.dataset import DateSplit, date_split
from vfr_ml_pipelines.lib.models.metrics import summarize

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "verbosity": -1,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
}
# Daily returns have fat tails; clipping the target keeps a few extreme weeks from
# dominating the squared loss.
TARGET_CLIP = 0.25


@dataclass
class TrainedModel:
    booster: lgb.Booster
    feature_names: list[str]
    params: dict[str, Any]
    num_boost_round: int
    split: DateSplit
    test_metrics: dict[str, float]
    train_metrics: dict[str, float]
    residual_std: float
    test_predictions: pd.DataFrame = field(repr=False)


def training_fingerprint(dataset: pd.DataFrame, feature_names: list[str], settings: dict[str, Any]) -> str:
    """A hash of everything that determines the trained model: the rows, the features and
    the training settings (LightGBM is run deterministically, so equal inputs give an equal
    model)."""
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(dataset[["symbol", "trade_date", *feature_names, "forward_return"]], index=False).to_numpy().tobytes())
    digest.update(json.dumps({"features": feature_names, **DEFAULT_PARAMS, **settings}, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def train_lightgbm(
    dataset: pd.DataFrame,
    feature_names: list[str],
    *,
    label: str = "forward_return",
    test_fraction: float = 0.2,
    num_boost_round: int = 200,
    seed: int = 7,
    params: dict[str, Any] | None = None,
) -> TrainedModel:
    train, test, split = date_split(dataset, test_fraction)
    merged = {**DEFAULT_PARAMS, **(params or {}), "seed": seed}
    train_set = lgb.Dataset(
        train[feature_names].to_numpy(dtype="float64"),
        label=train[label].clip(-TARGET_CLIP, TARGET_CLIP).to_numpy(),
        feature_name=list(feature_names),
        free_raw_data=True,
    )
    booster = lgb.train(merged, train_set, num_boost_round=num_boost_round)

    test = test.copy()
    test["prediction"] = booster.predict(test[feature_names].to_numpy(dtype="float64"))
    train_eval = train.copy()
    train_eval["prediction"] = booster.predict(train[feature_names].to_numpy(dtype="float64"))
    residual_std = float(np.std(test[label] - test["prediction"], ddof=1))
    return TrainedModel(
        booster=booster,
        feature_names=list(feature_names),
        params=merged,
        num_boost_round=num_boost_round,
        split=split,
        test_metrics=summarize(test, "prediction", label),
        train_metrics=summarize(train_eval, "prediction", label),
        residual_std=residual_std,
        test_predictions=test[["trade_date", "symbol", "prediction", label]],
    )
