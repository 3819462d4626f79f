"""Assets of the models domain.

Defines, for each horizon h in HORIZONS (`lib/horizons.py`):
- the multi-asset `train_{h}_models`, materializing `lightgbm_{h}_model`, `xgboost_{h}_model`,
  `linear_{h}_model`, `ensemble_{h}_model` (one per CANDIDATE_ASSETS group: `{group}_{h}_model`)
  and `challenger_{h}_model`;
- `champion_{h}_model` (promotion, or rollback with its config; after `backtest_{h}`, whose
  information ratio its metadata shows).
And `live_1w_model` (`live_{LIVE_HORIZON}_model`): the LightGBM model on the top-k inputs that
VFR's live path runs, trained, gated and promoted in one asset (`lib/models/live_training.py`).
The logic is in `lib/models/challenger.py` (training) and `lib/models/champions.py`.
"""

import dagster as dg

from vfr_ml_pipelines.defs.resources import FeatureStoreResource, MlflowResource, PromotionPolicyResource, WarehouseResource
from vfr_ml_pipelines.lib.horizons import HORIZONS
from vfr_ml_pipelines.lib.models import champions
from vfr_ml_pipelines.lib.models.catalog import algorithm
from vfr_ml_pipelines.lib.models.champions import ROLLBACK_REASON
from vfr_ml_pipelines.lib.models.live_training import (
    LIVE_HORIZON, LIVE_TOP_K, live_model_name, roll_back_live_model, update_live_model,
)
from vfr_ml_pipelines.lib.models.challenger import ChallengerTraining, LeakageDetected, TrainingDataMissing, train_challenger
from vfr_ml_pipelines.lib.models.pipeline import ENSEMBLES, VAL_DAYS, HorizonTrainingConfig
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, serving_model_name
from vfr_ml_pipelines.lib.models.splits import WalkForwardConfig
from vfr_ml_pipelines.lib.models.training_record import metrics_table

# asset group -> the candidates it holds
CANDIDATE_ASSETS = {"lightgbm": ("lightgbm",), "xgboost": ("xgboost",), "linear": ("linear",), "ensemble": ENSEMBLES}


_WALK_FORWARD = WalkForwardConfig()


class ModelTrainingConfig(dg.Config):
    """Walk-forward, tuning and canary settings of one horizon's training; the defaults are
    the core's (`splits.WalkForwardConfig`, `pipeline.HorizonTrainingConfig`)."""

    scheme: str = _WALK_FORWARD.scheme
    n_folds: int = _WALK_FORWARD.n_folds
    test_fraction: float = _WALK_FORWARD.test_fraction
    val_days: int | None = None  # None: the horizon's default (pipeline.VAL_DAYS)
    embargo_days: int = _WALK_FORWARD.embargo_days
    train_days: int | None = _WALK_FORWARD.train_days
    min_train_days: int = _WALK_FORWARD.min_train_days
    target: str = HorizonTrainingConfig.target
    tuning_trials: int = HorizonTrainingConfig.tuning_trials
    # a safety net only (reported in the metadata when it trips): trials bound the search
    tuning_timeout_seconds: float = HorizonTrainingConfig.tuning_timeout_seconds
    ensemble_recent_days: int = HorizonTrainingConfig.ensemble_recent_days
    canary_seeds: list[int] = list(HorizonTrainingConfig.canary_seeds)
    seed: int = HorizonTrainingConfig.seed

    def to_core(self, horizon: str) -> HorizonTrainingConfig:
        val_days = self.val_days if self.val_days is not None else VAL_DAYS[horizon]
        return HorizonTrainingConfig(
            horizon=horizon,
            walk_forward=WalkForwardConfig(
                scheme=self.scheme, n_folds=self.n_folds, test_fraction=self.test_fraction, val_days=val_days,
                embargo_days=self.embargo_days, train_days=self.train_days, min_train_days=self.min_train_days,
            ),
            target=self.target, tuning_trials=self.tuning_trials, tuning_timeout_seconds=self.tuning_timeout_seconds,
            ensemble_recent_days=self.ensemble_recent_days, canary_seeds=tuple(self.canary_seeds), seed=self.seed,
        )


def _candidate_metadata(name: str, version, candidate) -> dict:
    meta = {f"{name}_model": version.model_id, f"{name}_mlflow_run_id": version.run_id}
    meta.update({f"{name}_validation_rank_ic": float(candidate.validation["rank_ic"])})
    meta.update({f"{name}_test_{k}": float(v) for k, v in candidate.test.items() if isinstance(v, float)})
    return meta


