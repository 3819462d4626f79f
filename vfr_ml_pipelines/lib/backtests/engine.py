"""The backtest engine: rebalancers choose target weights, `simulate` trades them on the next
session and accounts returns, costs and turnover on the (dates x symbols) panel.

Timing (no look-ahead by construction): the score row of session s is read only when trading
on session t = s + 1, at t's open (default: the gap return close s -> open t is earned by the
holdings of s, the intraday return open t -> close t by the new holdings) or at t's close (the
whole close-to-close return of t is earned by the holdings of s). A symbol without a bar on t
cannot be traded on t: its weight stays where the market moved it, and buys skip it; after
its last bar in the data (delisting) a held position is paid out at its last close.

Weights are shares of the portfolio value; they drift with prices between rebalances (positions
are held in shares, as Qlib's exchange does), costs are paid from cash when the orders execute,
and the borrow fee of shorts at the close. Each session is one pass of vector operations over
the symbols, so the time grows linearly with sessions x symbols.

Rebalancers (called with the signal row, the pre-trade weights, the tradable mask and the row
of the signal session, for those that read the history up to it, like the optimizer):
* `TopkDropout`: Qlib's TopkDropoutStrategy (method_sell="bottom", method_buy="top"): rank the
  held names and the best non-held candidates together; sell the held names among the `n_drop`
  worst of that list, buy as many of the best non-held as brings the book back to `topk`;
  the cash is split equally among the buys and kept names are not resized. Two differences,
  both to avoid wasting orders: buy candidates are only tradable names, and the number of buys
  counts only the sells that could execute.
* `LongShort`: dollar-neutral, long the top and short the bottom `quantile` of the tradable
  names with a score, `leg` of the capital equally spread in each leg.
* `TopkEqualWeight`: the `topk` best names at 1 / topk, rebuilt at each rebalance (the plain
  reference the optimizer is compared with).
* `EqualWeight`: every tradable name at 1 / n (the universe benchmark run as a strategy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.backtests.config import EQUAL_WEIGHT, LONG_SHORT, TOPK_DROPOUT, BacktestConfig
from vfr_ml_pipelines.lib.backtests.costs import COST_COMPONENTS, MIN_TRADE, borrow_cost, cap_trades, trade_costs
from vfr_ml_pipelines.lib.backtests.panel import MarketPanel, score_matrix

# (signal row, pre-trade weights, tradable mask, row of the signal session) -> target weights
Rebalancer = Callable[[np.ndarray | None, np.ndarray, np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class TopkDropout:
    topk: int
    n_drop: int
    long_only: bool = True

    def __call__(self, score: np.ndarray, pre: np.ndarray, tradable: np.ndarray, session: int = -1) -> np.ndarray:
        finite = np.isfinite(score)
        key = np.where(finite, score, -np.inf)
        held = np.abs(pre) > MIN_TRADE
        last = np.flatnonzero(held)
        last = last[np.argsort(-key[last], kind="stable")]
        candidates = np.flatnonzero(~held & finite & tradable)
        wanted = self.n_drop + self.topk - len(last)
        today = candidates[np.argsort(-key[candidates], kind="stable")[: max(wanted, 0)]]
        combined = np.concatenate([last, today])
        combined = combined[np.argsort(-key[combined], kind="stable")]
        worst = np.zeros(len(pre), dtype=bool)
        if self.n_drop:
            worst[combined[-self.n_drop :]] = True
        sell = last[worst[last] & tradable[last]]
        buy = today[: max(len(sell) + self.topk - len(last), 0)]
        target = pre.copy()
        target[sell] = 0.0
        cash = 1.0 - target.sum()
        if len(buy) and cash > 0:
            target[buy] = cash / len(buy)
        return target


@dataclass(frozen=True)
class LongShort:
    quantile: float
    leg: float
    long_only: bool = False

    def __call__(self, score: np.ndarray, pre: np.ndarray, tradable: np.ndarray, session: int = -1) -> np.ndarray:
        eligible = np.flatnonzero(np.isfinite(score) & tradable)
        per_leg = int(len(eligible) * self.quantile)
        if per_leg < 1:
            return pre
        order = eligible[np.argsort(score[eligible], kind="stable")]
        target = np.zeros_like(pre)
        target[order[-per_leg:]] = self.leg / per_leg
        target[order[:per_leg]] = -self.leg / per_leg
        return target


@dataclass(frozen=True)
class TopkEqualWeight:
    """The `topk` best-scored tradable names at 1 / topk each, rebuilt at every rebalance."""

    topk: int
    long_only: bool = True

    def __call__(self, score: np.ndarray, pre: np.ndarray, tradable: np.ndarray, session: int = -1) -> np.ndarray:
        eligible = np.flatnonzero(np.isfinite(score) & tradable)
        if not len(eligible):
            return pre
        best = eligible[np.argsort(-score[eligible], kind="stable")[: self.topk]]
        target = np.zeros_like(pre)
        target[best] = 1.0 / len(best)
        return target


@dataclass(frozen=True)
class EqualWeight:
    long_only: bool = True

    def __call__(self, score: np.ndarray | None, pre: np.ndarray, tradable: np.ndarray, session: int = -1) -> np.ndarray:
        count = int(tradable.sum())
        return tradable / count if count else pre


def rebalancer_for(config: BacktestConfig) -> Rebalancer:
    if config.strategy == TOPK_DROPOUT:
        return TopkDropout(config.topk, config.n_drop)
    if config.strategy == LONG_SHORT:
        return LongShort(config.quantile, config.long_short_leg)
    return EqualWeight()


@dataclass(frozen=True)
class BacktestResult:
    """One strategy's daily record. `returns` are after all costs, `gross_returns` the same
    holdings without costs; `costs` has the share of the portfolio paid each session per
    component (commission, spread, impact, borrow); `turnover` is the traded value over the
    portfolio value (buys + sells); `weights` the close weights (dates x symbols)."""

    name: str
    returns: pd.Series
    gross_returns: pd.Series
    costs: pd.DataFrame
    turnover: pd.Series
    holdings: pd.Series
    weights: np.ndarray
    config: BacktestConfig
    notional: float

    def table(self, benchmark: pd.Series | None = None) -> pd.DataFrame:
        """A one-row strategy x metric table (see `metrics.strategy_metrics`)."""
        from vfr_ml_pipelines.lib.backtests.metrics import strategy_metrics

        return pd.DataFrame([strategy_metrics(self, benchmark)], index=pd.Index([self.name], name="strategy"))


def _simulate(panel: MarketPanel, scores: np.ndarray | None, rebalancer: Rebalancer, config: BacktestConfig, offset: int, notional: float) -> dict[str, np.ndarray]:
    n_dates, n_symbols = panel.shape
    costs = config.costs
    at_open = config.execution_price == "open"
    before_trade = panel.gap_return if at_open else panel.close_return
    long_only = getattr(rebalancer, "long_only", False)
    signal = panel.has_bar.any(axis=1) if scores is None else np.isfinite(scores).any(axis=1)
    held = np.zeros(n_symbols)
    net, gross, turnover, holdings = (np.zeros(n_dates) for _ in range(4))
    parts = np.zeros((n_dates, len(COST_COMPONENTS)))
    weights = np.zeros((n_dates, n_symbols))
    for t in range(1, n_dates):
        source = t - 1
        growth = 1.0 + held @ before_trade[t]
        post = held * (1.0 + before_trade[t]) / growth
        post[panel.delisted[t]] = 0.0  # paid out at the last close: the value stays, as cash
        paid = 0.0
        if (source - offset) % config.rebalance_every == 0 and signal[source]:
            tradable = panel.has_bar[t]
            pre = post
            target = rebalancer(None if scores is None else scores[source], pre, tradable, source)
            delta = cap_trades(np.where(tradable, target - pre, 0.0), panel.adv[t], notional, costs)
            if long_only:
                delta = _no_leverage(pre, delta)
            post = pre + delta
            parts[t, :3] = trade_costs(delta, panel.adv[t], panel.daily_vol[t], notional, costs)
            paid = parts[t, :3].sum()
            turnover[t] = np.abs(delta).sum()
        if at_open:
            intraday = post @ panel.intraday_return[t]
            after = post * (1.0 + panel.intraday_return[t])
        else:
            intraday, after = 0.0, post
        gross[t] = growth * (1.0 + intraday) - 1.0
        parts[t, 3] = borrow_cost(after, costs)
        value = 1.0 - paid + intraday - parts[t, 3]
        net[t] = growth * value - 1.0
        held = after / value
        weights[t] = held
        holdings[t] = np.count_nonzero(np.abs(held) > MIN_TRADE)
    return {"net": net, "gross": gross, "parts": parts, "turnover": turnover, "holdings": holdings, "weights": weights}


def _no_leverage(pre: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Scale the buys down when capped sells did not free the cash they were to pay with."""
    excess = (pre + delta).sum() - 1.0
    if excess <= 1e-12:
        return delta
    buys = delta > 0
    bought = delta[buys].sum()
    if bought <= 0:
        return delta
    scaled = delta.copy()
    scaled[buys] *= max(0.0, 1.0 - excess / bought)
    return scaled


