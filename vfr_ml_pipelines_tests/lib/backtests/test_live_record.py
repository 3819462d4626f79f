"""The live track record: overlapping forward returns counted once, and the served book through
the backtests' engine and costs (by hand, at parity with the walk-forward report, too few days)."""

from __future__ import annotations

import math
import warnings
from datetime import date, timedelta

import empyrical
import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.backtests.config import BacktestConfig
from vfr_ml_pipelines.lib.backtests.live_record import (
    AFTER_COSTS, BEFORE_COSTS, MIN_SESSIONS, OK, book_table, live_backtest, live_track_record, records_table,
)
from vfr_ml_pipelines.lib.backtests.panel import build_panel
from vfr_ml_pipelines.lib.backtests.publish import markdown_table
from vfr_ml_pipelines.lib.backtests.report import BENCHMARK, ORACLE, run_report
from vfr_ml_pipelines_tests.lib.backtests.synthetic_panel import synthetic_market
from vfr_ml_pipelines_tests.lib.backtests.test_engine import CONFIG, DAYS, two_asset_prices

NO_BOOK = live_backtest(pd.DataFrame(), pd.DataFrame(columns=["horizon", "as_of_date", "symbol", "expected_return"]), "1w", BacktestConfig())


def test_a_weekly_record_samples_every_fifth_session_with_outcomes():
    sessions = [date(2031, 3, 2) + timedelta(days=i) for i in range(7)]
    rows = []
    for i, session in enumerate(sessions):
        # sessions 0 and 5 (the sampled ones) rank perfectly, the others exactly backwards
        sign = 1.0 if i in (0, 5) else -1.0
        rows += [("1w", session, s, e, sign * e, None) for s, e in (("AAA", 0.02), ("BBB", 0.01), ("CCC", -0.01))]
    frame = pd.DataFrame(rows, columns=["horizon", "as_of_date", "symbol", "expected_return", "actual_return", "direction_correct"])
    record = live_track_record(frame, "1w", NO_BOOK)
    assert (record.days_with_outcomes, record.sampled_days) == (7, 2)
    assert record.rank_ic_mean == pytest.approx(1.0)
    assert record.direction_accuracy != record.direction_accuracy  # no directional call: NaN
    assert NO_BOOK.status.startswith("not enough days yet: no served 1w prediction") and NO_BOOK.days_missing == MIN_SESSIONS


def _served(day_scores: dict[int, dict[str, float]], horizon: str = "1d") -> pd.DataFrame:
    return pd.DataFrame([
        {"horizon": horizon, "as_of_date": DAYS[d].date(), "symbol": s, "expected_return": v}
        for d, scores in day_scores.items() for s, v in scores.items()
    ])


def test_the_served_book_is_traded_by_the_engine_with_costs_by_hand():
    # served on day 0: A best, on day 1: B best (the engine's two-asset case, top 1 drop 1)
    served = _served({0: {"A": 1.0, "B": 0.0}, 1: {"A": 0.0, "B": 1.0}})
    book = live_backtest(two_asset_prices(), served, "1d", CONFIG, min_sessions=2)
    assert book.status == OK and (book.served_sessions, book.traded_sessions) == (2, 2)
    # day 1: A bought at the open 102 with 10 000 (commission 10, spread 5), closes 110
    cost1 = 15 / 10_000
    r1 = (110 / 102 - 1) - cost1
    # day 2: A gaps 110 -> 112, A sold and B bought at the open, B closes 88 -> 99
    value_a = 10_000 * 110 / 102 * 112 / 110
    weight_a = value_a / (value_a - 15)
    growth = (value_a - 15) / (10_000 * (1 + r1))
    cost2 = (max(10e-4 * weight_a * 10_000, 5) + 10) / 10_000 + 5e-4 * (weight_a + 1)
    r2 = growth * (1 - cost2 + (99 / 88 - 1)) - 1
    np.testing.assert_allclose(book.returns[AFTER_COSTS].to_numpy(), [0.0, r1, r2], rtol=1e-12, atol=1e-15)
    gross = [110 / 102 - 1, growth * (99 / 88) - 1]
    np.testing.assert_allclose(book.returns[BEFORE_COSTS].to_numpy()[1:], gross, rtol=1e-12)
    table = book.table
    assert table.loc[AFTER_COSTS, "annual_return"] == pytest.approx(empyrical.annual_return(pd.Series([r1, r2])), rel=1e-12)
    assert table.loc[BEFORE_COSTS, "annual_return"] == pytest.approx(empyrical.annual_return(pd.Series(gross)), rel=1e-12)
    assert table.loc[BEFORE_COSTS, "annual_costs"] == 0 and table.loc[AFTER_COSTS, "annual_costs"] > 0
    # the same holdings: the turnover is the book's in both rows
    assert table.loc[BEFORE_COSTS, "annual_turnover"] == table.loc[AFTER_COSTS, "annual_turnover"]