def _group_metadata(training: ChallengerTraining, group: str) -> dict:
    meta: dict = {"reused": False, "fingerprint": training.fingerprint}
    for name in CANDIDATE_ASSETS[group]:
        if name in training.result.candidates:
            meta.update(_candidate_metadata(name, training.versions[name], training.result.candidates[name]))
    return meta


def _challenger_metadata(training: ChallengerTraining) -> dict:
    result, comparison = training.result, training.comparison
    selected = result.selected()
    return {
        "serving_model": training.challenger.model_id,
        "selected_candidate": selected.name,
        "validation_rank_ic": float(selected.validation["rank_ic"]),
        "test_rank_ic": float(selected.test["rank_ic"]),
        # the best possible forecast on the same test days (synthetic market only)
        "oracle_test_rank_ic": float(result.oracle_test["rank_ic"]) if result.oracle_test else "none (no oracle)",
        "shuffled_label_canary": result.shuffled_canary.message,
        "metrics": dg.MetadataValue.md(metrics_table(result)),
        "folds": dg.MetadataValue.json([f.as_dict() for f in [*result.folds, result.final]]),
        "rows": result.rows,
        "training_seconds": round(result.seconds, 1),
        "champion_comparison": comparison.describe() if comparison is not None else "no champion",
        "tuning_stopped_by_time": dg.MetadataValue.json(result.tuning_stopped_by_time()),
        "reused": False,
        "fingerprint": training.fingerprint,
    }


def build_training_asset(horizon: str) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            f"{group}_{horizon}_model", group_name="models", kinds=set(algorithm(group).dagster_kinds), deps=["feature_matrix", "labels"],
            description=(
                f"{group} candidate(s) of the {horizon} horizon: walk-forward out-of-sample evaluation and the "
                f"production fit, registered as `vfr-{{candidate}}-{horizon}` in MLflow."
            ),
        )
        for group in CANDIDATE_ASSETS
    ]
    specs.append(
        dg.AssetSpec(
            f"challenger_{horizon}_model", group_name="models", kinds={"mlflow"},
            deps=[s.key for s in specs] + ["synthetic_oracle"],
            description=(
                f"The {horizon} candidate with the best validation Rank IC, copied into `{serving_model_name(horizon)}` "
                f"with alias `{CHALLENGER}`; the blocking promotion_gate check decides whether it may become champion."
            ),
        )
    )

    @dg.multi_asset(name=f"train_{horizon}_models", specs=specs, can_subset=False)
    def _train(
        context: dg.AssetExecutionContext,
        config: ModelTrainingConfig,
        warehouse: WarehouseResource,
        feature_store: FeatureStoreResource,
        mlflow: MlflowResource,
    ):
        """Purged walk-forward training of LightGBM, XGBoost, the linear baseline and the two
        ensembles for one horizon, with Optuna tuning on pre-test folds and leakage canaries."""
        try:
            training = train_challenger(
                warehouse.engine, feature_store.offline, mlflow.registry, config.to_core(horizon), config.model_dump(),
                run_id=context.run_id,
            )
        except TrainingDataMissing as exc:
            raise dg.Failure(str(exc)) from None
        except LeakageDetected as exc:
            raise dg.Failure(str(exc), metadata={"canaries": exc.canaries}) from None
        if training.describe():
            context.log.info(training.describe())
        if training.reused:
            reused = {"reused": True, "serving_version": training.challenger.model_id, "fingerprint": training.fingerprint}
            for spec in specs:
                yield dg.MaterializeResult(asset_key=spec.key, metadata=reused)
            return
        for group in CANDIDATE_ASSETS:
            yield dg.MaterializeResult(asset_key=f"{group}_{horizon}_model", metadata=_group_metadata(training, group))
        yield dg.MaterializeResult(asset_key=f"challenger_{horizon}_model", metadata=_challenger_metadata(training))

    return _train


class ChampionConfig(dg.Config):
    """`rollback: true` re-points champion to `to_version`, or to the previous champion."""

    rollback: bool = False
    to_version: str = ""
    reason: str = ""


