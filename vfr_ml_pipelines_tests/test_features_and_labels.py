"""Technical features equal TA-Lib's output per symbol; labels are hand-checkable."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.features.labels import compute_labels
from vfr_ml_pipelines.lib.features.technical import FEATURE_NAMES, compute_technical_features, to_long, to_wide
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig, generate_prices


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return generate_prices(SyntheticMarketConfig(as_of=date(2024, 6, 28), start=date(2023, 6, 1), n_symbols=6))


def test_no_look_ahead_changing_the_future_leaves_the_past_unchanged(prices):
    cutoff = sorted(prices["trade_date"].unique())[200]
    shocked = prices.copy()
    future = shocked["trade_date"] > cutoff
    for col in ("open", "high", "low", "close", "adj_close"):
        shocked.loc[future, col] *= 1.5
    shocked.loc[future, "volume"] *= 3
    a = compute_technical_features(prices)
    b = compute_technical_features(shocked)
    past = a["trade_date"] <= cutoff
    pd.testing.assert_frame_equal(a[past].reset_index(drop=True), b[past].reset_index(drop=True))


def test_long_and_wide_round_trip(prices):
    wide = compute_technical_features(prices)
    back = to_wide(to_long(wide)).sort_values(["symbol", "trade_date"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back[["symbol", "trade_date", *FEATURE_NAMES]], wide.reset_index(drop=True), check_dtype=False)


def test_labels_forward_return_and_known_date():
    frame = pd.DataFrame(
        {"symbol": ["A"] * 7 + ["B"] * 7,
         "trade_date": list(pd.bdate_range("2024-01-01", periods=7).date) * 2,
         "adj_close": [10, 11, 12, 13, 14, 15, 16, 20, 20, 20, 20, 20, 22, 20]}
    )
    labels = compute_labels(frame, "1w")
    a = labels[labels["symbol"] == "A"].reset_index(drop=True)
    assert len(a) == 2  # 7 days, horizon 5: two labelled days
    assert a.loc[0, "forward_return"] == pytest.approx(15 / 10 - 1)
    assert a.loc[0, "known_date"] == date(2024, 1, 8)
    b0 = labels[(labels["symbol"] == "B")].iloc[0]
    assert b0["forward_return"] == pytest.approx(0.1)
    assert b0["excess_return"] == pytest.approx(0.1 - (0.5 + 0.1) / 2)
    assert (labels["known_date"] > labels["trade_date"]).all()
    with pytest.raises(ValueError, match="unknown horizon"):
        compute_labels(frame, "2w")


def test_synthetic_history_is_stable_when_the_market_moves_on():
    short = generate_prices(SyntheticMarketConfig(as_of=date(2024, 3, 29), start=date(2023, 6, 1), n_symbols=4, recent_listings=0))
    long = generate_prices(SyntheticMarketConfig(as_of=date(2024, 6, 28), start=date(2023, 6, 1), n_symbols=4, recent_listings=0))
    merged = short.merge(long, on=["symbol", "trade_date"], suffixes=("_s", "_l"))
    assert len(merged) == len(short)
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(merged[f"{col}_s"], merged[f"{col}_l"])
    assert (long["low"] <= long[["open", "close"]].min(axis=1)).all()
    assert (long["high"] >= long[["open", "close"]].max(axis=1)).all()
