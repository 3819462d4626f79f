"""Benchmark: the time the constrained optimizer comparison (`compare_with_topk`: minimum
variance and maximum Sharpe, a cvxpy solve per rebalance, and the equal-weight top-k book) adds
to `risk_report` per horizon, against the horizon's existing backtest on the same panel.

    .venv/bin/python benchmarks/bench_optimizer.py [--symbols 50 500] [--days 295] [--candidates 5]

For each universe size: a random panel (bench_backtest's random walk with volume, 11 sectors,
random scores) of --days sessions (295: the default run's test period, 2025-10 .. 2026-12), the
book sized as the pipeline sizes it (`BacktestConfig().for_horizon(h).for_universe(n)`), and per
horizon (rebalancing every 1 / 5 / 21 sessions) the CPU time (and wall time) of one run of
`compare_with_topk` against, in the same process: `run_backtest` of one TopkDropout strategy
(with the horizon's overlapping tranches, as `backtest_{h}` runs each candidate) and
`run_report` of --candidates candidates + the oracle + equal weight (the whole core call of
`backtest_{h}`). Prints one line per horizon with both ratios.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_backtest import build_prices  # noqa: E402

from vfr_ml_pipelines.lib.backtests.config import BacktestConfig  # noqa: E402
from vfr_ml_pipelines.lib.backtests.engine import run_backtest  # noqa: E402
from vfr_ml_pipelines.lib.backtests.optimizer import compare_with_topk  # noqa: E402
from vfr_ml_pipelines.lib.backtests.panel import build_panel  # noqa: E402
from vfr_ml_pipelines.lib.backtests.report import run_report  # noqa: E402
from vfr_ml_pipelines.lib.horizons import HORIZONS  # noqa: E402

N_SECTORS = 11


def timed(function) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): on a shared machine the CPU time is the
    figure that does not depend on what else runs."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_universe(n_symbols: int, n_days: int, n_candidates: int) -> None:
    prices = build_prices(n_symbols, n_days)
    symbols = sorted(prices["symbol"].unique())
    sectors = pd.Series([f"sector_{i % N_SECTORS}" for i in range(n_symbols)], index=symbols)
    panel = build_panel(prices, sectors=sectors)
    rng = np.random.default_rng(5)
    # expected-return-like scores (daily returns of a few bp), one set per candidate and the oracle
    candidates = {f"candidate_{i}": 0.002 * rng.standard_normal(panel.shape) for i in range(n_candidates)}
    oracle = 0.002 * rng.standard_normal(panel.shape)
    scores = candidates["candidate_0"]
    for h in HORIZONS:
        config = BacktestConfig().for_horizon(h).for_universe(n_symbols)
        strategy = timed(lambda config=config: run_backtest(panel, scores, config))
        report = timed(lambda config=config: run_report(panel, candidates, config, oracle=oracle))
        optimizer = timed(lambda config=config: compare_with_topk(panel, scores, config))
        rebalances = len(range(0, n_days - 1, config.rebalance_every))
        print(
            f"{n_symbols} symbols, {h} (every {config.rebalance_every}, top {config.topk}, ~{rebalances} rebalances), "
            f"CPU s (wall s): compare_with_topk {optimizer[1]:.2f} ({optimizer[0]:.2f}); one strategy's run_backtest "
            f"{strategy[1]:.3f} ({strategy[0]:.3f}), ratio {optimizer[1] / strategy[1]:.0f}x; run_report of {n_candidates} "
            f"candidates + oracle {report[1]:.2f} ({report[0]:.2f}), ratio {optimizer[1] / report[1]:.1f}x",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--days", type=int, default=295)
    parser.add_argument("--candidates", type=int, default=5)
    args = parser.parse_args()
    print(f"panel: {args.days} sessions; optimizer defaults (100 candidates, 120-session Ledoit-Wolf, 5 % / 30 % / turnover 0.5)")
    for n_symbols in args.symbols:
        bench_universe(n_symbols, args.days, args.candidates)


if __name__ == "__main__":
    main()
