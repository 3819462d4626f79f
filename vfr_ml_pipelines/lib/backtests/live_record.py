"""The live track record of a served horizon: how the predictions VFR was served did.

Two views, each per horizon:

* **Outcomes** (rows of `store.live_outcomes`: the served predictions whose realized forward
  return is known). `days_with_outcomes`: sessions with at least one outcome. Rank IC per
  session: Spearman correlation of the served expected return with the realized forward return
  across symbols (NaN with fewer than two symbols or a constant side). The forward returns of
  consecutive sessions overlap for `1w` / `1m` (h sessions each), so the mean and its t
  statistic are taken over **non-overlapping** sessions: the first session with outcomes and
  every h-th one after it, so each realized move counts once. t = mean / (std / sqrt(n)),
  ddof 1. `direction_accuracy`: the share of directional calls (UP / DOWN: `direction_correct`
  not NULL, VFR's rule) that were right, over every row (a share is not biased by overlap).
* **The served book through the backtest engine** (`live_backtest`): the served expected
  returns (`store.served_predictions`) are the scores of the same engine, config and cost
  model as the walk-forward backtests (`BacktestConfig.for_horizon(h)`, sized by
  `for_universe` to the symbols with prices), on the adjusted prices from the first served
  session on. The signal of session t trades at t + 1, so the book earns from the session
  after the first served one. Reported: the same metric set as `backtest_{h}`
  (`metrics.strategy_metrics` + `report.significance_figures`) for the book after costs,
  the **same holdings** before costs (the engine's gross returns, costs set to 0), and the
  equal-weight universe; excess over the equal-weight universe before costs.
  Annualized figures from a few sessions are noise (the standard error of an annual Sharpe
  ratio is about sqrt(252 / n)), so the figures wait for `MIN_SESSIONS` (63, a quarter: the
  error is then about 2) sessions with a realized book return; until then the status says
  "not enough days yet" with how many sessions there are and how many are needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.backtests.config import EQUAL_WEIGHT, BacktestConfig
from vfr_ml_pipelines.lib.backtests.engine import BacktestResult, run_backtest
from vfr_ml_pipelines.lib.backtests.metrics import strategy_metrics
from vfr_ml_pipelines.lib.backtests.panel import build_panel, score_matrix
from vfr_ml_pipelines.lib.backtests.report import BENCHMARK, excess_benchmark, significance_figures
from vfr_ml_pipelines.lib.horizons import horizon_days

MIN_SESSIONS = 63
AFTER_COSTS = "served_after_costs"
BEFORE_COSTS = "served_before_costs"
OK = "ok"
# the figures of the per-horizon summary row, after costs (and the before-cost annual return)
SUMMARY = ("annual_return", "sharpe", "information_ratio", "max_drawdown", "annual_turnover", "annual_costs")


@dataclass(frozen=True)
class LiveBacktest:
    """`table`: strategy x metric (`AFTER_COSTS`, `BEFORE_COSTS`, `BENCHMARK`), None until
    `traded_sessions` reaches `sessions_needed`; `returns`: their daily returns."""

    horizon: str
    served_sessions: int
    traded_sessions: int
    sessions_needed: int
    status: str
    book_rule: str = ""
    config: BacktestConfig | None = None
    table: pd.DataFrame | None = None
    returns: dict[str, pd.Series] | None = None

    @property
    def days_missing(self) -> int:
        return max(0, self.sessions_needed - self.traded_sessions)


@dataclass(frozen=True)
class LiveTrackRecord:
    horizon: str
    days_with_outcomes: int
    sampled_days: int
    rank_ic_mean: float
    rank_ic_t: float
    direction_accuracy: float
    book: LiveBacktest

    def row(self) -> dict:
        """The summary row: the outcome figures, the book's session counts and status, and its
        headline figures after costs (with the before-cost annual return beside them)."""
        book, table = self.book, self.book.table
        figures = {f"{name}_after_costs": math.nan for name in SUMMARY} | {"annual_return_before_costs": math.nan}
        if table is not None:
            figures = {f"{name}_after_costs": float(table.loc[AFTER_COSTS, name]) for name in SUMMARY}
            figures["annual_return_before_costs"] = float(table.loc[BEFORE_COSTS, "annual_return"])
        return {
            "horizon": self.horizon, "days_with_outcomes": self.days_with_outcomes, "sampled_days": self.sampled_days,
            "rank_ic_mean": self.rank_ic_mean, "rank_ic_t": self.rank_ic_t, "direction_accuracy": self.direction_accuracy,
            "served_sessions": book.served_sessions, "traded_sessions": book.traded_sessions,
            "sessions_needed": book.sessions_needed, "status": book.status, **figures,
        }


def _rank_ic(day: pd.DataFrame) -> float:
    if len(day) < 2 or day["expected_return"].nunique() < 2 or day["actual_return"].nunique() < 2:
        return math.nan
    return float(day["expected_return"].rank().corr(day["actual_return"].rank()))


def _t_statistic(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if len(values) < 2 or values.std(ddof=1) == 0:
        return math.nan
    return float(values.mean() / (values.std(ddof=1) / math.sqrt(len(values))))


def _before_costs(result: BacktestResult) -> BacktestResult:
    """The same holdings without costs: the engine's gross returns, no cost paid."""
    return replace(result, name=BEFORE_COSTS, returns=result.gross_returns.rename(BEFORE_COSTS), costs=result.costs * 0.0)


