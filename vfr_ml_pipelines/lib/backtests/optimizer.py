"""The constrained portfolio optimizer: minimum variance and maximum Sharpe on a Ledoit-Wolf
covariance, long-only, with position, sector and turnover limits; and its out-of-sample
comparison with the equal-weight top-k book through the same engine and costs.

Library: cvxpy (a modelling layer over maintained solvers: CLARABEL by default, OSQP, SCS) with
scikit-learn's LedoitWolf. cvxpy states the problem as written here (objective and constraints
read like the maths), checks convexity, and swaps solvers without code changes; skfolio and
riskfolio-lib wrap the same solvers behind fixed portfolio recipes, which would make the
turnover limit against the drifted book and the pinned untradable positions harder to express.

Maximum Sharpe uses the standard convex reformulation (Cornuejols & Tutuncu): with y = kappa w,
kappa > 0, minimize y' S y subject to mu' y = 1, sum(y) = kappa, and every linear limit of w
multiplied by kappa (0 <= y <= max_weight kappa, sector sums <= cap kappa, |y - w_prev kappa|_1
<= turnover kappa); then w = y / kappa. It needs one positive expected return; otherwise the
minimum-variance book is returned.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cvxpy as cp
import numpy as np
import pandas as pd
from sklearn.covariance import LedoitWolf

from vfr_ml_pipelines.lib.backtests.config import BacktestConfig
from vfr_ml_pipelines.lib.backtests.costs import MIN_TRADE
from vfr_ml_pipelines.lib.backtests.engine import TopkEqualWeight, run_backtest
from vfr_ml_pipelines.lib.backtests.metrics import strategy_metrics
from vfr_ml_pipelines.lib.backtests.panel import MarketPanel

MIN_VARIANCE = "min_variance"
MAX_SHARPE = "max_sharpe"
OBJECTIVES = (MIN_VARIANCE, MAX_SHARPE)
# sessions of history below which the optimizer does not trade (a covariance needs data)
MIN_HISTORY = 20


@dataclass(frozen=True)
class OptimizerConfig:
    """`candidates`: the best-scored tradable names the optimizer chooses among (plus the names
    held); `lookback`: sessions of returns for the covariance; `turnover_limit`: the largest
    sum |w - w_before| per rebalance once the book is invested (None: no limit)."""

    objective: str = MIN_VARIANCE
    candidates: int = 100
    lookback: int = 120
    max_weight: float = 0.05
    sector_cap: float = 0.30
    turnover_limit: float | None = 0.5
    solver: str = "CLARABEL"

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"OptimizerConfig.objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if not 0 < self.max_weight <= 1 or not 0 < self.sector_cap <= 1:
            raise ValueError("OptimizerConfig: max_weight and sector_cap must be in (0, 1]")


def ledoit_wolf_covariance(returns: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf shrunk covariance of (sessions x names) returns; missing returns count as 0."""
    return LedoitWolf().fit(np.nan_to_num(np.asarray(returns, dtype=float))).covariance_


def optimize_weights(
    covariance: np.ndarray,
    expected: np.ndarray | None = None,
    *,
    objective: str = MIN_VARIANCE,
    long_only: bool = True,
    max_weight: float | None = None,
    sector_codes: np.ndarray | None = None,
    sector_cap: float | None = None,
    previous: np.ndarray | None = None,
    turnover_limit: float | None = None,
    pinned: np.ndarray | None = None,
    solver: str = "CLARABEL",
) -> np.ndarray | None:
    """Fully invested weights (sum 1) minimizing variance or maximizing the Sharpe ratio under
    the limits given; `pinned` names keep their `previous` weight (they cannot trade). None when
    the problem is infeasible or the solver fails."""
    n = covariance.shape[0]
    sharpe = objective == MAX_SHARPE and expected is not None and np.nanmax(expected) > 0
    weights = cp.Variable(n)
    scale = cp.Variable(nonneg=True) if sharpe else 1.0
    sigma = cp.psd_wrap((covariance + covariance.T) / 2)
    constraints = [cp.sum(weights) == scale]
    if sharpe:
        constraints.append(np.nan_to_num(expected, nan=0.0) @ weights == 1)
    if long_only:
        constraints.append(weights >= 0)
    if max_weight is not None:
        constraints.append(weights <= max_weight * scale)
    if sector_codes is not None and sector_cap is not None:
        for code in np.unique(sector_codes[sector_codes >= 0]):
            constraints.append(cp.sum(weights[sector_codes == code]) <= sector_cap * scale)
    if previous is not None and pinned is not None and pinned.any():
        constraints.append(weights[pinned] == previous[pinned] * scale)
    if previous is not None and turnover_limit is not None:
        constraints.append(cp.norm1(weights - previous * scale) <= turnover_limit * scale)
    problem = cp.Problem(cp.Minimize(cp.quad_form(weights, sigma)), constraints)
    try:
        problem.solve(solver=solver)
    except cp.SolverError:
        return None
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or weights.value is None:
        return None
    result = weights.value / (scale.value if sharpe else 1.0)
    if long_only:
        result = np.clip(result, 0.0, None)
    return result / result.sum()


