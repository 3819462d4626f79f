"""A horizon's backtest as the pipeline runs it, from what the warehouse holds: every
candidate's stored test-segment predictions (`store.walk_forward_predictions`), the oracle
when the provider has one, and the equal-weight universe, through `report.run_report` on the
adjusted prices of the candidates' test period; and the risk of the challenger's book.

* The panel covers the sessions from the first to the last test-segment date of the
  candidates: the oracle trades the same sessions (its other rows are dropped), so every
  strategy is measured on the same days.
* The book is sized to the universe (`BacktestConfig.for_universe`: a share of the panel's
  symbols, at most `topk`; a top 50 of a 50-symbol market would be the equal-weight universe
  under another name), and the report says so (`HorizonBacktest.config`, `book_rule`).
* The challenger is the candidate whose stored predictions came from the challenger
  version's MLflow run (the serving version is a copy of that candidate's version).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from vfr_ml_pipelines.lib.backtests.config import EQUAL_WEIGHT, BacktestConfig
from vfr_ml_pipelines.lib.backtests.engine import run_backtest
from vfr_ml_pipelines.lib.backtests.optimizer import compare_with_topk
from vfr_ml_pipelines.lib.backtests.panel import MarketPanel, build_panel, out_of_sample_scores
from vfr_ml_pipelines.lib.backtests.report import BENCHMARK, BacktestReport, run_report
from vfr_ml_pipelines.lib.backtests.risk import RiskReport, run_risk_report

CHALLENGER = "challenger"
# the VaR forecast window is at most this, and at most half the test period (else no forecast)
RISK_WINDOW = 250


class NoPredictions(LookupError):
    """Training has stored no walk-forward predictions for the horizon."""


@dataclass(frozen=True)
class HorizonBacktest:
    horizon: str
    report: BacktestReport
    challenger: str | None
    has_oracle: bool
    first_day: str
    last_day: str
    config: BacktestConfig
    book_rule: str = ""

    def challenger_metric(self, metric: str) -> float:
        if self.challenger is None:
            return math.nan
        return float(self.report.metrics.loc[self.challenger, metric])

    def leaked(self) -> list[str]:
        return [name for name, leak in self.report.leak_suspected.items() if leak]


def horizon_panel(prices: pd.DataFrame, predictions: pd.DataFrame, *, sectors: pd.Series | None = None) -> MarketPanel:
    """The panel of `prices` over the test period of `predictions` (module docstring)."""
    if predictions.empty:
        raise NoPredictions("no stored walk-forward predictions")
    days = pd.to_datetime(prices["trade_date"])
    first, last = pd.to_datetime(predictions["trade_date"]).agg(["min", "max"])
    return build_panel(prices[(days >= first) & (days <= last)], sectors=sectors)


def challenger_candidate(predictions: pd.DataFrame, challenger_run_id: str | None) -> str | None:
    names = predictions.loc[predictions["mlflow_run_id"] == challenger_run_id, "candidate"].unique()
    return str(names[0]) if len(names) else None


def backtest_horizon(
    horizon: str, prices: pd.DataFrame, predictions: pd.DataFrame, config: BacktestConfig, *,
    oracle: pd.DataFrame | None = None, challenger_run_id: str | None = None, sectors: pd.Series | None = None, seed: int = 0,
) -> HorizonBacktest:
    """Every candidate of `predictions` (the stored test segment), the oracle and the equal-weight
    universe through `run_report` with `config`."""
    panel = horizon_panel(prices, predictions, sectors=sectors)
    rule, config = config.book_rule(len(panel.symbols)), config.for_universe(len(panel.symbols))
    candidates = {name: out_of_sample_scores(rows) for name, rows in predictions.groupby("candidate", sort=True)}
    report = run_report(panel, candidates, config, oracle=oracle, seed=seed)
    return HorizonBacktest(
        horizon, report, challenger_candidate(predictions, challenger_run_id), oracle is not None,
        str(panel.dates[0].date()), str(panel.dates[-1].date()), config, rule,
    )


def _challenger_book(
    horizon: str, prices: pd.DataFrame, predictions: pd.DataFrame, config: BacktestConfig,
    challenger_run_id: str | None, sectors: pd.Series | None,
) -> tuple[MarketPanel, pd.DataFrame, BacktestConfig]:
    """The test period's panel, the challenger's out-of-sample scores and the config fitted to
    the universe."""
    panel = horizon_panel(prices, predictions, sectors=sectors)
    name = challenger_candidate(predictions, challenger_run_id)
    if name is None:
        raise NoPredictions(f"{horizon}: no stored prediction comes from the challenger's run {challenger_run_id}")
    scores = out_of_sample_scores(predictions[predictions["candidate"] == name])
    return panel, scores, config.for_universe(len(panel.symbols))


def challenger_optimizer_comparison(
    horizon: str, prices: pd.DataFrame, predictions: pd.DataFrame, config: BacktestConfig, *,
    challenger_run_id: str | None, sectors: pd.Series | None = None,
) -> pd.DataFrame:
    """`compare_with_topk` on the challenger's scores: minimum variance and maximum Sharpe
    (Ledoit-Wolf covariance, long-only, position, sector and turnover limits) against its
    equal-weight top-k book, out of sample and after costs."""
    panel, scores, config = _challenger_book(horizon, prices, predictions, config, challenger_run_id, sectors)
    return compare_with_topk(panel, scores, config)


def challenger_risk(
    horizon: str, prices: pd.DataFrame, predictions: pd.DataFrame, config: BacktestConfig, *,
    challenger_run_id: str | None, sectors: pd.Series | None = None, seed: int = 0,
) -> RiskReport:
    """`run_risk_report` of the challenger's book (named `challenger`) and the equal-weight
    universe over the horizon's test period."""
    panel, scores, config = _challenger_book(horizon, prices, predictions, config, challenger_run_id, sectors)
    results = {
        CHALLENGER: run_backtest(panel, scores, config, name=CHALLENGER),
        BENCHMARK: run_backtest(panel, None, config.with_(strategy=EQUAL_WEIGHT), name=BENCHMARK),
    }
    window = max(20, min(RISK_WINDOW, len(panel.dates) // 2))
    return run_risk_report(panel, results, window=window, seed=seed)