def run_backtest(
    panel: MarketPanel,
    scores: np.ndarray | pd.DataFrame | None,
    config: BacktestConfig = BacktestConfig(),
    *,
    name: str = "strategy",
    notional: float | None = None,
    rebalancer: Rebalancer | None = None,
    score_column: str = "score",
) -> BacktestResult:
    """Backtest `scores` (a (dates x symbols) array on the panel's axes, or a long frame with
    trade_date, symbol, `score_column`; None for the equal-weight strategy) with `config`.
    With rebalance_every = k > 1 and overlapping tranches, k tranches start on consecutive
    sessions, each trading notional / k, and their daily figures are averaged."""
    notional = float(config.notional if notional is None else notional)
    if isinstance(scores, pd.DataFrame):
        scores = score_matrix(panel, scores, score_column)
    if scores is not None and scores.shape != panel.shape:
        raise ValueError(f"run_backtest: scores have shape {scores.shape}, the panel {panel.shape}")
    if scores is None and config.strategy != EQUAL_WEIGHT and rebalancer is None:
        raise ValueError(f"run_backtest: strategy {config.strategy!r} needs scores")
    rebalancer = rebalancer or rebalancer_for(config)
    k = config.rebalance_every
    offsets = range(k) if k > 1 and config.overlapping_tranches else range(1)
    tranche_notional = notional / len(offsets)
    runs = [_simulate(panel, scores, rebalancer, config, offset, tranche_notional) for offset in offsets]
    mean = {key: np.mean([run[key] for run in runs], axis=0) for key in runs[0]}
    index = panel.dates
    return BacktestResult(
        name=name,
        returns=pd.Series(mean["net"], index=index, name=name),
        gross_returns=pd.Series(mean["gross"], index=index, name=name),
        costs=pd.DataFrame(mean["parts"], index=index, columns=list(COST_COMPONENTS)),
        turnover=pd.Series(mean["turnover"], index=index, name="turnover"),
        holdings=pd.Series(mean["holdings"], index=index, name="holdings"),
        weights=mean["weights"],
        config=config,
        notional=notional,
    )
