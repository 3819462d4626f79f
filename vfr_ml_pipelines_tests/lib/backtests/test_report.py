"""The report: oracle share, the leak flag, significance columns, capacity and plots."""

from __future__ import annotations

import numpy as np
import pytest

from vfr_ml_pipelines.lib.backtests.config import BacktestConfig
from vfr_ml_pipelines.lib.backtests.costs import capacity
from vfr_ml_pipelines.lib.backtests.panel import build_panel, score_matrix
from vfr_ml_pipelines.lib.backtests.report import BENCHMARK, ORACLE, run_report, strategy_capacity
from vfr_ml_pipelines_tests.lib.backtests.synthetic_panel import synthetic_market

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report():
    prices, oracle, _, _ = synthetic_market(n_dates=300, n_symbols=40)
    panel = build_panel(prices)
    truth = score_matrix(panel, oracle, "expected_return")
    rng = np.random.default_rng(5)
    noisy = truth + 2 * truth.std() * rng.standard_normal(truth.shape)
    # the leaked model knows the next session's return when it scores
    leaked = np.vstack([panel.close_return[1:], np.zeros((1, panel.shape[1]))])
    candidates = {"noisy": noisy, "leaked": leaked, "random": rng.standard_normal(truth.shape)}
    return run_report(panel, candidates, BacktestConfig(topk=8, n_drop=2), oracle=oracle, seed=1)


def test_every_strategy_runs_through_the_same_engine(report):
    table = report.table()
    assert set(table.index) == {"noisy", "leaked", "random", ORACLE, BENCHMARK}
    for column in ("sharpe", "information_ratio", "annual_costs", "deflated_sharpe", "sharpe_ci_low", "share_of_oracle"):
        assert column in table.columns
    assert table.loc[ORACLE, "share_of_oracle"] == pytest.approx(1.0)
    assert table["meets_sharpe_target"].equals(table["sharpe"] > 1.0)
    assert 0 < table.loc["noisy", "share_of_oracle"] < 1
    assert table.loc["random", "share_of_oracle"] < table.loc["noisy", "share_of_oracle"]
    # factor figures exist for the scored strategies only
    assert np.isfinite(table.loc[ORACLE, "rank_ic_lag1"]) and np.isnan(table.loc[BENCHMARK, "rank_ic_lag1"])


def test_a_model_above_the_oracle_is_flagged_as_a_leak(report):
    assert report.leak_suspected == {"noisy": False, "leaked": True, "random": False}
    assert report.table().loc["leaked", "share_of_oracle"] > 1


def test_plots_are_png(report):
    images = report.plots()
    assert set(images) == {"equity_drawdown.png", "quantile_returns.png", "ic_decay.png", "turnover_costs.png"}
    assert all(image.startswith(PNG) for image in images.values())
    assert report.plots()["ic_decay.png"] == images["ic_decay.png"]


def test_capacity_search_on_a_known_curve():
    found = capacity(lambda notional: 1 / (1 + notional / 1e6), 1e5)
    # 1 / (1 + n / 1e6) = (1 / 1.1) / 2  <=>  n = 1.2e6
    assert found.notional == pytest.approx(1.2e6, rel=0.03)
    assert np.isnan(capacity(lambda notional: -1.0, 1e5).notional)
    assert capacity(lambda notional: 1.0, 1e5, max_notional=1e8).notional == float("inf")


def test_capacity_of_the_oracle_is_where_costs_eat_half_its_edge():
    prices, oracle, _, _ = synthetic_market(n_dates=120, n_symbols=30)
    panel = build_panel(prices)
    truth = score_matrix(panel, oracle, "expected_return")
    config = BacktestConfig(topk=5, n_drop=2, notional=1e6)
    found = strategy_capacity(panel, truth, config, panel.equal_weight_returns())
    assert config.notional < found.notional < 1e12
    sizes = [n for n, _ in found.curve]
    assert sizes[0] == config.notional
