"""The whole feature run on the synthetic market, 500 symbols x 10 years, step by step as
the pipeline runs it.

    .venv/bin/python benchmarks/bench_feature_run.py [--symbols 500]

The market (prices, quarterly reports, ~0.5 M headlines) is simulated first, in a process
of its own, and written to Parquet (not timed); those files stand in for the warehouse
tables (no PostgreSQL here).
The feature run then goes through the same code as the feature assets: `adjusted_prices`
(adjust the bars, write the run's price snapshot), the technical, fundamental and
sentiment blocks (read the snapshot, compute, write the block to an offline store in a
temporary folder), and `feature_matrix` (`store_feature_matrix`: the blocks read, the
matrix built and staged a year at a time, then stored). It runs twice:

1. Each step in a process of its own, one after another, as Dagster's multiprocess
   executor runs steps (the default of a deployment). Each process first imports the
   feature assets module (Dagster and all), as a step process does, and reports its peak
   RSS (VmHWM). Target: < 2 GB per step.
2. All steps in one process, in the same order (the in-process executor, as
   `dg.materialize` runs them), with the reference: TA-Lib computing 20 indicator series per
   symbol on the same bars. It prints each step's compute time and its ratio to the
   reference, the store reads and writes beside them, and the process's peak RSS. Targets:
   technical <= 2 s, the whole run's compute <= 30x the reference, peak RSS < 2 GB.

"Compute" is what this benchmark timed before the run went through the store: the three
blocks computed and the matrix built (build_feature_matrix). Store I/O (snapshot, block and
matrix reads and writes) is printed separately and not counted in the ratio. The machine's
load average is printed at the start and the end: the two cores are shared, and time
depends on the load while peak RSS does not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RSS_TARGET_MB = 2048.0
TECHNICAL_TARGET_S = 2.0
RUN_TARGET_RATIO = 30.0
STEPS = ("adjusted_prices", "technical", "fundamental", "sentiment", "feature_matrix")
BLOCK_STEPS = ("technical", "fundamental", "sentiment")


def simulate(folder: Path, n_symbols: int) -> None:
    from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig, SyntheticMarketProvider

    config = SyntheticMarketConfig(as_of=date(2025, 12, 31), start=date(2016, 1, 4), n_symbols=n_symbols, recent_listings=0)
    provider = SyntheticMarketProvider(config)
    universe = provider.universe(config.as_of)
    symbols = universe["symbol"].tolist()
    provider.prices(symbols, config.start, config.as_of).to_parquet(folder / "prices.parquet")
    provider.fundamentals(symbols, config.start, config.as_of).to_parquet(folder / "fundamentals.parquet")
    provider.news(symbols, config.start, config.as_of).to_parquet(folder / "news.parquet")
    universe[["symbol", "sector"]].to_parquet(folder / "sectors.parquet")


def peak_rss_mb() -> float:
    """This program's peak RSS: VmHWM, which starts afresh at exec. (ru_maxrss would not do
    for a child process: Linux carries the parent's RSS at fork into it.)"""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class StepTimer:
    """Splits a step's time into compute and store I/O."""

    def __init__(self) -> None:
        self.compute = 0.0
        self.io = 0.0

    @contextmanager
    def timing(self, kind: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, kind, getattr(self, kind) + time.perf_counter() - started)


def run_steps(market: Path, store_root: Path, steps: list[str], reference: bool) -> dict:
    """Run `steps` in this process, in order, as the feature assets do; returns per step
    its compute and I/O seconds and the process's peak RSS after it."""
    import pandas as pd

    from vfr_ml_pipelines.lib.features.feature_run import store_feature_matrix
    from vfr_ml_pipelines.lib.features import fundamental, sentiment, technical
    from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore
    from vfr_ml_pipelines.lib.features.price_snapshot import read_price_snapshot, write_price_snapshot
    from vfr_ml_pipelines.lib.market_data.adjust import adjust_prices

    out: dict = {"import_rss_mb": peak_rss_mb(), "steps": {}}
    store = OfflineFeatureStore(store_root)
    for step in steps:
        timer = StepTimer()
        extra: dict = {}
        if step == "adjusted_prices":
            with timer.timing("io"):  # stands in for reading vfr_ml.raw_prices
                raw = pd.read_parquet(market / "prices.parquet")
            with timer.timing("compute"):
                prices = adjust_prices(raw)
            del raw
            with timer.timing("io"):
                write_price_snapshot(store_root, prices, lineage={"bench": True})
            del prices
        elif step in BLOCK_STEPS:
            with timer.timing("io"):
                prices = read_price_snapshot(store_root)
            if step == "technical":
                if reference:
                    from bench_technical_features import talib_reference

                    started = time.perf_counter()
                    talib_reference(prices)
                    out["talib_reference_20_series"] = time.perf_counter() - started
                version = technical.FEATURE_SET_VERSION
                with timer.timing("compute"):
                    frame = technical.compute_technical_features(prices)
            elif step == "fundamental":
                with timer.timing("io"):
                    reports = pd.read_parquet(market / "fundamentals.parquet")
                version = fundamental.FEATURE_SET_VERSION
                with timer.timing("compute"):
                    frame = fundamental.compute_fundamental_features(prices, reports)
                del reports
            else:
                with timer.timing("io"):
                    news = pd.read_parquet(market / "news.parquet")
                sentiment.score_headlines(news.head(10))  # the lexicon loads once per process, not timed (as before)
                version = sentiment.FEATURE_SET_VERSION
                with timer.timing("compute"):
                    frame = sentiment.compute_sentiment_features(news, prices)
                extra["headlines"] = len(news)
                del news
            del prices
            with timer.timing("io"):
                store.write(version, frame, lineage={"bench": True})
            del frame
        elif step == "feature_matrix":
            sectors = pd.read_parquet(market / "sectors.parquet")
            result = store_feature_matrix(store, sectors, lineage={"bench": True})
            timer.compute = result.build_seconds
            timer.io = result.written.seconds - result.build_seconds
            extra = {"rows": result.report.rows, "columns": result.report.n_columns}
            del result
        else:
            raise ValueError(f"unknown step {step!r}")
        out["steps"][step] = {"compute": timer.compute, "io": timer.io, "peak_rss_mb": peak_rss_mb(), **extra}
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def worker(args: argparse.Namespace) -> None:
    warnings.filterwarnings("ignore")  # Dagster's beta/preview notices on import
    import vfr_ml_pipelines.defs.features.assets  # noqa: F401  (a step process has Dagster loaded)

    result = run_steps(Path(args.worker), Path(args.store), args.steps.split(","), args.reference)
    print(json.dumps(result))


