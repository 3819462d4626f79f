"""Metric parity with empyrical, Qlib's excess figures by hand, Sharpe significance, factor metrics."""

from __future__ import annotations

import warnings

import empyrical
import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.backtests import significance
from vfr_ml_pipelines.lib.backtests.config import BacktestConfig
from vfr_ml_pipelines.lib.backtests.engine import run_backtest
from vfr_ml_pipelines.lib.backtests.factor_metrics import ic_decay, quantile_returns, quantile_turnover
from vfr_ml_pipelines.lib.backtests.metrics import NOTES, excess_metrics, return_metrics, tail_ratio
from vfr_ml_pipelines.lib.backtests.panel import build_panel, score_matrix
from vfr_ml_pipelines_tests.lib.backtests.synthetic_panel import synthetic_market


def _series(seed: int = 1, n: int = 500) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2021-01-04", periods=n)
    bench = pd.Series(0.0003 + 0.01 * rng.standard_normal(n), index=index)
    returns = pd.Series(0.0002 + 0.8 * bench + 0.005 * rng.standard_t(4, n), index=index)
    return returns, bench


def test_return_metrics_match_empyrical():
    returns, bench = _series()
    ours = return_metrics(returns, bench)
    alpha, beta = empyrical.alpha_beta(returns, bench)
    expected = {
        "annual_return": empyrical.annual_return(returns),
        "annual_volatility": empyrical.annual_volatility(returns),
        "sharpe": empyrical.sharpe_ratio(returns),
        "sortino": empyrical.sortino_ratio(returns),
        "calmar": empyrical.calmar_ratio(returns),
        "max_drawdown": empyrical.max_drawdown(returns),
        "alpha": alpha,
        "beta": beta,
        "tail_ratio": empyrical.tail_ratio(returns),
        "stability": empyrical.stability_of_timeseries(returns),
    }
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, rel=1e-12), key
    assert ours[NOTES] == ""
    # and the definitions the docs state, recomputed by hand
    assert ours["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * np.sqrt(252))
    assert ours["annual_return"] == pytest.approx((1 + returns).prod() ** (252 / len(returns)) - 1)
    curve = (1 + returns).cumprod()
    assert ours["max_drawdown"] == pytest.approx((curve / np.maximum.accumulate(np.r_[1.0, curve.to_numpy()])[1:] - 1).min())


def test_a_book_that_barely_trades_has_no_tail_ratio_a_reason_and_no_warning():
    # flat on 90 % of sessions: the 5th percentile is 0 and empyrical would divide by it
    index = pd.bdate_range("2024-01-01", periods=100)
    barely = pd.Series(0.0, index=index)
    barely.iloc[::10] = [0.01, -0.02, 0.015, 0.0, 0.02, -0.01, 0.005, 0.0, 0.01, 0.003]
    flat = pd.Series(0.0, index=index)  # 0 / 0 in empyrical
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for series in (barely, flat):
            figures = return_metrics(series)
            assert np.isnan(figures["tail_ratio"]) and "5th percentile of daily returns is 0" in figures[NOTES]
        assert np.isnan(tail_ratio(pd.Series([], dtype=float))[0])
    # the guard is only for that case: a 5th percentile just below 0 is empyrical's figure
    barely.iloc[1:6] = -1e-6
    value, note = tail_ratio(barely)
    assert note is None and value == pytest.approx(empyrical.tail_ratio(barely), rel=1e-12)
    # by hand: 95th percentile / |5th| of the series with linear interpolation
    assert value == pytest.approx(abs(np.percentile(barely, 95)) / abs(np.percentile(barely, 5)))


def test_excess_metrics_follow_qlib_by_hand():
    excess = pd.Series([0.01, -0.02, 0.03, -0.01, 0.0])
    figures = excess_metrics(excess)
    assert figures["excess_annual_return"] == pytest.approx(0.002 * 252)
    assert figures["information_ratio"] == pytest.approx(0.002 / excess.std(ddof=1) * np.sqrt(252))
    # cumsum 0.01, -0.01, 0.02, 0.01, 0.01: the worst fall from a peak is 0.01 -> -0.01
    assert figures["excess_max_drawdown"] == pytest.approx(-0.02)


def test_sharpe_interval_contains_the_estimate_and_is_reproducible():
    returns, _ = _series(n=750)
    low, high = significance.sharpe_confidence_interval(returns, seed=3)
    assert low < empyrical.sharpe_ratio(returns) < high
    assert (low, high) == significance.sharpe_confidence_interval(returns, seed=3)


def test_probabilistic_and_deflated_sharpe():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(1000) * 0.01
    # normal returns: PSR(0) = Phi(SR sqrt(n-1) / sqrt(1 + SR^2 / 2)) up to the sample's moments
    skilled = noise + 0.002
    assert significance.probabilistic_sharpe_ratio(skilled) > 0.99
    assert significance.probabilistic_sharpe_ratio(noise - noise.mean()) == pytest.approx(0.5, abs=0.01)
    # trying many candidates raises the bar: the deflated SR falls with the number of trials
    weak = noise - noise.mean() + 0.0006
    one, many = significance.deflated_sharpe_ratio(weak, 1), significance.deflated_sharpe_ratio(weak, 100)
    assert one == pytest.approx(significance.probabilistic_sharpe_ratio(weak))
    assert many < one
    # E[max] of N standard normals is about 2.5 for N = 100 (Bailey & Lopez de Prado's approximation)
    assert significance.expected_max_sharpe(100, 1.0) == pytest.approx(2.53, abs=0.02)


def test_paired_difference_flags_a_better_series():
    rng = np.random.default_rng(1)
    common = rng.standard_normal(600) * 0.01
    better = common + 0.001 + 0.001 * rng.standard_normal(600)
    assert significance.paired_difference(better, common).above
    assert not significance.paired_difference(common + 0.001 * rng.standard_normal(600), common).above


def test_factor_metrics_of_the_oracle_are_monotone_and_decay():
    prices, oracle, _, _ = synthetic_market(n_dates=400, n_symbols=50)
    panel = build_panel(prices)
    scores = score_matrix(panel, oracle, "expected_return")
    quantiles = quantile_returns(panel, scores)
    assert quantiles.is_monotonic_increasing
    decay = ic_decay(panel, scores, max_lag=20)
    assert decay.iloc[0] > 0.1 and decay.iloc[0] > decay.iloc[-1]
    # random scores: no edge
    noise = np.random.default_rng(2).standard_normal(panel.shape)
    assert abs(ic_decay(panel, noise, max_lag=1).iloc[0]) < 0.03
    turnover = quantile_turnover(panel, scores)
    assert 0 < turnover["top_quantile_turnover"] < 0.5
    assert quantile_turnover(panel, noise)["top_quantile_turnover"] > 0.7


def test_strategy_table_has_one_row_of_every_figure():
    prices, oracle, _, _ = synthetic_market(n_dates=120, n_symbols=30)
    panel = build_panel(prices)
    result = run_backtest(panel, oracle, BacktestConfig(topk=5, n_drop=1), name="oracle", score_column="expected_return")
    table = result.table(panel.equal_weight_returns())
    assert list(table.index) == ["oracle"]
    for column in ("sharpe", "information_ratio", "annual_turnover", "annual_costs", "annual_impact", "beta"):
        assert np.isfinite(table.loc["oracle", column]), column
