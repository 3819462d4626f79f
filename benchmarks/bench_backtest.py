"""Benchmark: one backtest strategy (TopkDropout top 50 drop 5, all costs) vs. a plain numpy
equal-weight top-50 rebalancing on the same panel.

    .venv/bin/python benchmarks/bench_backtest.py [--symbols 500] [--days 2520] [--repeats 3]

Builds a random panel (random-walk OHLCV with volume, and random scores), times (best of
--repeats) `build_panel` (long frame -> arrays, done once per report) and `run_backtest` at the
next session's open with every cost (commission with minimum, spread, square-root impact with
the participation cap), and, as the reference in the same process, plain numpy: each session the
50 best-scored names at 1/50 with the next session's close-to-close return, one vectorized
pass (argpartition + take_along_axis, no costs, no drift, no tradability: the floor of what any
engine could cost), and the same as a per-session numpy loop (the engine's accounting shape,
without its rules and costs). Then the time of the same strategy at 50, 100, 250, 500 symbols, and with
five overlapping weekly tranches. Prints one figure per line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vfr_ml_pipelines.lib.backtests.config import BacktestConfig  # noqa: E402
from vfr_ml_pipelines.lib.backtests.engine import run_backtest  # noqa: E402
from vfr_ml_pipelines.lib.backtests.panel import build_panel  # noqa: E402

TARGET_SECONDS = 5.0
TOPK, N_DROP = 50, 5


def build_prices(n_symbols: int, n_days: int, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2015-01-02", periods=n_days)
    sigma = rng.uniform(0.01, 0.03, (1, n_symbols))
    close = 30.0 * np.exp(np.cumsum(rng.normal(0.0002, 1.0, (n_days, n_symbols)) * sigma, axis=0))
    previous = np.vstack([close[:1], close[:-1]])
    open_ = previous * np.exp(rng.normal(0, 0.3, close.shape) * sigma)
    volume = np.exp(rng.normal(13, 1, (1, n_symbols)) + rng.normal(0, 0.4, close.shape))
    grid = pd.MultiIndex.from_product([days, [f"S{i:04d}" for i in range(n_symbols)]], names=["trade_date", "symbol"])
    return pd.DataFrame({"open": open_.ravel(), "close": close.ravel(), "adj_close": close.ravel(), "volume": volume.ravel()}, index=grid).reset_index()


def numpy_reference(close_return: np.ndarray, scores: np.ndarray, topk: int) -> np.ndarray:
    best = np.argpartition(-scores[:-1], topk, axis=1)[:, :topk]
    return np.take_along_axis(close_return[1:], best, axis=1).mean(axis=1)


def numpy_loop_reference(close_return: np.ndarray, scores: np.ndarray, topk: int) -> np.ndarray:
    """The same rebalancing as a per-session loop with weights drifting between sessions (the
    accounting shape of the engine, without selection rules, costs or tradability)."""
    n_dates, n_symbols = close_return.shape
    held = np.zeros(n_symbols)
    out = np.zeros(n_dates)
    for t in range(1, n_dates):
        growth = 1.0 + held @ close_return[t]
        out[t] = growth - 1.0
        target = np.zeros(n_symbols)
        target[np.argpartition(-scores[t], topk)[:topk]] = 1.0 / topk
        held = target
    return out


def best_of(repeats: int, function):
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = BacktestConfig(topk=TOPK, n_drop=N_DROP)

    prices = build_prices(args.symbols, args.days)
    panel_seconds, panel = best_of(args.repeats, lambda: build_panel(prices))
    scores = np.random.default_rng(3).standard_normal(panel.shape)
    engine_seconds, result = best_of(args.repeats, lambda: run_backtest(panel, scores, config))
    reference_seconds, _ = best_of(args.repeats, lambda: numpy_reference(panel.close_return, scores, TOPK))
    loop_seconds, _ = best_of(args.repeats, lambda: numpy_loop_reference(panel.close_return, scores, TOPK))
    print(f"panel: {args.symbols} symbols x {args.days} sessions, top {TOPK} drop {N_DROP}, all costs, execution at the open")
    print(f"build_panel (long frame -> arrays): {panel_seconds:.3f} s")
    print(f"run_backtest (one strategy): {engine_seconds:.3f} s (target < {TARGET_SECONDS:.0f} s)")
    print(f"plain numpy equal-weight top-{TOPK} reference: {reference_seconds:.4f} s")
    print(f"ratio engine / reference: {engine_seconds / reference_seconds:.1f}x")
    print(f"plain numpy per-session loop reference: {loop_seconds:.4f} s (ratio {engine_seconds / loop_seconds:.1f}x)")
    print(f"annual turnover {result.turnover.mean() * 252:.1f}x, annual costs {result.costs.sum(axis=1).mean() * 252:.2%}")
    weekly = config.for_horizon("1w")
    weekly_seconds, _ = best_of(1, lambda: run_backtest(panel, scores, weekly))
    print(f"run_backtest, 1w with 5 overlapping tranches: {weekly_seconds:.3f} s")
    for n_symbols in (50, 100, 250, 500):
        if n_symbols > args.symbols:
            break
        small = build_panel(build_prices(n_symbols, args.days))
        small_scores = np.random.default_rng(3).standard_normal(small.shape)
        seconds, _ = best_of(args.repeats, lambda: run_backtest(small, small_scores, config.with_(topk=min(TOPK, n_symbols // 2))))
        print(f"scaling: {n_symbols} symbols: {seconds:.3f} s")


if __name__ == "__main__":
    main()
