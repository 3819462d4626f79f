"""The optimizer against closed forms, its limits, and the out-of-sample comparison."""

from __future__ import annotations

import numpy as np
import pytest

from vfr_ml_pipelines.lib.backtests.config import BacktestConfig
from vfr_ml_pipelines.lib.backtests.optimizer import (
    MAX_SHARPE,
    OptimizerConfig,
    compare_with_topk,
    ledoit_wolf_covariance,
    optimize_weights,
)
from vfr_ml_pipelines.lib.backtests.panel import build_panel, score_matrix
from vfr_ml_pipelines_tests.lib.backtests.synthetic_panel import synthetic_market


def test_min_variance_of_two_assets_matches_the_closed_form():
    s1, s2, rho = 0.2, 0.3, 0.6
    s12 = rho * s1 * s2
    covariance = np.array([[s1**2, s12], [s12, s2**2]])
    w1 = (s2**2 - s12) / (s1**2 + s2**2 - 2 * s12)
    np.testing.assert_allclose(optimize_weights(covariance, long_only=False), [w1, 1 - w1], atol=1e-6)
    # with a strong correlation the unconstrained answer shorts asset 2; long-only stops at 0
    rho = 0.9
    s12 = rho * s1 * s2
    covariance = np.array([[s1**2, s12], [s12, s2**2]])
    assert (s2**2 - s12) / (s1**2 + s2**2 - 2 * s12) > 1
    np.testing.assert_allclose(optimize_weights(covariance), [1.0, 0.0], atol=1e-6)


def test_max_sharpe_matches_the_tangency_portfolio():
    covariance = np.diag([0.04, 0.09, 0.01])
    expected = np.array([0.08, 0.06, 0.01])
    tangency = np.linalg.solve(covariance, expected)
    np.testing.assert_allclose(optimize_weights(covariance, expected, objective=MAX_SHARPE), tangency / tangency.sum(), atol=1e-6)


def test_limits_hold():
    rng = np.random.default_rng(0)
    returns = rng.standard_normal((200, 12)) * 0.01
    covariance = ledoit_wolf_covariance(returns)
    sectors = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    previous = np.full(12, 1 / 12)
    for objective in ("min_variance", MAX_SHARPE):
        weights = optimize_weights(
            covariance, rng.uniform(0.0, 0.01, 12), objective=objective, max_weight=0.15,
            sector_codes=sectors, sector_cap=0.4, previous=previous, turnover_limit=0.3,
        )
        assert weights.sum() == pytest.approx(1.0) and weights.min() >= -1e-9
        assert weights.max() <= 0.15 + 1e-6
        assert all(weights[sectors == s].sum() <= 0.4 + 1e-6 for s in range(3))
        assert np.abs(weights - previous).sum() <= 0.3 + 1e-5
    # pinned names keep their weight; an impossible limit gives None
    pinned = np.zeros(12, dtype=bool)
    pinned[0] = True
    weights = optimize_weights(covariance, previous=previous, pinned=pinned, max_weight=0.2)
    assert weights[0] == pytest.approx(1 / 12, abs=1e-6)
    assert optimize_weights(covariance, max_weight=0.05) is None


def test_ledoit_wolf_shrinks_towards_a_well_conditioned_matrix():
    returns = np.random.default_rng(1).standard_normal((30, 25)) * 0.01
    shrunk = ledoit_wolf_covariance(returns)
    assert np.linalg.cond(shrunk) < np.linalg.cond(np.cov(returns.T))


def test_out_of_sample_comparison_after_costs():
    prices, oracle, sectors, _ = synthetic_market(n_dates=120, n_symbols=30)
    panel = build_panel(prices, sectors=sectors)
    scores = score_matrix(panel, oracle, "expected_return")
    table = compare_with_topk(panel, scores, BacktestConfig(topk=10, rebalance_every=10), OptimizerConfig(candidates=15, lookback=60, max_weight=0.2, sector_cap=0.5))
    assert list(table.index) == ["equal_weight_topk", "min_variance", "max_sharpe"]
    assert table["annual_costs"].gt(0).all() and table["annual_volatility"].gt(0).all()
    # the minimum-variance book is the least volatile of the three
    assert table.loc["min_variance", "annual_volatility"] <= table["annual_volatility"].min() + 1e-12
