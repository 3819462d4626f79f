"""A horizon's backtest as the pipeline runs it: the top-k book fitted to the universe."""

from __future__ import annotations

from vfr_ml_pipelines.lib.backtests.config import BacktestConfig
from vfr_ml_pipelines.lib.backtests.horizon import fit_to_universe


def test_a_topk_book_as_large_as_the_universe_is_cut_to_a_fifth_of_it():
    config = BacktestConfig()  # top 50, drop 5
    assert fit_to_universe(config, 500) == config
    assert (fit_to_universe(config, 50).topk, fit_to_universe(config, 50).n_drop) == (10, 1)
    assert (fit_to_universe(config, 25).topk, fit_to_universe(config, 25).n_drop) == (5, 1)
    assert fit_to_universe(config.with_(n_drop=0), 25).n_drop == 0
    assert fit_to_universe(config, 3).topk == 1