def spawn(market: Path, store: Path, steps: list[str], reference: bool = False) -> dict:
    command = [sys.executable, __file__, "--worker", str(market), "--store", str(store), "--steps", ",".join(steps)]
    if reference:
        command.append("--reference")
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(steps)} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--steps", help=argparse.SUPPRESS)
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--simulate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simulate:
        simulate(Path(args.simulate), args.symbols)
        return
    if args.worker:
        worker(args)
        return

    print(f"load average at the start: {load()}")
    with tempfile.TemporaryDirectory(prefix="vfr-bench-run-") as tmp:
        market = Path(tmp)
        started = time.perf_counter()
        # in a process of its own, so that this one stays small while it starts the steps
        subprocess.run([sys.executable, __file__, "--simulate", tmp, "--symbols", str(args.symbols)], check=True)
        print(f"simulated market: {time.perf_counter() - started:.1f} s (not part of the feature run)")

        print("\n1. Each step in its own process (as Dagster's multiprocess executor runs steps)")
        per_step = {}
        for step in STEPS:
            per_step[step] = spawn(market, market / "store-steps", [step])
        print(f"   a step process with the feature assets imported starts at {per_step[STEPS[0]]['import_rss_mb']:.0f} MB")
        print(f"   {'step':18} {'compute':>9} {'store I/O':>10} {'peak RSS':>10}   target < {RSS_TARGET_MB:.0f} MB")
        for step in STEPS:
            s = per_step[step]["steps"][step]
            print(f"   {step:18} {s['compute']:8.2f}s {s['io']:9.2f}s {s['peak_rss_mb']:8.0f} MB   "
                  f"{verdict(s['peak_rss_mb'] < RSS_TARGET_MB)}")
        worst = max(per_step[s]["steps"][s]["peak_rss_mb"] for s in STEPS)
        print(f"   largest step: {worst:.0f} MB (target < {RSS_TARGET_MB:.0f} MB per step: {verdict(worst < RSS_TARGET_MB)})")

        print("\n2. The whole run in one process (as the in-process executor runs it)")
        t = spawn(market, market / "store-one-process", list(STEPS), reference=True)
    steps = t["steps"]
    ref = t["talib_reference_20_series"]
    print(f"   rows x columns:               {steps['feature_matrix']['rows']:,} x {steps['feature_matrix']['columns']} "
          f"({steps['sentiment']['headlines']:,} headlines)")
    print(f"   TA-Lib reference (20 series): {ref:.2f} s")
    for step in STEPS:
        s = steps[step]
        ratio = f"({s['compute'] / ref:.1f}x reference)" if step != "adjusted_prices" else "(not in the run's ratio)"
        print(f"   {step + ':':30} {s['compute']:.2f} s compute {ratio}, {s['io']:.2f} s store I/O")
    compute = sum(steps[s]["compute"] for s in (*BLOCK_STEPS, "feature_matrix"))
    io = sum(steps[s]["io"] for s in STEPS)
    print(f"   whole feature run (compute): {compute:.2f} s = {compute / ref:.1f}x reference "
          f"(target <= {RUN_TARGET_RATIO:.0f}x: {verdict(compute / ref <= RUN_TARGET_RATIO)})")
    print(f"   store I/O of the run:        {io:.2f} s (snapshot, blocks and matrix written and read; not in the ratio)")
    print(f"   technical block:             {steps['technical']['compute']:.2f} s "
          f"(target <= {TECHNICAL_TARGET_S:.0f} s: {verdict(steps['technical']['compute'] <= TECHNICAL_TARGET_S)})")
    print(f"   peak RSS of the whole run:   {t['peak_rss_mb']:.0f} MB "
          f"(target < {RSS_TARGET_MB:.0f} MB: {verdict(t['peak_rss_mb'] < RSS_TARGET_MB)})")
    print(f"\nload average at the end: {load()}")


if __name__ == "__main__":
    main()