class OptimizedRebalancer:
    """A rebalancer for the engine: at each rebalance, the optimizer over the best candidates
    and the held names, on the covariance of the `lookback` sessions up to the signal's session
    (never after it). The score is the expected return of maximum Sharpe. When the limits
    cannot all hold, the turnover limit is dropped first; when still infeasible the book is kept."""

    long_only = True

    def __init__(self, panel: MarketPanel, config: OptimizerConfig):
        self.panel, self.config = panel, config
        sectors = panel.sectors
        self.sector_codes = None if sectors is None else pd.Categorical(sectors).codes.astype(int)

    def __call__(self, score: np.ndarray, pre: np.ndarray, tradable: np.ndarray, session: int = -1) -> np.ndarray:
        config = self.config
        if session + 1 < MIN_HISTORY:
            return pre
        eligible = np.flatnonzero(np.isfinite(score) & tradable)
        best = eligible[np.argsort(-score[eligible], kind="stable")[: config.candidates]]
        held = np.abs(pre) > MIN_TRADE
        universe = np.union1d(best, np.flatnonzero(held))
        start = max(1, session + 1 - config.lookback)
        window = np.where(self.panel.has_bar[start : session + 1], self.panel.close_return[start : session + 1], np.nan)[:, universe]
        covariance = ledoit_wolf_covariance(window)
        expected = score[universe]
        expected = np.where(np.isfinite(expected), expected, np.nanmin(expected) if np.isfinite(expected).any() else 0.0)
        previous = pre[universe]
        invested = previous.sum() > 0.5
        pinned = held[universe] & ~tradable[universe]
        common = {
            "objective": config.objective,
            "max_weight": config.max_weight,
            "sector_codes": None if self.sector_codes is None else self.sector_codes[universe],
            "sector_cap": config.sector_cap,
            "previous": previous,
            "pinned": pinned,
            "solver": config.solver,
        }
        limit = config.turnover_limit if invested else None
        weights = optimize_weights(covariance, expected, turnover_limit=limit, **common)
        if weights is None and limit is not None:
            weights = optimize_weights(covariance, expected, **common)
        if weights is None:
            return pre
        target = np.zeros_like(pre)
        target[universe] = weights
        return target


def compare_with_topk(panel: MarketPanel, scores: np.ndarray, config: BacktestConfig, optimizer: OptimizerConfig = OptimizerConfig(), *, benchmark: pd.Series | None = None) -> pd.DataFrame:
    """strategy x metric, out of sample and after costs: minimum variance, maximum Sharpe and the
    equal-weight top-k book (config.topk), all rebalanced every config.rebalance_every sessions
    with one tranche (each optimizer rebalance is a solve; tranches would multiply them)."""
    single = config.with_(overlapping_tranches=False)
    benchmark = panel.equal_weight_returns() if benchmark is None else benchmark
    runs = {
        "equal_weight_topk": TopkEqualWeight(config.topk),
        MIN_VARIANCE: OptimizedRebalancer(panel, replace(optimizer, objective=MIN_VARIANCE)),
        MAX_SHARPE: OptimizedRebalancer(panel, replace(optimizer, objective=MAX_SHARPE)),
    }
    rows = {name: strategy_metrics(run_backtest(panel, scores, single, name=name, rebalancer=rule), benchmark) for name, rule in runs.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("strategy")
