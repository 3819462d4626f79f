"""VaR / CVaR on samples with known answers; Kupiec and Christoffersen by hand; VaR backtests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vfr_ml_pipelines.lib.backtests.var import (
    christoffersen_independence,
    conditional_value_at_risk,
    kupiec_pof,
    risk_table,
    value_at_risk,
    var_backtest,
    var_backtest_table,
)


def test_var_of_a_normal_sample_is_the_normal_quantile():
    sample = np.random.default_rng(0).normal(0.0005, 0.01, 400_000)
    for level, z in ((0.95, 1.6448536), (0.99, 2.3263479)):
        expected = z * 0.01 - 0.0005
        for method in ("historical", "normal", "cornish_fisher"):
            assert value_at_risk(sample, level, method) == pytest.approx(expected, rel=0.01), (level, method)
        # Expected shortfall of a normal: sigma phi(z) / (1 - level) - mu
        expected_es = 0.01 * stats.norm.pdf(z) / (1 - level) - 0.0005
        for method in ("historical", "normal", "cornish_fisher"):
            assert conditional_value_at_risk(sample, level, method) == pytest.approx(expected_es, rel=0.015), (level, method)


def test_cornish_fisher_sees_fat_tails_the_normal_misses():
    # Student t with 8 degrees of freedom: finite kurtosis (with 4, the sample kurtosis is
    # unbounded and the expansion overshoots, a known limit of Cornish-Fisher)
    sample = np.random.default_rng(1).standard_t(8, 200_000) * 0.01
    historical = value_at_risk(sample, 0.99, "historical")
    normal = value_at_risk(sample, 0.99, "normal")
    cornish = value_at_risk(sample, 0.99, "cornish_fisher")
    assert normal < historical and abs(cornish - historical) < abs(normal - historical)


def test_kupiec_by_hand():
    hits = np.zeros(250, dtype=bool)
    hits[[10, 50, 90, 130, 170]] = True
    result = kupiec_pof(hits, 0.99)
    lr = -2 * ((245 * np.log(0.99) + 5 * np.log(0.01)) - (245 * np.log(0.98) + 5 * np.log(0.02)))
    assert result["exceptions"] == 5 and result["rate"] == 0.02
    assert result["lr"] == pytest.approx(lr)
    assert result["p_value"] == pytest.approx(stats.chi2.sf(lr, 1))
    # as many exceptions as expected: no evidence against the model
    assert kupiec_pof(np.r_[np.ones(10, bool), np.zeros(990, bool)], 0.99)["lr"] == pytest.approx(0.0, abs=1e-9)


def test_christoffersen_by_hand():
    hits = np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0])
    # transitions: 00: 4, 01: 2, 10: 2, 11: 1
    pi0, pi1, pi = 2 / 6, 1 / 3, 3 / 9
    null = 6 * np.log(1 - pi) + 3 * np.log(pi)
    alternative = 4 * np.log(1 - pi0) + 2 * np.log(pi0) + 2 * np.log(1 - pi1) + np.log(pi1)
    assert christoffersen_independence(hits)["lr"] == pytest.approx(-2 * (null - alternative), abs=1e-12)
    clustered = np.r_[np.zeros(90), np.ones(10)]
    assert christoffersen_independence(clustered)["p_value"] < 0.01


def test_var_backtest_on_iid_normal_returns_passes():
    returns = pd.Series(np.random.default_rng(2).normal(0, 0.01, 3000))
    backtest = var_backtest(returns, 0.99, "normal", window=250)
    # no forecast uses its own session: the first forecast is for session 250
    assert backtest.forecast.index[0] == 250
    assert backtest.forecast.iloc[0] == pytest.approx(value_at_risk(returns.iloc[:250], 0.99, "normal"))
    row = backtest.row()
    assert 0.5 < row["rate_ratio"] < 1.6 and row["kupiec_p"] > 0.01
    table = var_backtest_table(returns)
    assert len(table) == 6 and set(table["method"]) == {"historical", "normal", "cornish_fisher"}


def test_var_backtest_rejects_a_model_blind_to_a_volatility_jump():
    rng = np.random.default_rng(3)
    returns = pd.Series(np.r_[rng.normal(0, 0.005, 1000), rng.normal(0, 0.02, 250)])
    row = var_backtest(returns, 0.99, "normal", window=750).row()
    assert row["rate_ratio"] > 3 and row["kupiec_p"] < 0.001


def test_risk_table_columns():
    table = risk_table({"a": pd.Series(np.random.default_rng(4).normal(0, 0.01, 500))})
    assert table.shape == (1, 12) and (table > 0).all(axis=None)
