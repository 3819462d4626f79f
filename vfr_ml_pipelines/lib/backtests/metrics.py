"""Performance figures of daily return series, with empyrical-reloaded's definitions and Qlib's
excess-return figures.

Conventions (docs/backtests.md): returns are simple daily returns (not log); a year is 252
sessions; the risk-free rate is 0. empyrical compounds: annual_return = (prod(1 + r))^(252/n) - 1,
annual_volatility = std(r, ddof=1) * sqrt(252), sharpe = mean / std(ddof=1) * sqrt(252), sortino
uses the downside deviation below 0, max_drawdown is on the compounded curve, calmar =
annual_return / |max_drawdown|, alpha / beta from the OLS of r on the benchmark (alpha
annualized), tail_ratio = |95th pct| / |5th pct|, stability = R^2 of a line through the
cumulative log returns. Qlib's excess figures (risk_analysis, mode "sum") add returns instead
of compounding them: on the daily excess e = r - benchmark, excess_annual_return = mean(e) *
252, information_ratio = mean(e) / std(e, ddof=1) * sqrt(252), excess_max_drawdown = the
largest fall of cumsum(e) from its running maximum.

Undefined figures are NaN with the reason in `notes` (never a numpy RuntimeWarning): the tail
ratio divides by the 5th percentile of the daily returns, which is 0 for a book that holds
cash or barely trades on at least 5 % of its sessions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import empyrical
import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.backtests.config import ANNUALIZATION

if TYPE_CHECKING:
    from vfr_ml_pipelines.lib.backtests.engine import BacktestResult

RETURN_METRICS = (
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "alpha",
    "beta",
    "tail_ratio",
    "stability",
)
NOTES = "notes"
EXCESS_METRICS = ("excess_annual_return", "information_ratio", "excess_max_drawdown")


def tail_ratio(returns: pd.Series) -> tuple[float, str | None]:
    """empyrical's tail ratio |95th pct| / |5th pct|, or NaN and the reason when it is undefined."""
    values = np.asarray(returns, dtype=float)
    values = values[~np.isnan(values)]
    if not len(values):
        return np.nan, "tail_ratio: no returns"
    if np.percentile(values, 5) == 0:
        return np.nan, "tail_ratio: the 5th percentile of daily returns is 0 (flat on at least 5 % of sessions)"
    return float(empyrical.tail_ratio(values)), None


def return_metrics(returns: pd.Series, benchmark: pd.Series | None = None) -> dict[str, float | str]:
    """empyrical's set on simple daily `returns` (alpha / beta NaN without a benchmark), and
    `notes`: why a figure is NaN ("" when none is)."""
    r = pd.Series(returns, dtype=float).dropna()
    tail, tail_note = tail_ratio(r)
    values = {
        "annual_return": empyrical.annual_return(r, annualization=ANNUALIZATION),
        "annual_volatility": empyrical.annual_volatility(r, annualization=ANNUALIZATION),
        "sharpe": empyrical.sharpe_ratio(r, annualization=ANNUALIZATION),
        "sortino": empyrical.sortino_ratio(r, annualization=ANNUALIZATION),
        "calmar": empyrical.calmar_ratio(r, annualization=ANNUALIZATION),
        "max_drawdown": empyrical.max_drawdown(r),
        "alpha": np.nan,
        "beta": np.nan,
        "tail_ratio": tail,
        "stability": empyrical.stability_of_timeseries(r),
    }
    if benchmark is not None:
        b = pd.Series(benchmark, dtype=float).reindex(r.index)
        values["alpha"], values["beta"] = empyrical.alpha_beta(r, b, annualization=ANNUALIZATION)
    return {**{key: float(value) for key, value in values.items()}, NOTES: tail_note or ""}


def excess_metrics(excess: pd.Series) -> dict[str, float]:
    """Qlib's risk_analysis (mode "sum") of a daily excess-return series."""
    e = pd.Series(excess, dtype=float).dropna()
    if len(e) < 2:
        return dict.fromkeys(EXCESS_METRICS, np.nan)
    std = e.std(ddof=1)
    curve = e.cumsum()
    return {
        "excess_annual_return": float(e.mean() * ANNUALIZATION),
        "information_ratio": float(e.mean() / std * np.sqrt(ANNUALIZATION)) if std > 0 else np.nan,
        "excess_max_drawdown": float((curve - curve.cummax()).min()),
    }


def trading_period(result: BacktestResult) -> slice:
    """From the first session that traded on: the sessions before it hold nothing and would
    dilute every average."""
    traded = np.flatnonzero(result.turnover.to_numpy() > 0)
    start = int(traded[0]) if len(traded) else len(result.turnover)
    return slice(result.returns.index[min(start, len(result.returns) - 1)], None)


def strategy_metrics(result: BacktestResult, benchmark: pd.Series | None = None) -> dict[str, float | str]:
    """Every figure of one backtest over its trading period: `return_metrics` of the after-cost
    returns, `excess_metrics` against `benchmark` (none: excess over 0), the before-cost annual
    return, annual turnover (mean daily traded value / portfolio value * 252) and annual costs
    paid (mean daily share of the portfolio * 252), total and per component."""
    period = trading_period(result)
    returns = result.returns.loc[period]
    bench = None if benchmark is None else pd.Series(benchmark, dtype=float).reindex(returns.index).fillna(0.0)
    excess = returns if bench is None else returns - bench
    costs = result.costs.loc[period]
    values = {
        **return_metrics(returns, bench),
        **excess_metrics(excess),
        "gross_annual_return": float(empyrical.annual_return(result.gross_returns.loc[period], annualization=ANNUALIZATION)),
        "annual_turnover": float(result.turnover.loc[period].mean() * ANNUALIZATION),
        "annual_costs": float(costs.sum(axis=1).mean() * ANNUALIZATION),
        "n_sessions": float(len(returns)),
    }
    for component in costs.columns:
        values[f"annual_{component}"] = float(costs[component].mean() * ANNUALIZATION)
    values[NOTES] = values.pop(NOTES)  # last: the table's figures first, then why any is NaN
    return values
