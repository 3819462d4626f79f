"""The backtest core on the project's own synthetic market (splits, delistings, a listing,
sectors; the planted oracle), in the shapes the Dagster assets will pass."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from vfr_ml_pipelines.lib.backtests.config import BacktestConfig
from vfr_ml_pipelines.lib.backtests.panel import build_panel, score_matrix
from vfr_ml_pipelines.lib.backtests.report import BENCHMARK, ORACLE, run_report
from vfr_ml_pipelines.lib.backtests.risk import run_risk_report
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig, generate_oracle, generate_prices, generate_universe


@pytest.fixture(scope="module")
def market():
    config = SyntheticMarketConfig(as_of=date(2017, 12, 29), n_symbols=40, delistings=2)
    universe = generate_universe(config)
    panel = build_panel(generate_prices(config), sectors=universe.set_index("symbol")["sector"])
    oracle = generate_oracle(config)
    return panel, oracle[oracle["horizon"] == "1w"].drop(columns="horizon")


def test_weekly_report_with_oracle_and_a_noisy_model(market):
    panel, oracle = market
    truth = score_matrix(panel, oracle, "expected_return")
    noisy = truth + np.nanstd(truth) * np.random.default_rng(0).standard_normal(truth.shape)
    predictions = oracle.assign(score=noisy[panel.dates.get_indexer(oracle["trade_date"].astype("datetime64[ns]")), panel.symbols.get_indexer(oracle["symbol"])])
    report = run_report(panel, {"lightgbm": predictions[["trade_date", "symbol", "score"]]}, BacktestConfig(topk=8, n_drop=2).for_horizon("1w"), oracle=oracle)
    table = report.table()
    assert table.loc[ORACLE, "excess_annual_return"] > 0
    assert table.loc[ORACLE, "annual_return"] > table.loc[BENCHMARK, "annual_return"]
    assert table.loc["lightgbm", "share_of_oracle"] < 1 and not report.leak_suspected["lightgbm"]
    # a delisted name is paid out after its last bar, never held on at a stale price
    assert panel.delisted.any()
    for result in report.results.values():
        assert (result.weights[panel.delisted] == 0).all()
    risk = run_risk_report(panel, report.results, window=120).table()
    assert risk["var_99_historical"].gt(0).all()
