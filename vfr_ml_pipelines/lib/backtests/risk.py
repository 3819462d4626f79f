"""The risk report of backtested portfolios (the served model's and the equal-weight benchmark):
VaR / CVaR, the VaR backtest, stress scenarios on the last book, the drawdown forecast, and
optionally the optimizer comparison. Assembles `var`, `stress` and `optimizer`; see each for
the definitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.backtests import plots
from vfr_ml_pipelines.lib.backtests.engine import BacktestResult
from vfr_ml_pipelines.lib.backtests.metrics import trading_period
from vfr_ml_pipelines.lib.backtests.panel import MarketPanel
from vfr_ml_pipelines.lib.backtests.stress import drawdown_distribution, stress_table
from vfr_ml_pipelines.lib.backtests.var import risk_table, var_backtest, var_backtest_table

# the VaR backtest shown in the strategy x metric table and plotted
HEADLINE_LEVEL, HEADLINE_METHOD = 0.99, "historical"


@dataclass(frozen=True)
class RiskReport:
    var: pd.DataFrame
    var_backtests: pd.DataFrame
    stress: dict[str, pd.DataFrame]
    drawdowns: pd.DataFrame
    returns: dict[str, pd.Series]
    window: int
    optimizer: pd.DataFrame | None = None

    def table(self) -> pd.DataFrame:
        """strategy x metric: VaR / CVaR, the headline VaR backtest, the worst stress loss and
        the drawdown forecast."""
        headline = self.var_backtests[(self.var_backtests["level"] == HEADLINE_LEVEL) & (self.var_backtests["method"] == HEADLINE_METHOD)]
        headline = headline.set_index("strategy")[["exception_rate", "rate_ratio", "kupiec_p", "independence_p"]]
        worst = pd.Series({name: table["portfolio_return"].min() for name, table in self.stress.items()}, name="worst_stress_return")
        return self.var.join(headline.add_prefix("var99_")).join(worst).join(self.drawdowns)

    def plots(self) -> dict[str, bytes]:
        images = {}
        for name, returns in self.returns.items():
            backtest = var_backtest(returns, HEADLINE_LEVEL, HEADLINE_METHOD, self.window)
            images[f"var_exceptions_{name}.png"] = plots.var_exceptions_png(
                backtest.returns, backtest.forecast, title=f"{name}: 99 % historical VaR forecasts and exceptions"
            )
        return images


def run_risk_report(
    panel: MarketPanel,
    results: Mapping[str, BacktestResult],
    *,
    index_returns: pd.Series | None = None,
    window: int = 250,
    seed: int = 0,
    optimizer: pd.DataFrame | None = None,
) -> RiskReport:
    """Risk of each backtest's after-cost returns over its trading period; stress scenarios on
    its last book against `index_returns` (default: the equal-weight universe)."""
    index_returns = panel.equal_weight_returns() if index_returns is None else index_returns
    returns = {name: result.returns.loc[trading_period(result)] for name, result in results.items()}
    backtests = pd.concat(
        [var_backtest_table(series, window=window).assign(strategy=name) for name, series in returns.items()], ignore_index=True
    )
    stress = {
        name: stress_table(panel, np.nan_to_num(result.weights[-1]), returns[name], index_returns)
        for name, result in results.items()
    }
    drawdowns = pd.DataFrame.from_dict(
        {name: drawdown_distribution(series.to_numpy(), seed=seed).row() for name, series in returns.items()}, orient="index"
    )
    return RiskReport(risk_table(returns), backtests, stress, drawdowns, returns, window, optimizer)
