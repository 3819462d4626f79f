"""Model study (issue 13): which features, history and training settings give every horizon an
honestly promoted champion and `1w` >= 0.7 of the oracle, chosen on VALIDATION figures only.

    nice -n 10 .venv/bin/python benchmarks/study_models.py --seeds 7 8 9 --start 2023-01-02 \
        --horizons 1w --variants base resid reg xendcg --trials 0 [--canaries 11 12 13]

Per (seed, history start) the market is simulated and the feature matrix, the labels and the
oracle are built once, as the assets build them (adjusted bars, the three blocks,
`build_feature_matrix` with the catalog's columns, `compute_labels`), and cached as Parquet
under `--cache` (default /tmp/study). Each variant then runs `pipeline.train_horizon` on that
matrix, one horizon at a time in this process. Variants:

* `base`: the matrix as the assets build it;
* `reg`, `xendcg`, `xgb-pairwise`, `xgb-ndcg`, ...: the `base` matrix with other training
  settings (`SETTINGS`);
* `resid`: plus residual factors computed here from the adjusted bars (when they win, they
  belong in lib/features): the sector-neutral daily return (return minus the day's sector
  mean) summed from t-125 to t-21 and scaled by its 60-session volatility (residual 6-1
  momentum, Blitz-Huij-Martens), and summed over the last 5 sessions, scaled the same way
  (residual short-term reversal); each as a per-day rank.

The reports are those filed from the history start on, as the run loads them (`build`);
`--filings-before-start` adds the four quarters filed before it, as the earlier studies of
2026-12-07 did (their figures are not the run's: README, "Issue 13's second study").

Each result is one JSON line appended to `--out` (default /tmp/study/results.jsonl): the
selected candidate, its validation Rank IC and t, the oracle's Rank IC on the same validation
rows and the ratio, its test Rank IC, the oracle's, the ratio,
the shuffled canary, every candidate's validation and test Rank IC, and the process CPU
seconds of `train_horizon`. Choices read the validation columns; the test columns are reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vfr_ml_pipelines  # noqa: E402,F401  (sets the OpenMP wait policy before lightgbm loads)
from vfr_ml_pipelines.lib.features import catalog  # noqa: E402
from vfr_ml_pipelines.lib.features.fundamental import compute_fundamental_features  # noqa: E402
from vfr_ml_pipelines.lib.features.labels import compute_labels  # noqa: E402
from vfr_ml_pipelines.lib.features.matrix import build_feature_matrix  # noqa: E402
from vfr_ml_pipelines.lib.features.sentiment import compute_sentiment_features  # noqa: E402
from vfr_ml_pipelines.lib.features.technical import compute_technical_features  # noqa: E402
from vfr_ml_pipelines.lib.market_data.adjust import adjust_prices  # noqa: E402
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig, SyntheticMarketProvider  # noqa: E402
from vfr_ml_pipelines.lib.models.canaries import oracle_daily_rank_ic  # noqa: E402
from vfr_ml_pipelines.lib.models.dataset import join_features_labels, model_feature_names  # noqa: E402
from vfr_ml_pipelines.lib.models.pipeline import HorizonTrainingConfig, train_horizon  # noqa: E402
from vfr_ml_pipelines.lib.models.training_record import significance  # noqa: E402

AS_OF = date(2026, 12, 4)  # the last session of the default run measured on 2026-12-07
HORIZONS = ("1d", "1w", "1m")

# Training-setting variants on the `base` matrix: `HorizonTrainingConfig.algorithm_params`.
# `reg`: a low signal-to-noise setting for both trees (leaves of 1.5 % of the training rows,
# heavier L2, 0.6 of the features and 0.7 of the rows per tree, a slower learning rate) with
# the rounds chosen by the validation window's mean per-session Rank IC (patience 100).
# `xendcg`: LightGBM's `rank_xendcg`, one query group per session, quintile grades of the
# session rank of the target, stopped on Rank IC; XGBoost and ridge unchanged.
_RANK_IC_STOP = {"early_stopping_metric": "rank_ic", "early_stopping_rounds": 100}
SETTINGS: dict[str, dict] = {
    "reg": {
        "lightgbm": {"learning_rate": 0.02, "min_leaf_fraction": 0.015, "lambda_l2": 50.0, "feature_fraction": 0.6,
                     "bagging_fraction": 0.7, "bagging_freq": 1, **_RANK_IC_STOP},
        "xgboost": {"learning_rate": 0.02, "min_leaf_fraction": 0.015, "reg_lambda": 50.0, "colsample_bytree": 0.6,
                    "subsample": 0.7, **_RANK_IC_STOP},
    },
    "xendcg": {"lightgbm": {"objective": "rank_xendcg", **_RANK_IC_STOP}},
}
# XGBoost's ranking objectives (`xgb-pairwise`, `xgb-ndcg`): one query group per session,
# quintile grades of the session rank of the target, stopped on the validation sessions' NDCG
# (the objective's own metric, as `base` stops on L2). A ranking loss's per-row hessian is far
# below the squared loss's 1, so `min_child_weight` 200 (200 rows there) blocked most splits:
# 20 (one fold of dev seed 1, validation Rank IC: pairwise 0.1053 at 200, 0.1110 at 20;
# ndcg 0.0559 at 200, 0.0696 at 1 after one round; the regression 0.1180). LightGBM and
# ridge as `base`.
SETTINGS["xgb-pairwise"] = {"xgboost": {"objective": "rank:pairwise", "min_child_weight": 20.0}}
SETTINGS["xgb-ndcg"] = {"xgboost": {"objective": "rank:ndcg", "min_child_weight": 20.0}}
# `reg` with the rounds stopped on validation L2 as `base`: stopping on the validation window's
# Rank IC picks the round that ranks that window best, which lifts the validation figure that
# selection then reads; this variant compares the regularization alone on equal terms
SETTINGS["reg-l2"] = {algo: {k: v for k, v in params.items() if k not in _RANK_IC_STOP}
                      for algo, params in SETTINGS["reg"].items()}
# `reg-inner`: `reg`, its rounds stopped on the Rank IC of the last 90 sessions of the training
# rows (a gap of 5 sessions, the 1w label's length: this variant is for 1w), never the validation
# window, so the validation figure stays out of sample for the fit
SETTINGS["reg-inner"] = {algo: {**params, "stopping_sessions": 90, "stopping_gap_sessions": 5}
                         for algo, params in SETTINGS["reg"].items()}


def build(seed: int, start: date, folder: Path, symbols: int = 50, filings_before_start: bool = False) -> None:
    """Simulate the market and write matrix, labels, oracle, adjusted prices and sectors.

    The reports are those filed from `start` on, as the run's `raw_fundamentals` loads them
    (one partition per filing session of the history): the simulator also files the four
    quarters before `start`, and with them (`filings_before_start`, how the earlier studies
    built the matrix) the trailing-twelve-month ratios exist from the first session, where the
    run has them only from the fourth report filed in its history."""
    config = SyntheticMarketConfig(as_of=AS_OF, start=start, n_symbols=symbols, seed=seed, recent_listings=0)
    provider = SyntheticMarketProvider(config)
    symbols = provider.all_symbols()
    sectors = provider.universe(AS_OF)[["symbol", "sector"]]
    prices = adjust_prices(provider.prices(symbols, start, AS_OF))
    fundamentals = provider.fundamentals(symbols, date(1900, 1, 1) if filings_before_start else start, AS_OF)
    news = provider.news(symbols, start, AS_OF)
    blocks = [
        compute_technical_features(prices),
        compute_fundamental_features(prices, fundamentals),
        compute_sentiment_features(news, prices),
    ]
    columns = catalog.matrix_columns()
    matrix, _ = build_feature_matrix(
        blocks, sectors, raw_columns=list(columns.raw), rank_columns=list(columns.rank),
        zscore_columns=list(columns.zscore), neutral_columns=list(columns.neutral),
    )
    folder.mkdir(parents=True, exist_ok=True)
    matrix.to_parquet(folder / "matrix.parquet")
    for horizon in HORIZONS:
        compute_labels(prices, horizon).to_parquet(folder / f"labels_{horizon}.parquet")
    provider.oracle(symbols, start, AS_OF).to_parquet(folder / "oracle.parquet")
    prices[["symbol", "trade_date", "adj_close"]].to_parquet(folder / "prices.parquet")
    sectors.to_parquet(folder / "sectors.parquet")


def cached(seed: int, start: date, cache: Path, symbols: int = 50, filings_before_start: bool = False) -> Path:
    # 50 symbols (the earlier studies' universe) keeps the folder name of their caches
    folder = cache / (f"seed{seed}_{start.isoformat()}" + ("" if symbols == 50 else f"_{symbols}sym")
                      + ("_prefilings" if filings_before_start else "_runfilings"))
    if not (folder / "sectors.parquet").exists():
        started = time.process_time()
        build(seed, start, folder, symbols, filings_before_start)
        print(f"built seed {seed} from {start}: {time.process_time() - started:.1f} CPU s", flush=True)
    return folder


def _per_symbol_rolling_sum(values: pd.DataFrame, window: int, shift: int = 0) -> pd.DataFrame:
    return values.shift(shift).rolling(window, min_periods=window).sum()


def residual_factors(prices: pd.DataFrame, sectors: pd.DataFrame) -> pd.DataFrame:
    """symbol, trade_date, resid_mom_6_1, resid_rev_5 (raw): see the module docstring."""
    close = prices.pivot(index="trade_date", columns="symbol", values="adj_close").sort_index()
    ret = close.pct_change(fill_method=None)
    sector = sectors.set_index("symbol")["sector"].reindex(ret.columns)
    sector_mean = ret.T.groupby(sector.to_numpy()).transform("mean").T
    resid = ret - sector_mean
    vol = resid.rolling(60, min_periods=40).std()
    mom = _per_symbol_rolling_sum(resid, 105, shift=21) / (vol * np.sqrt(105))
    rev = _per_symbol_rolling_sum(resid, 5) / (vol * np.sqrt(5))
    out = pd.DataFrame({
        "resid_mom_6_1": mom.stack(future_stack=True),
        "resid_rev_5": rev.stack(future_stack=True),
    }).reset_index()
    return out


def day_rank(frame: pd.DataFrame, column: str) -> pd.Series:
    """Per-day percentile rank in [-0.5, 0.5], as the matrix's `_rank` columns."""
    grouped = frame.groupby("trade_date")[column]
    return (grouped.rank(pct=True) - 0.5).where(frame[column].notna())