def build_champion_asset(horizon: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"champion_{horizon}_model", group_name="models", kinds={"mlflow", "postgres"},
        deps=[f"challenger_{horizon}_model", f"backtest_{horizon}"],
    )
    def _champion(context: dg.AssetExecutionContext, config: ChampionConfig, warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
        """The serving model of the horizon: alias `champion` of `vfr-{horizon}`. Moves to the
        challenger once its promotion gate passed, stays when the gate failed (the reason is in
        the metadata); with `rollback` it re-points to the previous champion. `ml_models` mirrors it (deployed / shadow / deprecated) and
        `vfr_ml.champion_history` records every change. The metadata shows the challenger's
        validation Rank IC (what the gate decides on) beside its backtest's after-cost
        information ratio (`backtest_{h}`: evidence, not a rule)."""
        try:
            change = champions.update_champion(
                mlflow.registry, warehouse.engine, horizon, roll_back=config.rollback,
                to_version=config.to_version or None, reason=config.reason or None, run_id=context.run_id,
            )
        except (LookupError, PermissionError, ValueError) as exc:
            raise dg.Failure(str(exc)) from None
        context.log.info(change.describe())
        return dg.MaterializeResult(
            metadata={
                "serving_model": f"{serving_model_name(horizon)}.v{change.version}" if change.version != "none" else "none (horizon not served)",
                "action": change.action,
                "previous_version": change.previous_version or "none",
                "reason": change.reason,
                "summary": change.describe(),
                **champions.challenger_evidence(mlflow.registry, horizon),
            }
        )

    return _champion


class LiveModelConfig(ModelTrainingConfig, ChampionConfig):
    """The live horizon's training settings, and how many inputs the live model reads (each
    costs the daily publish one `ml_feature_store` row per symbol). `rollback: true` (the
    champion assets' fields) re-points the live model's champion to `to_version` or its
    previous champion instead of training (`rollback_live_1w_job`)."""

    top_k: int = LIVE_TOP_K


@dg.asset(
    name=f"live_{LIVE_HORIZON}_model", group_name="models", kinds={"lightgbm", "mlflow", "postgres"},
    deps=["feature_matrix", "labels", "synthetic_oracle"],
)
def live_model(
    context: dg.AssetExecutionContext, config: LiveModelConfig, warehouse: WarehouseResource,
    feature_store: FeatureStoreResource, mlflow: MlflowResource, promotion_policy: PromotionPolicyResource,
) -> dg.MaterializeResult:
    """The model VFR's live ensemble runs (`vfr-live-1w`): LightGBM and the ridge (and their
    ensembles) on the live horizon's top-k inputs by Rank IC (chosen on the first fold's
    training rows), evaluated with the horizon's walk-forward folds, purge and embargo, the
    best on validation gated by the promotion gate (canaries, significance, the paired
    comparison with the live champion) and promoted when it passes. When it fails, the live
    champion stays; with none, `vfr_live_model` deploys the 1w champion instead (the
    fallback, all its inputs exported). With `rollback`, re-points the live champion."""
    horizon_name = live_model_name(LIVE_HORIZON)
    if config.rollback:
        try:
            change = roll_back_live_model(warehouse.engine, mlflow.registry, to_version=config.to_version or None,
                                          reason=config.reason or ROLLBACK_REASON, run_id=context.run_id)
        except (LookupError, ValueError) as exc:
            raise dg.Failure(str(exc)) from None
        context.log.info(change.describe())
        return dg.MaterializeResult(metadata={"action": change.action, "champion": f"{horizon_name}.v{change.version}",
                                              "previous_version": change.previous_version or "none", "summary": change.describe()})
    try:
        update = update_live_model(
            warehouse.engine, feature_store.offline, mlflow.registry, config.to_core(LIVE_HORIZON),
            config.model_dump(exclude=set(ChampionConfig.model_fields)), promotion_policy.policy, k=config.top_k,
            run_id=context.run_id,
        )
    except TrainingDataMissing as exc:
        raise dg.Failure(str(exc)) from None
    except LeakageDetected as exc:
        raise dg.Failure(str(exc), metadata={"canaries": exc.canaries}) from None
    (context.log.info if update.verdict.passed else context.log.warning)(f"{horizon_name}: {update.verdict.description}")
    training = update.training
    champion = f"{horizon_name}.v{update.change.version}" if update.change.version != "none" else "none"
    meta: dict = {"serving_model": training.challenger.model_id, "reused": training.reused, "fingerprint": training.fingerprint,
                  "gate_passed": update.verdict.passed, "gate": update.verdict.description, "action": update.change.action,
                  "champion": champion,
                  "live_path": (f"{champion} (top-k design)" if champion != "none" else
                                f"fallback: vfr_live_model deploys the {LIVE_HORIZON} champion with all its inputs")}
    if training.result is not None:
        candidate = training.result.selected()
        meta.update({"inputs": ", ".join(update.inputs), "top_k": len(update.inputs), "selected_candidate": candidate.name,
                     "validation_rank_ic": float(candidate.validation["rank_ic"]), "test_rank_ic": float(candidate.test["rank_ic"]),
                     "metrics": dg.MetadataValue.md(metrics_table(training.result))})
    return dg.MaterializeResult(metadata=meta)


training_assets = [build_training_asset(h) for h in HORIZONS]
champion_assets = [build_champion_asset(h) for h in HORIZONS]
