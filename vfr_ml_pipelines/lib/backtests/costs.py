"""Trading costs of one rebalance, and the capacity search.

For a trade of `d` (signed change of a symbol's weight, a share of the portfolio value) at
portfolio notional `V`, the order's value is q = |d| V and its costs, as a share of V, are:
* commission: max(commission_bps * 1e-4 * q, min_commission) / V per order (a symbol traded);
* slippage: half_spread_bps * 1e-4 * |d| (half the bid-ask spread is paid on every order);
* impact: impact_coefficient * sigma * sqrt(q / ADV) * |d| (the square-root law: the price
  moves against the order by a fraction that grows with the square root of its participation
  in the average daily dollar volume; sigma is the symbol's daily volatility);
Orders are capped at participation_cap * ADV (the remainder is not filled), and a symbol with
no ADV yet cannot be traded. Shorts pay borrow_bps_per_year * 1e-4 / 252 of their value each
session (`borrow_cost`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vfr_ml_pipelines.lib.backtests.config import ANNUALIZATION, CostConfig

COST_COMPONENTS = ("commission", "spread", "impact", "borrow")
# weight changes below this are rounding, not orders (no commission is charged for them)
MIN_TRADE = 1e-12


def cap_trades(delta: np.ndarray, adv: np.ndarray, notional: float, costs: CostConfig) -> np.ndarray:
    """`delta` with each order limited to participation_cap * ADV (0 where ADV is unknown)."""
    with np.errstate(invalid="ignore"):
        limit = np.where(np.isfinite(adv) & (adv > 0), costs.participation_cap * adv / notional, 0.0)
    return np.clip(delta, -limit, limit)


def trade_costs(delta: np.ndarray, adv: np.ndarray, daily_vol: np.ndarray, notional: float, costs: CostConfig) -> tuple[float, float, float]:
    """(commission, spread, impact) of the weight changes `delta`, each a share of the portfolio."""
    size = np.abs(delta)
    traded = size > MIN_TRADE
    if not traded.any():
        return 0.0, 0.0, 0.0
    size = size[traded]
    value = size * notional
    commission = float(np.maximum(costs.commission_bps * 1e-4 * value, costs.min_commission).sum() / notional)
    spread = float(costs.half_spread_bps * 1e-4 * size.sum())
    if costs.impact_coefficient == 0:
        return commission, spread, 0.0
    sigma = daily_vol[traded]
    sigma = np.where(np.isfinite(sigma), sigma, costs.fallback_daily_vol)
    participation = value / adv[traded]
    impact = float((costs.impact_coefficient * sigma * np.sqrt(participation) * size).sum())
    return commission, spread, impact


def borrow_cost(weights: np.ndarray, costs: CostConfig) -> float:
    """One session's borrow fee of the short positions in `weights`, a share of the portfolio."""
    if costs.borrow_bps_per_year == 0:
        return 0.0
    short = -weights[weights < 0].sum()
    return float(costs.borrow_bps_per_year * 1e-4 / ANNUALIZATION * short)


@dataclass(frozen=True)
class Capacity:
    """`notional`: the portfolio size at which the after-cost excess return falls to half its
    value at `base_notional` (NaN when that base excess is not positive: nothing to halve; inf
    when it never halves up to the largest size searched). `curve`: (notional, excess) pairs
    evaluated, in search order."""

    notional: float
    base_notional: float
    base_excess: float
    curve: tuple[tuple[float, float], ...]


def capacity(
    excess_at: Callable[[float], float],
    base_notional: float,
    *,
    growth: float = 4.0,
    max_notional: float = 1e13,
    bisections: int = 6,
) -> Capacity:
    """Search the notional at which `excess_at(notional)` (annualized after-cost excess return)
    halves: geometric steps of `growth` from `base_notional` until the excess is at most half
    the base one, then `bisections` halvings of the bracket in log space. Costs grow with size
    (impact, participation cap), so excess falls with notional; a non-monotone curve returns
    the first crossing found."""
    curve: list[tuple[float, float]] = []

    def evaluate(notional: float) -> float:
        value = float(excess_at(notional))
        curve.append((notional, value))
        return value

    base = evaluate(base_notional)
    if not np.isfinite(base) or base <= 0:
        return Capacity(float("nan"), base_notional, base, tuple(curve))
    target = base / 2
    low, high = base_notional, base_notional * growth
    while evaluate(high) > target:
        if high >= max_notional:
            return Capacity(float("inf"), base_notional, base, tuple(curve))
        low, high = high, high * growth
    for _ in range(bisections):
        middle = float(np.sqrt(low * high))
        if evaluate(middle) > target:
            low = middle
        else:
            high = middle
    return Capacity(float(np.sqrt(low * high)), base_notional, base, tuple(curve))