def dataset(folder: Path, horizon: str, variant: str) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    matrix = pd.read_parquet(folder / "matrix.parquet")
    names = model_feature_names(list(matrix.columns))
    if variant == "resid":
        extra = residual_factors(pd.read_parquet(folder / "prices.parquet"), pd.read_parquet(folder / "sectors.parquet"))
        matrix = matrix.merge(extra, on=["symbol", "trade_date"], how="left")
        for c in ("resid_mom_6_1", "resid_rev_5"):
            matrix[f"{c}_rank"] = day_rank(matrix, c)
            names += [f"{c}_rank"]
    elif variant != "base" and variant not in SETTINGS:
        raise ValueError(f"unknown variant {variant!r}")
    labels = pd.read_parquet(folder / f"labels_{horizon}.parquet")
    oracle = pd.read_parquet(folder / "oracle.parquet")
    oracle = oracle[oracle["horizon"] == horizon][["trade_date", "symbol", "expected_return"]]
    return join_features_labels(matrix, labels, names), names, oracle


def run(folder: Path, horizon: str, variant: str, trials: int, canaries: tuple[int, ...]) -> dict:
    data, names, oracle = dataset(folder, horizon, variant)
    params = SETTINGS.get(variant, {})
    config = HorizonTrainingConfig(horizon=horizon, tuning_trials=trials, canary_seeds=canaries, algorithm_params=params)
    started = time.process_time()
    result = train_horizon(data, names, config, oracle=oracle)
    cpu = time.process_time() - started
    chosen = result.selected()
    # the oracle on the same validation rows: validation windows differ across histories, so
    # the ratio is what compares them
    val_rows = chosen.predictions[chosen.predictions["segment"] == "val"]
    oracle_val = float(oracle_daily_rank_ic(val_rows, oracle)["rank_ic"].mean())
    return {
        "horizon": horizon, "variant": variant, "trials": trials, "params": {k: str(v) for k, v in params.items()},
        "rows": result.rows, "features": len(names), "selected": chosen.name,
        "best_iterations": {n: c.model.estimator.best_iteration for n, c in result.candidates.items()
                            if n not in ("linear", "ensemble-rankic", "ensemble-stacking")},
        "val_rank_ic": chosen.validation["rank_ic"], "val_t": significance(chosen.validation, horizon),
        "oracle_val": oracle_val, "val_ratio": chosen.validation["rank_ic"] / oracle_val,
        "test_rank_ic": chosen.test["rank_ic"], "oracle": chosen.test.get("oracle_rank_ic"),
        "ratio": chosen.test.get("model_oracle_ratio"), "shuffled": result.shuffled_canary.statistic,
        "shuffled_se": result.shuffled_canary.detail.get("average_rank_ic_se"),
        "oracle_canaries_ok": not result.leaked(), "cpu_s": round(cpu, 1),
        "candidates": {n: [round(c.validation["rank_ic"], 4), round(significance(c.validation, horizon), 2),
                           round(c.test.get("model_oracle_ratio", float("nan")), 3)] for n, c in result.candidates.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--start", type=date.fromisoformat, default=date(2023, 1, 2))
    parser.add_argument("--horizons", nargs="+", default=["1w"], choices=HORIZONS)
    parser.add_argument("--variants", nargs="+", default=["base", "resid"])
    parser.add_argument("--trials", type=int, default=0)
    parser.add_argument("--canaries", type=int, nargs="+", default=[11])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/study"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/study/results.jsonl"))
    parser.add_argument("--symbols", type=int, default=100, help="universe size (the default market's is 100; the earlier studies used 50)")
    parser.add_argument("--filings-before-start", action="store_true",
                        help="also the reports filed before --start (the earlier studies; the run never loads them)")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    for seed in args.seeds:
        folder = cached(seed, args.start, args.cache, args.symbols, args.filings_before_start)
        if args.build_only:
            continue
        for horizon in args.horizons:
            for variant in args.variants:
                row = {"seed": seed, "start": args.start.isoformat(), "symbols": args.symbols,
                       "filings_before_start": args.filings_before_start,
                       **run(folder, horizon, variant, args.trials, tuple(args.canaries))}
                print(json.dumps(row), flush=True)
                with args.out.open("a") as out:
                    out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
