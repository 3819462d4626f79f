"""Splits, metrics and training on their own (no Dagster)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.features.labels import compute_labels
from vfr_ml_pipelines.lib.features.technical import FEATURE_NAMES, compute_technical_features
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig, generate_prices
from vfr_ml_pipelines.lib.models.dataset import date_split, join_features_labels
from vfr_ml_pipelines.lib.models.metrics import daily_ic, summarize


@pytest.fixture(scope="module")
def dataset() -> pd.DataFrame:
    prices = generate_prices(SyntheticMarketConfig(as_of=date(2025, 6, 27), start=date(2023, 1, 2), n_symbols=40))
    features = compute_technical_features(prices)
    return join_features_labels(features, compute_labels(prices, "1w"), list(FEATURE_NAMES))


def test_split_purges_training_labels_that_reach_into_the_test_period(dataset):
    train, test, split = date_split(dataset, 0.2)
    assert train["known_date"].max() < split.test_start
    assert train["trade_date"].max() < test["trade_date"].min()
    assert split.purged_rows == len(dataset[(dataset["trade_date"] < split.test_start) & (dataset["known_date"] >= split.test_start)])
    assert split.purged_rows > 0


def test_ic_against_hand_computed_values():
    frame = pd.DataFrame(
        {"trade_date": [1] * 4 + [2] * 4, "p": [1, 2, 3, 4, 1, 2, 3, 4], "y": [1, 2, 3, 5, 4, 3, 2, 1]}
    )
    per_day = daily_ic(frame, "p", "y")
    assert per_day["rank_ic"].tolist() == pytest.approx([1.0, -1.0])
    assert per_day["ic"].iloc[0] == pytest.approx(np.corrcoef([1, 2, 3, 4], [1, 2, 3, 5])[0, 1])
    summary = summarize(frame, "p", "y")
    assert summary["rank_ic"] == pytest.approx(0.0)
    assert summary["rank_icir"] == pytest.approx(0.0)
