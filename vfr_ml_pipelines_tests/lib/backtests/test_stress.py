"""Stress scenarios and the drawdown bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.backtests.panel import build_panel
from vfr_ml_pipelines.lib.backtests.stress import (
    drawdown_distribution,
    factor_betas,
    max_drawdowns,
    stress_table,
    worst_windows,
)
from vfr_ml_pipelines_tests.lib.backtests.synthetic_panel import synthetic_market


def test_worst_windows_by_hand():
    index = pd.Series([0.01, -0.05, -0.02, 0.03, -0.04, 0.0])
    assert worst_windows(index, 1, 2) == [(1, 1, pytest.approx(-0.05)), (4, 4, pytest.approx(-0.04))]
    # two sessions: rows 1-2 compound to 0.95 * 0.98 - 1; the next worst window may not overlap
    windows = worst_windows(index, 2, 2)
    assert windows[0] == (1, 2, pytest.approx(0.95 * 0.98 - 1))
    assert windows[1][0] >= 3


def test_max_drawdown_by_hand():
    assert max_drawdowns(np.array([0.1, -0.5, 0.2])) == pytest.approx(0.55 / 1.1 - 1)
    assert max_drawdowns(np.array([-0.1, 0.05])) == pytest.approx(-0.1)


def test_drawdown_distribution_is_reproducible_and_brackets_typical_paths():
    returns = np.random.default_rng(0).normal(0.0005, 0.01, 1000)
    first = drawdown_distribution(returns, seed=4)
    assert first == drawdown_distribution(returns, seed=4)
    assert first.quantiles[0.05] < first.quantiles[0.5] < first.quantiles[0.95] < 0
    assert 0.0 <= first.realized_percentile <= 1.0


def test_stress_table_on_the_synthetic_market():
    prices, _, sectors, market = synthetic_market(n_dates=400, n_symbols=40)
    panel = build_panel(prices, sectors=sectors)
    betas = factor_betas(panel, market)
    # the market betas were drawn uniformly in [0.6, 1.4]
    assert betas["market_beta"].between(0.3, 1.7).all() and betas["market_beta"].mean() == pytest.approx(1.0, abs=0.1)
    weights = np.full(40, 1 / 40)
    returns = pd.Series(panel.close_return[1:] @ weights, index=panel.dates[1:])
    table = stress_table(panel, weights, returns, market)
    market_row = table.loc[table["scenario"] == "market -10%", "portfolio_return"].item()
    assert market_row == pytest.approx(-0.10 * betas["market_beta"].mean())
    worst_day = table.loc[table["scenario"] == "worst 1-session window #1"].iloc[0]
    assert worst_day["index_return"] == market.min()
    assert worst_day["portfolio_return"] < 0
    assert table["scenario"].str.startswith("sector ").sum() == 4
    assert (table["scenario"] == "volatility x2 (1-session 99 % VaR)").any()


def test_risk_report_of_backtests():
    from vfr_ml_pipelines.lib.backtests.config import BacktestConfig
    from vfr_ml_pipelines.lib.backtests.engine import run_backtest
    from vfr_ml_pipelines.lib.backtests.risk import run_risk_report

    prices, oracle, sectors, market = synthetic_market(n_dates=400, n_symbols=30)
    panel = build_panel(prices, sectors=sectors)
    results = {
        "oracle": run_backtest(panel, oracle, BacktestConfig(topk=6, n_drop=2), name="oracle", score_column="expected_return"),
        "equal_weight": run_backtest(panel, None, BacktestConfig(strategy="equal_weight"), name="equal_weight"),
    }
    report = run_risk_report(panel, results, index_returns=market, window=100)
    table = report.table()
    assert list(table.index) == ["oracle", "equal_weight"]
    for column in ("var_99_historical", "cvar_95_cornish_fisher", "var99_rate_ratio", "worst_stress_return", "realized_max_drawdown"):
        assert table[column].notna().all(), column
    assert (table["cvar_99_historical"] >= table["var_99_historical"]).all()
    assert set(report.plots()) == {"var_exceptions_oracle.png", "var_exceptions_equal_weight.png"}
