"""Benchmark: all technical features vs. 20 plain TA-Lib calls per symbol on the same data.

    .venv/bin/python benchmarks/bench_technical_features.py [--symbols 500] [--days 2520]

Builds a random-walk OHLCV frame (PRICE_COLUMNS, trade_date as datetime.date like the
providers return it, one 2-for-1 split per 50 symbols), then times (best of --repeats)
`compute_technical_features` and, as the reference in the same process, TA-Lib computing 20
indicator series per symbol (RSI, SMA x3, EMA x3, MACD, BBANDS, STOCH, WILLR, ROC x3, ATR, OBV,
STDDEV x2, CORREL, LINEARREG_SLOPE) on the same arrays, keeping their outputs. Prints one
figure per line.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import talib

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vfr_ml_pipelines.lib.features.technical import FEATURE_NAMES, compute_technical_features  # noqa: E402

TARGET_SECONDS = 2.0


def build_prices(n_symbols: int, n_days: int, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2015-01-02", periods=n_days).date
    start = 30.0 * np.exp(rng.normal(0, 0.7, (n_symbols, 1)))
    sigma = rng.uniform(0.01, 0.03, (n_symbols, 1))
    close = start * np.exp(np.cumsum(rng.normal(0.0002, 1.0, (n_symbols, n_days)) * sigma, axis=1))
    prev = np.concatenate([start, close[:, :-1]], axis=1)
    open_ = prev * np.exp(rng.normal(0, 0.3, close.shape) * sigma)
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.5, close.shape)) * sigma)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.5, close.shape)) * sigma)
    volume = np.exp(rng.normal(13, 1, (n_symbols, 1)) + rng.normal(0, 0.4, close.shape))
    adj_close = close.copy()
    split_ratio = np.ones_like(close)
    for s in range(0, n_symbols, 50):  # a 2-for-1 split in the middle of every 50th symbol
        d = n_days // 2
        open_[s, :d] *= 2
        high[s, :d] *= 2
        low[s, :d] *= 2
        close[s, :d] *= 2
        volume[s, :d] /= 2
        split_ratio[s, d] = 2.0
    symbols = np.array([f"S{i:04d}" for i in range(n_symbols)], dtype=object)
    return pd.DataFrame({
        "symbol": np.repeat(symbols, n_days),
        "trade_date": np.tile(days, n_symbols),
        "open": open_.ravel(), "high": high.ravel(), "low": low.ravel(), "close": close.ravel(),
        "adj_close": adj_close.ravel(), "volume": volume.ravel().round().astype("int64"),
        "dividend": 0.0, "split_ratio": split_ratio.ravel(),
    })


def talib_reference(prices: pd.DataFrame) -> list[np.ndarray]:
    """20 TA-Lib indicator series per symbol on the adjusted arrays, outputs kept."""
    factor = prices["adj_close"].to_numpy() / prices["close"].to_numpy()
    c = prices["adj_close"].to_numpy(dtype="float64")
    h = prices["high"].to_numpy(dtype="float64") * factor
    l = prices["low"].to_numpy(dtype="float64") * factor
    v = prices["volume"].to_numpy(dtype="float64") / factor
    codes = prices["symbol"].to_numpy()
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    ends = np.append(starts[1:], len(prices))
    out: list[np.ndarray] = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        cc, hh, ll, vv = c[a:b], h[a:b], l[a:b], v[a:b]
        out.append(talib.RSI(cc, 14))
        out.extend(talib.SMA(cc, w) for w in (5, 20, 60))
        out.extend(talib.EMA(cc, w) for w in (5, 20, 60))
        out.extend(talib.MACD(cc, 12, 26, 9))
        out.extend(talib.BBANDS(cc, 20, 2, 2, 0))
        out.extend(talib.STOCH(hh, ll, cc, 14, 3, 0, 3, 0))
        out.append(talib.WILLR(hh, ll, cc, 14))
        out.extend(talib.ROC(cc, w) for w in (1, 5, 20))
        out.append(talib.ATR(hh, ll, cc, 14))
        out.append(talib.OBV(cc, vv))
        out.extend(talib.STDDEV(cc, w, 1) for w in (20, 60))
        out.append(talib.CORREL(cc, vv, 20))
        out.append(talib.LINEARREG_SLOPE(cc, 20))
    return out


def best_of(fn, repeats: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t0)
        del result
    return min(runs), runs


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="compute_technical_features threads (default: its own)")
    args = parser.parse_args()

    prices = build_prices(args.symbols, args.days)
    rss_data = peak_rss_mb()
    features_best, features_runs = best_of(lambda: compute_technical_features(prices, threads=args.threads), args.repeats)
    talib_best, talib_runs = best_of(lambda: talib_reference(prices), args.repeats)

    print(f"rows: {len(prices):,} ({args.symbols} symbols x {args.days} days)")
    print(f"features computed: {len(FEATURE_NAMES)}")
    print(f"compute_technical_features: {features_best:.3f} s best of {args.repeats} (runs: {', '.join(f'{r:.3f}' for r in features_runs)})")
    print(f"TA-Lib reference, 20 calls per symbol: {talib_best:.3f} s best of {args.repeats} (runs: {', '.join(f'{r:.3f}' for r in talib_runs)})")
    print(f"ratio features / TA-Lib reference: {features_best / talib_best:.2f}x")
    print(f"throughput: {len(prices) / features_best / 1e6:.2f} M rows/s, {len(prices) * len(FEATURE_NAMES) / features_best / 1e6:.1f} M feature values/s")
    print(f"target {TARGET_SECONDS:.1f} s: {'met' if features_best <= TARGET_SECONDS else 'NOT met'}")
    print(f"peak RSS after building the data: {rss_data:,.0f} MB")
    print(f"peak RSS overall: {peak_rss_mb():,.0f} MB")
    print(f"machine: {os.cpu_count()} CPUs, 1-minute load average {os.getloadavg()[0]:.2f} (includes this benchmark)")


if __name__ == "__main__":
    main()
