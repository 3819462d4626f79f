from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from vfr_ml_pipelines.lib.market_data.adjust import adjust_prices


def test_split_and_dividend_adjustment_by_hand():
    frame = pd.DataFrame(
        {
            "symbol": ["A"] * 4,
            "trade_date": [date(2024, 1, d) for d in (2, 3, 4, 5)],
            "close": [100.0, 102.0, 51.0, 50.0],  # 2-for-1 split goes ex on Jan 4
            "split_ratio": [1.0, 1.0, 2.0, 1.0],
            "dividend": [0.0, 0.0, 0.0, 0.5],  # 0.50 cash dividend ex on Jan 5
        }
    )
    adj = adjust_prices(frame)["adj_close"].tolist()
    assert adj[-1] == pytest.approx(50.0)
    # total returns: +2 %, (51*2)/102 - 1 = 0 %, (50 + 0.5)/51 - 1
    assert adj[2] == pytest.approx(50.0 / ((50.0 + 0.5) / 51.0))
    assert adj[1] == pytest.approx(adj[2])
    assert adj[0] == pytest.approx(adj[1] / 1.02)


def test_each_symbol_is_anchored_on_its_own_last_day_and_order_does_not_matter():
    frame = pd.DataFrame(
        {
            "symbol": ["B", "A", "B", "A"],
            "trade_date": [date(2024, 1, 3), date(2024, 1, 3), date(2024, 1, 2), date(2024, 1, 2)],
            "close": [20.0, 11.0, 10.0, 10.0],
            "split_ratio": [1.0, 1.0, 1.0, 1.0],
            "dividend": [0.0, 0.0, 0.0, 0.0],
        }
    )
    out = adjust_prices(frame)
    assert out["symbol"].tolist() == ["A", "A", "B", "B"]
    assert out["adj_close"].tolist() == pytest.approx([10.0, 11.0, 10.0, 20.0])


def test_without_events_adjusted_equals_raw():
    frame = pd.DataFrame({"symbol": ["A", "A"], "trade_date": [date(2024, 1, 2), date(2024, 1, 3)], "close": [1.0, 2.0]})
    assert adjust_prices(frame)["adj_close"].tolist() == [1.0, 2.0]
