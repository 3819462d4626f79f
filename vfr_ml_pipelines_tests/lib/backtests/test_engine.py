"""The engine on hand-computed cases, its timing (no look-ahead), tradability and tranches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.backtests.config import BacktestConfig, CostConfig
from vfr_ml_pipelines.lib.backtests.engine import TopkDropout, run_backtest
from vfr_ml_pipelines.lib.backtests.panel import build_panel, score_matrix
from vfr_ml_pipelines_tests.lib.backtests.synthetic_panel import synthetic_market

DAYS = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"])
# two assets x three days: (open, close) per day
BARS = {"A": [(100, 100), (102, 110), (112, 120)], "B": [(100, 100), (99, 90), (88, 99)]}
# commission 10 bp (minimum 5), half-spread 5 bp, no impact, no borrow
COSTS = CostConfig(commission_bps=10, min_commission=5, half_spread_bps=5, impact_coefficient=0, participation_cap=1.0, borrow_bps_per_year=0)
CONFIG = BacktestConfig(topk=1, n_drop=1, notional=10_000, costs=COSTS)


def two_asset_prices() -> pd.DataFrame:
    rows = [
        {"trade_date": day, "symbol": symbol, "open": o, "close": c, "adj_close": c, "volume": 1e6}
        for symbol, bars in BARS.items()
        for day, (o, c) in zip(DAYS, bars, strict=True)
    ]
    return pd.DataFrame(rows)


def two_asset_scores() -> pd.DataFrame:
    # day 0 prefers A, day 1 prefers B (day 2's score has no session left to trade on)
    rows = [("A", 0, 1.0), ("B", 0, 0.0), ("A", 1, 0.0), ("B", 1, 1.0), ("A", 2, 1.0), ("B", 2, 0.0)]
    return pd.DataFrame([{"trade_date": DAYS[d], "symbol": s, "score": v} for s, d, v in rows])


def test_two_assets_three_days_at_the_open_by_hand():
    panel = build_panel(two_asset_prices())
    result = run_backtest(panel, two_asset_scores(), CONFIG, name="hand")
    # day 1: buy A at the open (102) with the whole 10 000: commission 10, spread 5
    cost1 = (10 + 5) / 10_000
    r1 = 1 - cost1 + (110 / 102 - 1) - 1
    # day 2: A gaps 110 -> 112, then A is sold and B bought at the open; B closes 88 -> 99
    value_a = 10_000 * 110 / 102 * 112 / 110
    value = value_a - 15
    weight_a = value_a / value
    growth = value / (10_000 * (1 + r1))
    cost2 = (max(10e-4 * weight_a * 10_000, 5) + 10) / 10_000 + 5e-4 * (weight_a + 1)
    r2 = growth * (1 - cost2 + (99 / 88 - 1)) - 1
    np.testing.assert_allclose(result.returns.to_numpy(), [0.0, r1, r2], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(result.gross_returns.to_numpy(), [0.0, 110 / 102 - 1, growth * (99 / 88) - 1], rtol=1e-12)
    np.testing.assert_allclose(result.turnover.to_numpy(), [0.0, 1.0, weight_a + 1.0], rtol=1e-12)
    np.testing.assert_allclose(result.costs[["commission", "spread"]].sum(axis=1).to_numpy(), [0, cost1, cost2], rtol=1e-12)
    assert result.holdings.tolist() == [0, 1, 1]
    assert result.weights[2, 0] == 0.0 and result.weights[2, 1] == pytest.approx(1 * 99 / 88 / (1 - cost2 + 99 / 88 - 1))


def test_two_assets_three_days_at_the_close_by_hand():
    panel = build_panel(two_asset_prices())
    result = run_backtest(panel, two_asset_scores(), CONFIG.with_(execution_price="close"))
    cost1 = 15 / 10_000
    # A is bought at day 1's close: day 1 earns nothing but pays the costs
    r1 = -cost1
    held_a = 1 / (1 - cost1)  # the position is worth the whole 10 000, the book 10 000 - 15
    growth = 1 + held_a * (120 / 110 - 1)
    weight_a = held_a * 120 / 110 / growth
    cost2 = (max(10e-4 * weight_a * 10_000, 5) + 10) / 10_000 + 5e-4 * (weight_a + 1)
    r2 = growth * (1 - cost2) - 1
    np.testing.assert_allclose(result.returns.to_numpy(), [0.0, r1, r2], rtol=1e-12, atol=1e-15)


def test_minimum_commission_applies_to_small_orders():
    panel = build_panel(two_asset_prices())
    result = run_backtest(panel, two_asset_scores(), CONFIG.with_(notional=1_000))
    # 10 bp of 1 000 is 1 < 5: the minimum is charged
    assert result.costs["commission"].iloc[1] == pytest.approx(5 / 1_000)


def test_a_symbol_without_a_bar_is_neither_sold_nor_bought():
    prices = two_asset_prices()
    # A has no bar on day 2: it cannot be sold, so no cash is freed and B is not bought
    no_a = prices[~((prices["symbol"] == "A") & (prices["trade_date"] == DAYS[2]))]
    result = run_backtest(build_panel(no_a), two_asset_scores(), CONFIG)
    assert result.turnover.iloc[2] == 0.0
    assert result.weights[2, 0] == pytest.approx(1.0, rel=1e-2) and result.weights[2, 1] == 0.0
    # and A's price is carried: no return on the day without a bar
    assert result.gross_returns.iloc[2] == 0.0
    # B has no bar on day 2: A is sold (Qlib's rule) but B cannot be bought; the book is cash
    no_b = prices[~((prices["symbol"] == "B") & (prices["trade_date"] == DAYS[2]))]
    result = run_backtest(build_panel(no_b), two_asset_scores(), CONFIG)
    assert result.weights[2, 1] == 0.0 and result.holdings.iloc[2] == 0


def test_topk_dropout_sells_the_worst_held_and_buys_the_best_new():
    rule = TopkDropout(topk=3, n_drop=1)
    score = np.array([5.0, 4.0, 1.0, 3.0, 2.0, np.nan])
    pre = np.array([0.3, 0.3, 0.4, 0.0, 0.0, 0.0])
    tradable = np.ones(6, dtype=bool)
    target = rule(score, pre, tradable)
    # held {0, 1, 2}; the best new is 3; ranked together 0, 1, 3, 2: the worst held (2) goes
    np.testing.assert_allclose(target, [0.3, 0.3, 0.0, 0.4, 0.0, 0.0])
    # when the best new ranks below every held name, nothing is traded
    target = rule(np.array([5.0, 4.0, 3.0, 1.0, 0.5, 0.0]), pre, tradable)
    np.testing.assert_allclose(target, pre)
    # an untradable worst holding is kept, and no cash is freed for a buy
    tradable[2] = False
    np.testing.assert_allclose(rule(score, pre, tradable), pre)


def test_long_short_is_dollar_neutral():
    prices, oracle, _, _ = synthetic_market(n_dates=40, n_symbols=20)
    panel = build_panel(prices)
    result = run_backtest(panel, oracle, BacktestConfig(strategy="long_short", quantile=0.25), score_column="expected_return")
    net = result.weights[1:].sum(axis=1)
    gross = np.abs(result.weights[1:]).sum(axis=1)
    assert np.abs(net).max() < 0.05 and np.all(gross > 0.9)
    assert result.costs["borrow"].iloc[2:].gt(0).all()


def test_the_oracle_beats_random_rankings_and_equal_weight():
    prices, oracle, _, _ = synthetic_market(n_dates=250, n_symbols=40)
    panel = build_panel(prices)
    config = BacktestConfig(topk=8, n_drop=2)
    oracle_result = run_backtest(panel, oracle, config, score_column="expected_return")
    rng = np.random.default_rng(0)
    random_totals = [
        run_backtest(panel, rng.standard_normal(panel.shape), config).returns.sum() for _ in range(5)
    ]
    equal = run_backtest(panel, None, config.with_(strategy="equal_weight"))
    assert oracle_result.returns.sum() > max(random_totals)
    assert oracle_result.returns.sum() > equal.returns.sum()


def test_a_signal_from_the_future_is_what_makes_a_backtest_too_good():
    prices, oracle, _, _ = synthetic_market(n_dates=200, n_symbols=30)
    panel = build_panel(prices)
    config = BacktestConfig(topk=5, n_drop=5, costs=CostConfig.free())
    honest = panel.close_return  # session t's own return, known at t's close
    leaked = np.vstack([panel.close_return[1:], np.zeros((1, panel.shape[1]))])  # t + 1's return, at t
    honest_result = run_backtest(panel, honest, config)
    leaked_result = run_backtest(panel, leaked, config.with_(execution_price="close"))
    # trading at t + 1's close on t + 1's return earns nothing: the engine never trades on the
    # bar that produced the signal, so the leak is worth nothing at the close ...
    assert abs(leaked_result.returns.mean()) < 0.002
    # ... and at the open only the part of the move after the open (3/4 of it here) is earned
    leaked_open = run_backtest(panel, leaked, config)
    assert leaked_open.returns.mean() > 10 * abs(honest_result.returns.mean())


def test_overlapping_tranches_average_k_start_days():
    prices, oracle, _, _ = synthetic_market(n_dates=60, n_symbols=20)
    panel = build_panel(prices)
    scores = score_matrix(panel, oracle, "expected_return")
    config = BacktestConfig(topk=5, n_drop=2, rebalance_every=3, costs=CostConfig.free())
    combined = run_backtest(panel, scores, config)
    single = run_backtest(panel, scores, config.with_(overlapping_tranches=False))
    assert not np.allclose(combined.returns, single.returns)
    assert single.turnover.gt(0).sum() <= 60 // 3 + 1


def test_same_seed_same_result():
    a = run_backtest(build_panel(synthetic_market(seed=3)[0]), synthetic_market(seed=3)[1], score_column="expected_return", config=BacktestConfig(topk=5, n_drop=1))
    b = run_backtest(build_panel(synthetic_market(seed=3)[0]), synthetic_market(seed=3)[1], score_column="expected_return", config=BacktestConfig(topk=5, n_drop=1))
    pd.testing.assert_series_equal(a.returns, b.returns)


def test_participation_cap_limits_orders():
    prices, oracle, _, _ = synthetic_market(n_dates=30, n_symbols=20)
    panel = build_panel(prices)
    config = BacktestConfig(topk=4, n_drop=1, notional=1e10)
    result = run_backtest(panel, oracle, config, score_column="expected_return")
    # ADV is about 1e8 per name: 10 % of it is 0.1 % of a 1e10 book per order
    assert result.turnover.max() < 4 * 0.1 * 2e8 / 1e10 + 1e-9


def test_long_short_impact_and_borrow_by_hand():
    costs = CostConfig(commission_bps=10, min_commission=5, half_spread_bps=5, impact_coefficient=0.5, participation_cap=1.0, borrow_bps_per_year=50)
    config = BacktestConfig(strategy="long_short", quantile=0.5, notional=10_000, costs=costs)
    result = run_backtest(build_panel(two_asset_prices()), two_asset_scores(), config)
    # day 1 at the open: long A 0.5, short B 0.5; orders of 5 000 each
    commission = 2 * max(10e-4 * 5_000, 5) / 10_000
    spread = 5e-4 * 1.0
    # ADV = 1e6 shares x 100 on day 0; sigma has no two past returns yet: the 2 % fallback
    impact = 2 * 0.5 * 0.02 * np.sqrt(5_000 / 1e8) * 0.5
    intraday = 0.5 * (110 / 102 - 1) - 0.5 * (90 / 99 - 1)
    short_at_close = 0.5 * 90 / 99
    borrow = 50e-4 / 252 * short_at_close
    assert result.costs.iloc[1].to_dict() == pytest.approx({"commission": commission, "spread": spread, "impact": impact, "borrow": borrow})
    assert result.returns.iloc[1] == pytest.approx(intraday - commission - spread - impact - borrow, rel=1e-12)