def test_few_sessions_report_how_many_are_missing_without_a_warning():
    served = _served({0: {"A": 1.0, "B": 0.0}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        book = live_backtest(two_asset_prices(), served, "1d", CONFIG)  # 2 sessions after the first served one
        record = live_track_record(pd.DataFrame(columns=["horizon", "as_of_date", "symbol", "expected_return", "actual_return", "direction_correct"]), "1d", book)
        row = records_table([record]).loc["1d"]
    assert book.table is None and book.days_missing == MIN_SESSIONS - 2
    assert book.status == f"not enough days yet: 2 of {MIN_SESSIONS} sessions with a realized return since the first served 1d session 2024-01-02"
    assert row["status"] == book.status and math.isnan(row["sharpe_after_costs"]) and row["sessions_needed"] == MIN_SESSIONS
    assert book_table([record]).empty
    # as the asset shows it: counts as counts, the NaN figures blank
    shown = markdown_table(records_table([record]), columns=None).splitlines()[2]
    assert shown.startswith("| 1d | 0 | 0 |  |  |  | 1 | 2 | 63 | not enough days yet: 2 of 63") and shown.endswith("|  |  |  |  |  |  |  |")
    with pytest.raises(ValueError, match="min_sessions"):
        live_backtest(two_asset_prices(), served, "1d", CONFIG, min_sessions=1)


def test_the_live_book_equals_the_walk_forward_report_of_the_same_scores():
    """Same engine, config, sizing and costs: served predictions that are the oracle's expected
    returns give the oracle's row of `run_report` over the same sessions."""
    prices, oracle, _, _ = synthetic_market(n_dates=160, n_symbols=30)
    first = pd.Timestamp("2020-03-02")
    served = oracle[oracle["trade_date"] >= first].rename(columns={"trade_date": "as_of_date"}).assign(horizon="1w")
    config = BacktestConfig().for_horizon("1w")
    book = live_backtest(prices, served, "1w", config)
    assert book.status == OK and book.config.topk == 5 and book.book_rule.startswith("top 5 drop 1 of 30 symbols")
    panel = build_panel(prices[prices["trade_date"] >= first])
    report = run_report(panel, {}, config.for_universe(30), oracle=oracle)
    for metric in ("annual_return", "sharpe", "information_ratio", "max_drawdown", "annual_turnover", "annual_costs", "tail_ratio"):
        assert book.table.loc[AFTER_COSTS, metric] == pytest.approx(report.metrics.loc[ORACLE, metric], rel=1e-12), metric
        assert book.table.loc[BENCHMARK, metric] == pytest.approx(report.metrics.loc[BENCHMARK, metric], rel=1e-12), metric
    assert book.table.loc[BEFORE_COSTS, "annual_return"] == pytest.approx(report.metrics.loc[ORACLE, "gross_annual_return"], rel=1e-12)
    assert book.table.loc[BEFORE_COSTS, "annual_return"] > book.table.loc[AFTER_COSTS, "annual_return"]
    # the full table has the backtests' columns, significance included
    assert {"sharpe_ci_low", "probabilistic_sharpe", "deflated_sharpe", "notes"} <= set(book.table.columns)
