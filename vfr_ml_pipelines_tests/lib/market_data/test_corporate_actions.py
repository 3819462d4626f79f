"""Events derived from the vendor's Adj Close, and the screen for unexplained jumps, against
hand-computed cases."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.market_data.adjust import adjust_prices
from vfr_ml_pipelines.lib.market_data.corporate_actions import (
    DOUBT_PREFIX,
    Bar,
    derive_events,
    derive_events_frame,
    judge_jump,
    screen_jumps,
)

# Yahoo-style vendor adjustment, by hand: a 2-for-1 split ex on day 2 and a 0.50 dividend ex
# on day 3. The dividend multiplier applied to every earlier day is 1 - 0.5 / close_before
# = 1 - 0.5/51; the split multiplier is 1/2.
CLOSE = [100.0, 102.0, 51.0, 50.0, 51.0]
M = 1 - 0.5 / 51.0
ADJ = [100.0 * M / 2, 102.0 * M / 2, 51.0 * M, 50.0, 51.0]


def test_split_and_dividend_derived_from_adj_close_by_hand():
    dividend, split = derive_events(np.array(CLOSE), np.array(ADJ))
    assert split.tolist() == [1.0, 1.0, 2.0, 1.0, 1.0]
    # the vendor's total return on the ex-date is 50 / (51 - 0.5); our adjustment counts
    # (50 + D) / 51, so D = 50 * 0.5 / (51 - 0.5)
    assert dividend.tolist() == pytest.approx([0.0, 0.0, 0.0, 50.0 * 0.5 / 50.5, 0.0], abs=1e-12)


def test_derived_events_reproduce_the_vendors_total_returns():
    frame = pd.DataFrame({"symbol": "A", "trade_date": [date(2024, 1, d) for d in range(2, 7)], "close": CLOSE, "adj_close": ADJ})
    adjusted = adjust_prices(derive_events_frame(frame))["adj_close"].to_numpy()
    np.testing.assert_allclose(adjusted / adjusted[-1], np.array(ADJ) / ADJ[-1], rtol=1e-12)


def test_rounding_is_no_dividend_and_a_reverse_split_is_found():
    close = [10.0, 10.1, 101.0, 100.0]  # 1-for-10 reverse split ex on day 2
    adj = [10.0 * 10, 10.1 * 10, 101.0, 100.0 + 1e-6]  # last value: vendor rounding noise
    dividend, split = derive_events(np.array(close), np.array(adj))
    assert split.tolist() == [1.0, 1.0, 0.1, 1.0]
    assert dividend.tolist() == [0.0, 0.0, 0.0, 0.0]


def test_no_adjustment_means_no_event():
    close = np.array([10.0, 11.0, 16.0, 8.0])
    dividend, split = derive_events(close, close.copy())
    assert split.tolist() == [1.0] * 4 and dividend.tolist() == [0.0] * 4


def test_a_genuine_earnings_day_is_not_a_split():
    # +52 % with Adj Close moving the same way and volume x5: the vendor shows no split
    assert judge_jump(Bar(100.0, 98.0, 1e6), Bar(152.0, 148.96, 5e6)) is None
    # -45 %: no split ratio, Adj Close agrees
    assert judge_jump(Bar(100.0, 100.0, 1e6), Bar(55.0, 55.0, 9e6)) is None


def test_recorded_split_explains_the_jump():
    assert judge_jump(Bar(100.0, 50.0, 1e6), Bar(50.5, 50.5, 2e6, split_ratio=2.0)) is None


def test_unadjusted_split_shaped_move_is_in_doubt():
    why = judge_jump(Bar(100.0, 100.0, 1e6), Bar(50.6, 50.6, 2.1e6))
    assert why is not None and "2-for-1 split" in why and "volume x2.1" in why


def test_same_price_move_with_volume_unlike_a_split_is_genuine():
    # halves with volume x20: a crash, not a split (a split scales volume by about 2)
    assert judge_jump(Bar(100.0, 100.0, 1e6), Bar(50.6, 50.6, 20e6)) is None


def test_close_and_adj_close_disagreeing_is_in_doubt():
    # the Split Ratio column records nothing, but Adj Close is smooth: the vendor's signals conflict
    why = judge_jump(Bar(100.0, 50.0, 1e6), Bar(50.5, 50.5, 2e6))
    assert why is not None and "disagree" in why


def bars(symbol: str, closes: list[float], volumes: list[float] | None = None) -> pd.DataFrame:
    n = len(closes)
    return pd.DataFrame(
        {
            "symbol": symbol, "trade_date": [date(2024, 2, d + 1) for d in range(n)], "close": closes, "adj_close": closes,
            "volume": volumes or [1e6] * n, "dividend": 0.0, "split_ratio": 1.0,
        }
    )


def test_screen_holds_out_a_doubtful_symbol_from_the_jump_on_and_keeps_the_others():
    frame = pd.concat([bars("A", [100, 101, 50, 51, 52], [1e6, 1e6, 2e6, 2e6, 2e6]), bars("B", [10, 10.2, 15.5, 15.6, 15.4])])
    kept, held = screen_jumps(frame)
    assert kept[kept["symbol"] == "B"]["close"].tolist() == [10, 10.2, 15.5, 15.6, 15.4]  # +52 %: genuine
    assert kept[kept["symbol"] == "A"]["close"].tolist() == [100, 101]
    assert held["trade_date"].tolist() == [date(2024, 2, 3), date(2024, 2, 4), date(2024, 2, 5)]
    assert all(r.startswith(f"{DOUBT_PREFIX} on 2024-02-03") for r in held["reason"])
    assert "2-for-1 split" in held["reason"].iloc[0]


def test_screen_compares_the_first_bar_with_the_stored_one_and_keeps_open_doubts():
    previous = pd.DataFrame({"symbol": ["A"], "trade_date": [date(2024, 1, 31)], "close": [200.0], "adj_close": [200.0], "volume": [5e5]})
    kept, held = screen_jumps(bars("A", [100, 101], [1e6, 1e6]), previous)
    assert kept.empty and len(held) == 2
    doubt = {"B": (date(2024, 1, 20), f"{DOUBT_PREFIX} on 2024-01-20: something")}
    kept, held = screen_jumps(bars("B", [10, 10.1]), None, doubt)
    assert kept.empty and held["reason"].str.contains("2024-01-20").all()


def test_a_confirmed_move_is_kept():
    frame = bars("A", [100, 101, 50, 51], [1e6, 1e6, 2e6, 2e6])
    kept, held = screen_jumps(frame, confirmed={("A", date(2024, 2, 3))})
    assert held.empty and kept["close"].tolist() == [100, 101, 50, 51]
