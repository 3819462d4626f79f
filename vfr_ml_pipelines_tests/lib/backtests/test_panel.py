"""The panel: adjusted returns across a split, ADV and volatility from past sessions only, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.backtests.panel import build_panel, out_of_sample_scores, score_matrix

DAYS = pd.bdate_range("2024-03-04", periods=4)


def _prices() -> pd.DataFrame:
    # a 2-for-1 split before day 2: raw prices halve, the adjusted series does not
    raw = [(100, 100), (101, 102), (51.5, 52), (52, 53)]
    factor = [0.5, 0.5, 1.0, 1.0]
    volume = [1_000, 2_000, 6_000, 8_000]
    return pd.DataFrame(
        [
            {"trade_date": day, "symbol": "X", "open": o, "close": c, "adj_close": c * f, "volume": v}
            for day, (o, c), f, v in zip(DAYS, raw, factor, volume, strict=True)
        ]
    )


def test_returns_are_on_the_adjusted_series_across_a_split():
    panel = build_panel(_prices())
    # adjusted closes 50, 51, 52, 53; adjusted open of day 2 = 51.5 (already post-split)
    np.testing.assert_allclose(panel.close_return[1:, 0], [51 / 50 - 1, 52 / 51 - 1, 53 / 52 - 1])
    assert panel.gap_return[2, 0] == pytest.approx(51.5 / 51 - 1)
    assert panel.intraday_return[2, 0] == pytest.approx(52 / 51.5 - 1)


def test_adv_and_volatility_use_past_sessions_only():
    panel = build_panel(_prices(), window=2)
    # ADV of day t: mean of volume x close over the 2 sessions before t
    assert np.isnan(panel.adv[0, 0])
    assert panel.adv[1, 0] == pytest.approx(1_000 * 100)
    assert panel.adv[3, 0] == pytest.approx((2_000 * 102 + 6_000 * 52) / 2)
    assert np.isnan(panel.daily_vol[2, 0])  # one past return only
    assert panel.daily_vol[3, 0] == pytest.approx(np.std([51 / 50 - 1, 52 / 51 - 1], ddof=1))


def test_duplicates_and_missing_columns_are_named():
    prices = _prices()
    with pytest.raises(ValueError, match="duplicated bar.*X on 2024-03-04"):
        build_panel(pd.concat([prices, prices.iloc[:1]]))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['volume'\]"):
        build_panel(prices.drop(columns="volume"))
    panel = build_panel(prices)
    scores = pd.DataFrame({"trade_date": [DAYS[0], DAYS[0]], "symbol": ["X", "X"], "score": [1.0, 2.0]})
    with pytest.raises(ValueError, match="duplicated score"):
        score_matrix(panel, scores)


def test_out_of_sample_scores_keep_test_rows_and_the_latest_fold():
    predictions = pd.DataFrame(
        {
            "fold": [0, 0, 1, 1],
            "segment": ["val", "test", "val", "test"],
            "trade_date": [DAYS[0], DAYS[1], DAYS[1], DAYS[1]],
            "symbol": ["X"] * 4,
            "score": [1.0, 2.0, 3.0, 4.0],
        }
    )
    scores = out_of_sample_scores(predictions)
    assert scores.to_dict("records") == [{"trade_date": DAYS[1], "symbol": "X", "score": 4.0}]
