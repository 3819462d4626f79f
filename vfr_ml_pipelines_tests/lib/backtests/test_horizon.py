"""A horizon's backtest as the pipeline runs it (from stored predictions): the top-k book fitted
to the universe, the test period, the challenger found by its run, no oracle, the risk report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.backtests.config import BacktestConfig
from vfr_ml_pipelines.lib.backtests.horizon import CHALLENGER, NoPredictions, backtest_horizon, challenger_risk
from vfr_ml_pipelines.lib.backtests.report import BENCHMARK, ORACLE
from vfr_ml_pipelines_tests.lib.backtests.synthetic_panel import synthetic_market


def test_the_default_book_is_qlibs_share_of_the_universe_capped_at_top_50_drop_5():
    config = BacktestConfig()  # cap 50 / 5, a sixth of the universe (Qlib: 50 of CSI300)
    assert config.for_universe(500) == config  # 83 would be a sixth: the cap holds
    assert (config.for_universe(300).topk, config.for_universe(300).n_drop) == (50, 5)  # Qlib's own case
    assert (config.for_universe(50).topk, config.for_universe(50).n_drop) == (8, 1)  # round(50 / 6), 8 x 5 / 50 -> 1
    assert (config.for_universe(25).topk, config.for_universe(25).n_drop) == (4, 1)
    assert config.with_(n_drop=0).for_universe(25).n_drop == 0
    assert config.for_universe(3).topk == 1
    whole = config.with_(topk_share=1.0)
    assert whole.for_universe(50) == whole  # share 1: topk as given
    assert config.book_rule(50).startswith("top 8 drop 1 of 50 symbols")
    assert config.book_rule(500).startswith("top 50 drop 5 of 500 symbols")
    with pytest.raises(ValueError, match="topk_share"):
        config.with_(topk_share=0.0)
    with pytest.raises(ValueError, match="at least one symbol"):
        config.for_universe(0)


def _stored_predictions(oracle: pd.DataFrame, first_test_day: str) -> pd.DataFrame:
    """Two candidates' test rows as `store.walk_forward_predictions` reads them: `good` is the
    oracle plus noise (from run-good), `noise` pure noise (from run-noise)."""
    rng = np.random.default_rng(3)
    test = oracle[oracle["trade_date"] >= pd.Timestamp(first_test_day)]
    parts = []
    for name, score in (("good", test["expected_return"] + 0.002 * rng.standard_normal(len(test))), ("noise", rng.standard_normal(len(test)))):
        parts.append(test[["trade_date", "symbol"]].assign(
            candidate=name, fold=0, segment="test", score=score, mlflow_run_id=f"run-{name}", model_version="1",
        ))
    return pd.concat(parts, ignore_index=True)


def test_a_horizon_backtest_trades_the_test_period_names_the_challenger_and_works_without_an_oracle():
    prices, oracle, sectors, _ = synthetic_market(n_dates=260, n_symbols=40)
    predictions = _stored_predictions(oracle, "2020-06-01")
    with_oracle = backtest_horizon("1d", prices, predictions, BacktestConfig(), oracle=oracle, challenger_run_id="run-good", sectors=sectors)
    assert with_oracle.challenger == "good" and with_oracle.first_day == "2020-06-01"
    assert (with_oracle.config.topk, with_oracle.config.n_drop) == (7, 1)  # round(40 / 6), 7 x 5 / 50 -> 1
    assert with_oracle.book_rule.startswith("top 7 drop 1 of 40 symbols")
    table = with_oracle.report.table()
    assert {"good", "noise", ORACLE, BENCHMARK} == set(table.index)
    assert with_oracle.challenger_metric("share_of_oracle") > table.loc["noise", "share_of_oracle"]
    assert with_oracle.leaked() == []

    without = backtest_horizon("1w", prices, predictions, BacktestConfig().for_horizon("1w"), challenger_run_id="run-unknown")
    assert without.challenger is None and not without.has_oracle and ORACLE not in without.report.table().index
    assert math.isnan(without.challenger_metric("information_ratio"))

    risk = challenger_risk("1d", prices, predictions, BacktestConfig(), challenger_run_id="run-good", sectors=sectors)
    assert set(risk.table().index) == {CHALLENGER, BENCHMARK}
    with pytest.raises(NoPredictions, match="run-unknown"):
        challenger_risk("1d", prices, predictions, BacktestConfig(), challenger_run_id="run-unknown")
