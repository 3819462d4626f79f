"""Backtest and risk plots as PNG bytes: equity with drawdown, quantile returns, IC decay,
turnover and costs, VaR exceptions.

Built like lib/models/plots.py (matplotlib's object API on the Agg canvas: no pyplot state, no
window, the process backend untouched; no timestamp in the PNG metadata, so equal inputs give
equal bytes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vfr_ml_pipelines.lib.figures import new_figure, png_bytes

if TYPE_CHECKING:
    from vfr_ml_pipelines.lib.backtests.engine import BacktestResult




def equity_drawdown_png(returns: Mapping[str, pd.Series], *, title: str = "Equity after costs") -> bytes:
    """Compounded equity curves (top) and their drawdowns (bottom), one line per strategy."""
    figure = new_figure(9.0, 6.0)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    for name, series in returns.items():
        equity = (1.0 + series.fillna(0.0)).cumprod()
        top.plot(equity.index, equity.to_numpy(), label=name, linewidth=1.2)
        bottom.plot(equity.index, (equity / equity.cummax() - 1.0).to_numpy(), linewidth=1.0)
    top.set_title(title)
    top.set_ylabel("growth of 1")
    top.legend(loc="upper left", fontsize=8)
    bottom.set_ylabel("drawdown")
    return png_bytes(figure)


def quantile_returns_png(quantiles: Mapping[str, pd.Series], *, title: str = "Mean next-session return by score quantile") -> bytes:
    figure = new_figure()
    axes = figure.subplots()
    names = list(quantiles)
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        series = quantiles[name]
        positions = np.arange(len(series)) + i * width
        axes.bar(positions, series.to_numpy() * 1e4, width=width, label=name)
        axes.set_xticks(np.arange(len(series)) + 0.4 - width / 2, [str(q) for q in series.index])
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_xlabel("quantile (1 = lowest score)")
    axes.set_ylabel("bp per session")
    axes.set_title(title)
    axes.legend(fontsize=8)
    return png_bytes(figure)


def ic_decay_png(decay: Mapping[str, pd.Series], *, title: str = "Rank IC decay") -> bytes:
    figure = new_figure()
    axes = figure.subplots()
    for name, series in decay.items():
        axes.plot(series.index, series.to_numpy(), marker="o", markersize=3, label=name)
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_xlabel("sessions ahead")
    axes.set_ylabel("mean rank IC")
    axes.set_title(title)
    axes.legend(fontsize=8)
    return png_bytes(figure)


def turnover_costs_png(results: Mapping[str, BacktestResult], *, title: str = "Turnover and costs (annualized)") -> bytes:
    figure = new_figure(9.0, 4.5)
    left, right = figure.subplots(1, 2)
    names = list(results)
    turnover = [results[n].turnover.mean() * 252 for n in names]
    left.barh(names, turnover)
    left.set_xlabel("turnover per year (x portfolio)")
    bottom = np.zeros(len(names))
    for component in ("commission", "spread", "impact", "borrow"):
        values = np.array([results[n].costs[component].mean() * 252 * 1e4 for n in names])
        right.barh(names, values, left=bottom, label=component)
        bottom += values
    right.set_xlabel("costs per year (bp of the portfolio)")
    right.legend(fontsize=8)
    figure.suptitle(title)
    return png_bytes(figure)


def var_exceptions_png(returns: pd.Series, var_forecast: pd.Series, *, title: str) -> bytes:
    """Daily returns against the negative VaR forecast; exceptions (loss > VaR) in red."""
    figure = new_figure(9.0, 4.5)
    axes = figure.subplots()
    axes.plot(returns.index, returns.to_numpy(), linewidth=0.6, color="#555555", label="return")
    axes.plot(var_forecast.index, -var_forecast.to_numpy(), linewidth=1.0, color="#1f77b4", label="-VaR")
    hits = returns < -var_forecast
    axes.scatter(returns.index[hits], returns[hits].to_numpy(), color="red", s=10, label="exception", zorder=3)
    axes.set_title(title)
    axes.legend(fontsize=8)
    return png_bytes(figure)
