"""Assets of the backtests domain (group `backtests`).

Defines `backtest_{h}` for each horizon h in HORIZONS (`lib/horizons.py`: `backtest_1d`,
`backtest_1w`, `backtest_1m`), `risk_report` and `live_track_record`. The logic is in
`lib/backtests/steps.py` (reads, MLflow artifacts and tags), `horizon.py`, `live_record.py`
and `publish.py` (markdown tables and images).
"""

import dagster as dg

from vfr_ml_pipelines.defs.resources import FeatureStoreResource, MlflowResource, WarehouseResource
from vfr_ml_pipelines.lib.backtests.config import BacktestConfig, CostConfig
from vfr_ml_pipelines.lib.backtests.horizon import NoPredictions
from vfr_ml_pipelines.lib.backtests.live_record import MIN_SESSIONS, book_table, records_table
from vfr_ml_pipelines.lib.backtests.publish import markdown_images, markdown_table
from vfr_ml_pipelines.lib.backtests.report import ORACLE
from vfr_ml_pipelines.lib.backtests.steps import (
    LeakSuspected, backtest_step, live_record_step, optimizer_step, optimizer_table, risk_step, risk_table,
)
from vfr_ml_pipelines.lib.horizons import HORIZONS

_BACKTEST, _COSTS = BacktestConfig(), CostConfig()
OPTIMIZER_COLUMNS = ("annual_return", "sharpe", "information_ratio", "max_drawdown", "annual_turnover", "annual_costs", "excess_annual_return")


class BacktestAssetConfig(dg.Config):
    """Strategy and cost settings of the backtests; defaults are the core's (`BacktestConfig`,
    `CostConfig`: TopkDropout at the next open holding a sixth of the universe (`topk_share`,
    Qlib's 50 of CSI300) and at most `topk` 50, dropping `n_drop` 5 of 50 in proportion;
    overlapping tranches, 1 bp commission with a minimum of 1.0, 2 bp half-spread, square-root
    impact 0.5, 10 % participation cap, 50 bp a year to borrow). `rebalance_every` None: the
    horizon's length in sessions."""

    strategy: str = _BACKTEST.strategy
    topk: int = _BACKTEST.topk
    n_drop: int = _BACKTEST.n_drop
    topk_share: float = _BACKTEST.topk_share
    quantile: float = _BACKTEST.quantile
    rebalance_every: int | None = None
    overlapping_tranches: bool = _BACKTEST.overlapping_tranches
    execution_price: str = _BACKTEST.execution_price
    notional: float = _BACKTEST.notional
    commission_bps: float = _COSTS.commission_bps
    min_commission: float = _COSTS.min_commission
    half_spread_bps: float = _COSTS.half_spread_bps
    impact_coefficient: float = _COSTS.impact_coefficient
    participation_cap: float = _COSTS.participation_cap
    borrow_bps_per_year: float = _COSTS.borrow_bps_per_year

    def to_core(self, horizon: str) -> BacktestConfig:
        costs = CostConfig(
            commission_bps=self.commission_bps, min_commission=self.min_commission, half_spread_bps=self.half_spread_bps,
            impact_coefficient=self.impact_coefficient, participation_cap=self.participation_cap,
            borrow_bps_per_year=self.borrow_bps_per_year,
        )
        config = BacktestConfig(
            strategy=self.strategy, topk=self.topk, n_drop=self.n_drop, topk_share=self.topk_share, quantile=self.quantile,
            overlapping_tranches=self.overlapping_tranches, execution_price=self.execution_price, notional=self.notional, costs=costs,
        ).for_horizon(horizon)
        return config if self.rebalance_every is None else config.with_(rebalance_every=self.rebalance_every)


