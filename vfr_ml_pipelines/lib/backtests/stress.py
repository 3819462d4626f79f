"""Stress scenarios and the drawdown forecast of a portfolio.

* Historical replay: the `count` worst non-overlapping windows of `length` sessions of the index
  (compounded), with the portfolio's current weights held through each window: its return is
  sum_i w_i (prod(1 + r_i) - 1) (cash earns 0).
* Factor shocks, from each symbol's OLS betas to the market (the index) and to its sector's
  factor (the sector's equal-weight return minus the market): a market shock moves every name
  by beta_market x shock; a sector shock moves the sector's names by beta_sector x shock; the
  volatility doubling scenario is the one-session normal 99 % VaR with sigma doubled.
* Drawdown forecast: the distribution of the maximum drawdown over block-bootstrapped paths of
  the strategy's own returns, against the realized one (its percentile says whether the realized
  path was unusually lucky or unlucky).
Returns in the tables are simple returns of the portfolio (negative = loss).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from vfr_ml_pipelines.lib.backtests.panel import MarketPanel
from vfr_ml_pipelines.lib.backtests.significance import block_bootstrap_indices


def worst_windows(index_returns: pd.Series, length: int, count: int = 3) -> list[tuple[int, int, float]]:
    """(first row, last row, compounded index return) of the worst non-overlapping windows."""
    log = np.log1p(pd.Series(index_returns, dtype=float).fillna(0.0).to_numpy())
    if len(log) < length:
        return []
    sums = np.convolve(log, np.ones(length), mode="valid")  # sums[s] covers rows s .. s + length - 1
    taken = np.zeros(len(log), dtype=bool)
    windows = []
    for start in np.argsort(sums, kind="stable"):
        if len(windows) == count:
            break
        if not taken[start : start + length].any():
            taken[start : start + length] = True
            windows.append((int(start), int(start + length - 1), float(np.expm1(sums[start]))))
    return windows


def replay_windows(panel: MarketPanel, weights: np.ndarray, index_returns: pd.Series, *, lengths=(1, 5, 20), count: int = 3) -> pd.DataFrame:
    rows = []
    for length in lengths:
        for rank, (first, last, index_return) in enumerate(worst_windows(index_returns, length, count), start=1):
            assets = np.prod(1.0 + panel.close_return[first : last + 1], axis=0) - 1.0
            rows.append(
                {
                    "scenario": f"worst {length}-session window #{rank}",
                    "start": panel.dates[first],
                    "end": panel.dates[last],
                    "index_return": index_return,
                    "portfolio_return": float(weights @ assets),
                }
            )
    return pd.DataFrame(rows)


def factor_betas(panel: MarketPanel, index_returns: pd.Series, sectors: pd.Series | None = None) -> pd.DataFrame:
    """symbol x (market_beta, sector_beta, sector) from OLS on each symbol's sessions with a bar."""
    market = pd.Series(index_returns, dtype=float).reindex(panel.dates).fillna(0.0).to_numpy()
    returns = np.where(panel.has_bar, panel.close_return, np.nan)
    returns[0] = np.nan
    sector_of = (sectors if sectors is not None else panel.sectors)
    sector_of = None if sector_of is None else pd.Series(sector_of).reindex(panel.symbols)
    sector_factor = np.zeros(panel.shape)
    if sector_of is not None:
        for sector in sector_of.dropna().unique():
            members = (sector_of == sector).to_numpy()
            # the first session has no return: its sector mean is empty, left NaN on purpose
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                sector_factor[:, members] = (np.nanmean(returns[:, members], axis=1) - market)[:, None]
    rows = []
    for i in range(panel.shape[1]):
        valid = np.isfinite(returns[:, i]) & np.isfinite(sector_factor[:, i])
        columns = [np.ones(valid.sum()), market[valid]] + ([sector_factor[valid, i]] if sector_of is not None else [])
        design = np.column_stack(columns)
        if valid.sum() <= design.shape[1]:
            rows.append((np.nan, np.nan))
            continue
        coefficients = np.linalg.lstsq(design, returns[valid, i], rcond=None)[0]
        rows.append((coefficients[1], coefficients[2] if sector_of is not None else np.nan))
    betas = pd.DataFrame(rows, index=panel.symbols, columns=["market_beta", "sector_beta"])
    betas["sector"] = None if sector_of is None else sector_of
    return betas


def factor_shocks(weights: np.ndarray, betas: pd.DataFrame, portfolio_returns: pd.Series, *, market_shock: float = -0.10, sector_shock: float = -0.10) -> pd.DataFrame:
    rows = [{"scenario": f"market {market_shock:+.0%}", "portfolio_return": float(np.nansum(weights * betas["market_beta"].to_numpy()) * market_shock)}]
    for sector in sorted(betas["sector"].dropna().unique()):
        members = (betas["sector"] == sector).to_numpy()
        exposure = np.nansum(weights[members] * betas["sector_beta"].to_numpy()[members])
        rows.append({"scenario": f"sector {sector} {sector_shock:+.0%}", "portfolio_return": float(exposure * sector_shock)})
    r = pd.Series(portfolio_returns, dtype=float).dropna()
    z = stats.norm.ppf(0.01)
    rows.append({"scenario": "volatility x2 (1-session 99 % VaR)", "portfolio_return": float(r.mean() + 2 * r.std(ddof=1) * z)})
    return pd.DataFrame(rows)


def stress_table(panel: MarketPanel, weights: np.ndarray, portfolio_returns: pd.Series, index_returns: pd.Series, *, sectors: pd.Series | None = None, lengths=(1, 5, 20), count: int = 3) -> pd.DataFrame:
    """Every scenario with the portfolio's return under it (historical replays, then shocks)."""
    replay = replay_windows(panel, weights, index_returns, lengths=lengths, count=count)
    shocks = factor_shocks(weights, factor_betas(panel, index_returns, sectors), portfolio_returns)
    return pd.concat([replay, shocks], ignore_index=True)


def max_drawdowns(paths: np.ndarray) -> np.ndarray:
    """Maximum drawdown (negative) of each row of simple returns, from a starting value of 1."""
    equity = np.cumprod(1.0 + paths, axis=-1)
    peak = np.maximum(np.maximum.accumulate(equity, axis=-1), 1.0)
    return (equity / peak - 1.0).min(axis=-1)


@dataclass(frozen=True)
class DrawdownDistribution:
    realized: float
    quantiles: dict[float, float]
    realized_percentile: float

    def row(self) -> dict[str, float]:
        return {"realized_max_drawdown": self.realized, **{f"bootstrap_mdd_q{int(q * 100)}": v for q, v in self.quantiles.items()}, "realized_percentile": self.realized_percentile}


def drawdown_distribution(returns, *, n_samples: int = 1000, block: int = 10, seed: int = 0, quantiles=(0.05, 0.5, 0.95)) -> DrawdownDistribution:
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    samples = max_drawdowns(r[block_bootstrap_indices(len(r), n_samples, block=block, seed=seed)])
    realized = float(max_drawdowns(r))
    return DrawdownDistribution(
        realized,
        {q: float(np.quantile(samples, q)) for q in quantiles},
        float((samples <= realized).mean()),
    )
