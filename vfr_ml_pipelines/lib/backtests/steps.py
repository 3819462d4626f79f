"""The backtests domain's pipeline steps, one per asset of `defs/backtests` (which only wires
resources in and metadata out): inputs read from the warehouse, the run's adjusted-price
snapshot and the MLflow registry; results written back as MLflow artifacts and tags.

* `backtest_step`: a horizon's `HorizonBacktest`; its table and plots become artifacts of the
  challenger's training run (`backtest/`), its after-cost information ratio a tag of the
  challenger version (`champions.BACKTEST_IR_TAG`). A candidate above the oracle beyond noise
  raises `LeakSuspected` after the artifacts are logged (they are the evidence).
* `risk_step`: the challenger's and the equal-weight book's risk, per horizon (artifacts of
  the challenger's training run under `risk/`); `optimizer_step`: the constrained optimizer
  against the challenger's equal-weight top-k book, per horizon, timed.
* `live_record_step`: the served horizons' live track record (outcomes, and the served book
  through the engine on the run's adjusted prices).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.backtests import store
from vfr_ml_pipelines.lib.backtests.config import BacktestConfig
from vfr_ml_pipelines.lib.backtests.horizon import (
    HorizonBacktest, NoPredictions, backtest_horizon, challenger_optimizer_comparison, challenger_risk,
)
from vfr_ml_pipelines.lib.backtests.live_record import LiveTrackRecord, live_backtest, live_track_record
from vfr_ml_pipelines.lib.backtests.publish import artifact_files
from vfr_ml_pipelines.lib.backtests.risk import RiskReport
from vfr_ml_pipelines.lib.features.feature_run import read_adjusted_prices
from vfr_ml_pipelines.lib.models.champions import BACKTEST_IR_TAG
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, ModelRegistry, RegisteredVersion, serving_model_name
from vfr_ml_pipelines.lib.models.store import oracle_expected_returns

ARTIFACT_FOLDER = "backtest"
RISK_FOLDER = "risk"


class LeakSuspected(RuntimeError):
    """A candidate's after-cost returns beat the oracle's beyond noise."""


@dataclass(frozen=True)
class BacktestRun:
    backtest: HorizonBacktest
    challenger: RegisteredVersion
    artifacts: list[str]
    images: dict[str, bytes]


def _challenger(registry: ModelRegistry, horizon: str) -> RegisteredVersion:
    challenger = registry.by_alias(serving_model_name(horizon), CHALLENGER)
    if challenger is None:
        raise NoPredictions(f"{serving_model_name(horizon)} has no challenger: materialize challenger_{horizon}_model first")
    return challenger


def _predictions(engine: Engine, horizon: str) -> pd.DataFrame:
    predictions = store.walk_forward_predictions(engine, horizon)
    if predictions.empty:
        raise NoPredictions(f"{horizon}: vfr_ml.walk_forward_predictions has no test rows; retrain the horizon (challenger_{horizon}_model)")
    return predictions


def backtest_step(engine: Engine, store_root: Path, registry: ModelRegistry, horizon: str, config: BacktestConfig) -> BacktestRun:
    challenger = _challenger(registry, horizon)
    prices, _ = read_adjusted_prices(store_root)
    backtest = backtest_horizon(
        horizon, prices, _predictions(engine, horizon), config, oracle=oracle_expected_returns(engine, horizon),
        challenger_run_id=challenger.run_id, sectors=store.universe_sectors(engine),
    )
    images = backtest.report.plots()
    files = artifact_files(f"{ARTIFACT_FOLDER}/{horizon}", backtest.report.table(), images)
    registry.log_run_artifacts(challenger.run_id, files)
    if backtest.leaked():
        raise LeakSuspected(
            f"{horizon}: {', '.join(backtest.leaked())} beat the oracle after costs beyond noise (the whole 95 % interval of the "
            "daily difference is above 0): a model cannot rank better than the true expectation unless it has seen the future"
        )
    registry.set_version_tags(challenger.name, challenger.version, {BACKTEST_IR_TAG: backtest.challenger_metric("information_ratio")})
    return BacktestRun(backtest, challenger, sorted(files), images)


def risk_step(
    engine: Engine, store_root: Path, registry: ModelRegistry, horizons: Sequence[str], config_for: Callable[[str], BacktestConfig]
) -> dict[str, RiskReport]:
    """Each horizon's challenger risk (`horizon.challenger_risk`; `config_for(h)` its
    BacktestConfig), its table and plots logged under `risk/{h}/` of the challenger's run."""
    prices, _ = read_adjusted_prices(store_root)
    sectors = store.universe_sectors(engine)
    reports = {}
    for h in horizons:
        run_id = _challenger(registry, h).run_id
        reports[h] = challenger_risk(h, prices, _predictions(engine, h), config_for(h), challenger_run_id=run_id, sectors=sectors)
        registry.log_run_artifacts(run_id, artifact_files(f"{RISK_FOLDER}/{h}", reports[h].table(), reports[h].plots()))
    return reports


@dataclass(frozen=True)
class OptimizerComparison:
    """`compare_with_topk`'s strategy x metric table of one horizon and the seconds it took."""

    table: pd.DataFrame
    seconds: float


def optimizer_step(
    engine: Engine, store_root: Path, registry: ModelRegistry, horizons: Sequence[str], config_for: Callable[[str], BacktestConfig]
) -> dict[str, OptimizerComparison]:
    """The constrained optimizer against each horizon's challenger equal-weight top-k book, at the
    horizon's rebalancing (`config_for(h)`: a solve per rebalance and objective, so `1d` costs the
    most), logged as `risk/{h}/optimizer.csv` under the challenger's run."""
    prices, _ = read_adjusted_prices(store_root)
    sectors = store.universe_sectors(engine)
    comparisons = {}
    for h in horizons:
        challenger = _challenger(registry, h)
        start = time.perf_counter()
        table = challenger_optimizer_comparison(
            h, prices, _predictions(engine, h), config_for(h), challenger_run_id=challenger.run_id, sectors=sectors,
        )
        comparisons[h] = OptimizerComparison(table, time.perf_counter() - start)
        registry.log_run_artifacts(challenger.run_id, {f"{RISK_FOLDER}/{h}/optimizer.csv": table.to_csv().encode()})
    return comparisons


def optimizer_table(comparisons: dict[str, OptimizerComparison]) -> pd.DataFrame:
    """The horizons' optimizer tables, one row per `{horizon} {strategy}`."""
    tables = [c.table.rename(index=lambda name, h=h: f"{h} {name}") for h, c in comparisons.items()]
    return pd.concat(tables).rename_axis("strategy")


def risk_table(reports: dict[str, RiskReport]) -> pd.DataFrame:
    """The reports' strategy x metric tables, one row per `{horizon} {strategy}`."""
    tables = [report.table().rename(index=lambda name, h=h: f"{h} {name}") for h, report in reports.items()]
    return pd.concat(tables).rename_axis("strategy")


def live_record_step(
    engine: Engine, store_root: Path, horizons: Sequence[str], config_for: Callable[[str], BacktestConfig]
) -> list[LiveTrackRecord]:
    """Each horizon's `live_track_record`, its book through `live_backtest` with `config_for(h)`."""
    outcomes, served = store.live_outcomes(engine), store.served_predictions(engine)
    prices, _ = read_adjusted_prices(store_root)
    return [live_track_record(outcomes, h, live_backtest(prices, served, h, config_for(h))) for h in horizons]