def live_backtest(
    prices: pd.DataFrame, served: pd.DataFrame, horizon: str, config: BacktestConfig, *,
    min_sessions: int = MIN_SESSIONS, seed: int = 0,
) -> LiveBacktest:
    """The served book of `horizon` through the engine (module docstring). `served`: horizon,
    as_of_date, symbol, expected_return; `prices` as `panel.build_panel` reads them; `config`
    the horizon's (`for_horizon`), sized here to the universe."""
    if min_sessions < 2:
        raise ValueError(f"live_backtest: min_sessions must be >= 2 (a volatility needs two returns), got {min_sessions}")
    rows = served[served["horizon"] == horizon]
    if rows.empty:
        return LiveBacktest(horizon, 0, 0, min_sessions, f"not enough days yet: no served {horizon} prediction (needs {min_sessions} sessions)")
    served_days = pd.to_datetime(rows["as_of_date"])
    first = served_days.min()
    window = prices[pd.to_datetime(prices["trade_date"]) >= first]
    traded = int((pd.to_datetime(window["trade_date"]).drop_duplicates() > first).sum())
    if traded < min_sessions:
        status = (f"not enough days yet: {traded} of {min_sessions} sessions with a realized return "
                  f"since the first served {horizon} session {first.date()}")
        return LiveBacktest(horizon, served_days.nunique(), traded, min_sessions, status)
    panel = build_panel(window)
    rule, config = config.book_rule(len(panel.symbols)), config.for_universe(len(panel.symbols))
    scores = score_matrix(panel, rows.rename(columns={"as_of_date": "trade_date"}), "expected_return")
    after = run_backtest(panel, scores, config, name=AFTER_COSTS)
    results = {
        AFTER_COSTS: after,
        BEFORE_COSTS: _before_costs(after),
        BENCHMARK: run_backtest(panel, None, config.with_(strategy=EQUAL_WEIGHT), name=BENCHMARK),
    }
    benchmark = panel.equal_weight_returns()
    excess_over = excess_benchmark(config, benchmark)
    table = pd.DataFrame.from_dict({
        name: {**strategy_metrics(result, excess_over if name != BENCHMARK else benchmark), **significance_figures(result, 1, None, seed)}
        for name, result in results.items()
    }, orient="index").rename_axis("strategy")
    return LiveBacktest(
        horizon, served_days.nunique(), traded, min_sessions, OK, rule, config, table,
        {name: result.returns for name, result in results.items()},
    )


def live_track_record(outcomes: pd.DataFrame, horizon: str, book: LiveBacktest) -> LiveTrackRecord:
    """The outcome figures of `horizon` from `outcomes` (horizon, as_of_date, symbol,
    expected_return, actual_return, direction_correct) beside its served `book`."""
    rows = outcomes[outcomes["horizon"] == horizon]
    days = sorted(rows["as_of_date"].unique())
    sampled = days[:: horizon_days(horizon)]
    by_day = {day: group for day, group in rows[rows["as_of_date"].isin(sampled)].groupby("as_of_date")}
    ics = np.array([_rank_ic(by_day[day]) for day in sampled], dtype=float)
    calls = rows["direction_correct"].dropna().astype(bool)
    return LiveTrackRecord(
        horizon=horizon,
        days_with_outcomes=len(days),
        sampled_days=len(sampled),
        rank_ic_mean=float(np.nanmean(ics)) if np.isfinite(ics).any() else math.nan,
        rank_ic_t=_t_statistic(ics),
        direction_accuracy=float(calls.mean()) if len(calls) else math.nan,
        book=book,
    )


def records_table(records: list[LiveTrackRecord]) -> pd.DataFrame:
    """horizon x figure (`LiveTrackRecord.row`)."""
    return pd.DataFrame([r.row() for r in records]).set_index("horizon")


def book_table(records: list[LiveTrackRecord]) -> pd.DataFrame:
    """Every horizon's full strategy x metric table, one row per `{horizon} {strategy}` (only
    the horizons with enough sessions)."""
    tables = [r.book.table.rename(index=lambda name, h=r.horizon: f"{h} {name}") for r in records if r.book.table is not None]
    return pd.concat(tables).rename_axis("strategy") if tables else pd.DataFrame(index=pd.Index([], name="strategy"))
