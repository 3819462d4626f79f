"""The whole feature run on the synthetic market: 500 symbols x 10 years.

    .venv/bin/python benchmarks/bench_feature_run.py [--symbols 500]

The market (prices, quarterly reports, ~0.5 M headlines) is simulated first and written to
Parquet (not timed). A fresh process then loads it and times, in one run: the technical,
fundamental and sentiment blocks (headline scoring included), the cross-sectional feature
matrix, and as the reference TA-Lib computing 20 indicator series per symbol on the same
bars. It prints each time, the ratios to the reference and the feature process's peak RSS
(targets: technical <= 2 s, whole run <= 30x the reference, peak RSS < 2 GB).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


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


def feature_run(folder: Path) -> dict:
    import pandas as pd
    from bench_technical_features import talib_reference

    from vfr_ml_pipelines.lib.features import catalog, fundamental, sentiment, technical
    from vfr_ml_pipelines.lib.features.transforms import build_feature_matrix
    from vfr_ml_pipelines.lib.market_data.adjust import adjust_prices

    prices = adjust_prices(pd.read_parquet(folder / "prices.parquet"))
    reports = pd.read_parquet(folder / "fundamentals.parquet")
    news = pd.read_parquet(folder / "news.parquet")
    sectors = pd.read_parquet(folder / "sectors.parquet")
    timings: dict[str, float] = {}

    def timed(name, fn):
        started = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - started
        return out

    sentiment.score_headlines(news.head(10))  # load the lexicon outside the timings (once per process)
    timed("talib_reference_20_series", lambda: talib_reference(prices))
    tech = timed("technical", lambda: technical.compute_technical_features(prices))
    fund = timed("fundamental", lambda: fundamental.compute_fundamental_features(prices, reports))
    sent = timed("sentiment", lambda: sentiment.compute_sentiment_features(news, prices))
    matrix, _ = timed(
        "feature_matrix",
        lambda: build_feature_matrix(
            [tech, fund, sent], sectors, raw_columns=list(catalog.RAW_NAMES), rank_columns=list(catalog.RANK_COLUMNS),
            zscore_columns=list(catalog.ZSCORE_COLUMNS), neutral_columns=list(catalog.NEUTRAL_COLUMNS),
        ),
    )
    timings["rows"] = len(matrix)
    timings["columns"] = matrix.shape[1] - 2
    timings["headlines"] = len(news)
    timings["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(feature_run(Path(args.worker))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        simulate(Path(tmp), args.symbols)
        print(f"simulated market: {time.perf_counter() - started:.1f} s (not part of the feature run)")
        out = subprocess.run([sys.executable, __file__, "--worker", tmp], capture_output=True, text=True, check=True)
    t = json.loads(out.stdout.strip().splitlines()[-1])
    ref = t["talib_reference_20_series"]
    total = t["technical"] + t["fundamental"] + t["sentiment"] + t["feature_matrix"]
    print(f"rows x columns:              {t['rows']:,} x {t['columns']} ({t['headlines']:,} headlines)")
    print(f"TA-Lib reference (20 series): {ref:.2f} s")
    for block in ("technical", "fundamental", "sentiment", "feature_matrix"):
        print(f"{block + ':':28} {t[block]:.2f} s  ({t[block] / ref:.1f}x reference)")
    print(f"whole feature run:            {total:.2f} s  ({total / ref:.1f}x reference; target <= 30x)")
    print(f"technical block target 2 s:   {'met' if t['technical'] <= 2.0 else 'MISSED'}")
    print(f"peak RSS of the feature run:  {t['peak_rss_mb']:.0f} MB (target < 2048 MB)")


if __name__ == "__main__":
    main()