def build_backtest_asset(horizon: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"backtest_{horizon}", group_name="backtests", kinds={"python", "mlflow"},
        deps=[f"challenger_{horizon}_model", "adjusted_prices", "synthetic_oracle"],
    )
    def _backtest(config: BacktestAssetConfig, warehouse: WarehouseResource, feature_store: FeatureStoreResource, mlflow: MlflowResource) -> dg.MaterializeResult:
        """Every candidate's out-of-sample test predictions, the oracle (synthetic market) and the
        equal-weight universe traded through one engine with costs; the table and plots are also
        artifacts of the challenger's training run, its information ratio a tag of its version.
        A candidate above the oracle beyond noise has leaked the future and fails the asset."""
        try:
            run = backtest_step(warehouse.engine, feature_store.offline.root, mlflow.registry, horizon, config.to_core(horizon))
        except (NoPredictions, LeakSuspected) as exc:
            raise dg.Failure(str(exc)) from None
        backtest, table = run.backtest, run.backtest.report.table()
        return dg.MaterializeResult(metadata={
            "table": dg.MetadataValue.md(markdown_table(table)),
            "challenger_candidate": backtest.challenger or "none",
            "challenger_information_ratio": backtest.challenger_metric("information_ratio"),
            "challenger_share_of_oracle": backtest.challenger_metric("share_of_oracle") if backtest.has_oracle else "none (no oracle)",
            "oracle": ORACLE in table.index,
            "leak_suspected": dg.MetadataValue.json(backtest.report.leak_suspected),
            "test_period": f"{backtest.first_day} .. {backtest.last_day}",
            "topk_n_drop_rebalance": f"{backtest.config.topk} / {backtest.config.n_drop} / every {backtest.config.rebalance_every}",
            "book_rule": backtest.book_rule,
            "plots": dg.MetadataValue.md(markdown_images(run.images)),
            "mlflow_run_id": run.challenger.run_id,
            "mlflow_artifacts": dg.MetadataValue.json(run.artifacts),
        })

    return _backtest


backtest_assets = [build_backtest_asset(h) for h in HORIZONS]


@dg.asset(group_name="backtests", kinds={"python"}, deps=[a.key for a in backtest_assets])
def risk_report(config: BacktestAssetConfig, warehouse: WarehouseResource, feature_store: FeatureStoreResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """VaR / CVaR (historical, normal, Cornish-Fisher), the VaR backtest (exception rate, Kupiec,
    Christoffersen), the worst stress loss and the drawdown forecast of each horizon's
    challenger book and of the equal-weight universe over the test period; and, for every
    horizon at its rebalancing, the constrained optimizer (minimum variance, maximum Sharpe)
    against the equal-weight top-k book after costs, with the seconds each horizon took."""
    engine, root, registry = warehouse.engine, feature_store.offline.root, mlflow.registry
    try:
        reports = risk_step(engine, root, registry, HORIZONS, config.to_core)
        optimizer = optimizer_step(engine, root, registry, HORIZONS, config.to_core)
    except NoPredictions as exc:
        raise dg.Failure(str(exc)) from None
    images = {f"{h}_{name}": png for h, report in reports.items() for name, png in report.plots().items()}
    return dg.MaterializeResult(metadata={
        "table": dg.MetadataValue.md(markdown_table(risk_table(reports), columns=None)),
        "var_exceptions": dg.MetadataValue.md(markdown_images(images)),
        "optimizer_vs_topk": dg.MetadataValue.md(markdown_table(optimizer_table(optimizer), columns=OPTIMIZER_COLUMNS)),
        **{f"optimizer_seconds_{h}": round(c.seconds, 2) for h, c in optimizer.items()},
    })


@dg.asset(group_name="backtests", kinds={"python", "postgres"}, deps=["prediction_outcomes", "adjusted_prices"])
def live_track_record(config: BacktestAssetConfig, warehouse: WarehouseResource, feature_store: FeatureStoreResource) -> dg.MaterializeResult:
    """The served predictions' realized record per horizon: sessions with outcomes, daily Rank IC
    (mean and t over non-overlapping sessions), direction accuracy; and the served book through
    the backtests' engine, config and costs on the adjusted prices (after costs, the same
    holdings before costs, the equal-weight universe: the backtests' metric set) once it has
    MIN_SESSIONS sessions with a realized return (else "not enough days yet")."""
    records = live_record_step(warehouse.engine, feature_store.offline.root, HORIZONS, config.to_core)
    return dg.MaterializeResult(metadata={
        "table": dg.MetadataValue.md(markdown_table(records_table(records), columns=None)),
        "book": dg.MetadataValue.md(markdown_table(book_table(records))),
        "sessions_needed": MIN_SESSIONS,
        **{f"{r.horizon}_status": r.book.status for r in records},
        **{f"{r.horizon}_days_with_outcomes": r.days_with_outcomes for r in records},
        **{f"{r.horizon}_days_missing": r.book.days_missing for r in records},
        **{f"{r.horizon}_book_rule": r.book.book_rule for r in records if r.book.book_rule},
    })
