import math

import dagster as dg

from vfr_ml_pipelines.defs.resources import FeatureStoreResource, MlflowResource, WarehouseResource
from vfr_ml_pipelines.lib import settings
from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.models.dataset import join_features_labels
from vfr_ml_pipelines.lib.models.lightgbm_model import train_lightgbm, training_fingerprint
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, registered_model_name
from vfr_ml_pipelines.lib.serving.vfr_tables import upsert_ml_model
from vfr_ml_pipelines.lib.warehouse import read_frame

HORIZON = "1w"
MODEL_NAME = registered_model_name("lightgbm", HORIZON)


class ModelTrainingConfig(dg.Config):
    num_boost_round: int = 200
    test_fraction: float = 0.2
    seed: int = 7


def model_feature_names(matrix_columns: list[str]) -> list[str]:
    """Every matrix column but the keys and the row-quality columns."""
    return [c for c in matrix_columns if c not in ("symbol", "trade_date", "completeness", "quality_score")]


@dg.asset(group_name="models", kinds={"lightgbm", "mlflow"}, deps=["feature_matrix", "labels"])
def lightgbm_1w_model(
    context: dg.AssetExecutionContext,
    config: ModelTrainingConfig,
    warehouse: WarehouseResource,
    feature_store: FeatureStoreResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    """LightGBM regression of the 1-week forward return on the feature matrix, trained
    on a date split whose training labels are purged from the test period; logged to
    MLflow and registered as a new version of `vfr-lightgbm-1w` with alias `challenger`."""
    features = feature_store.offline.read(catalog.MATRIX_VERSION)
    names = model_feature_names(list(features.columns))
    labels = read_frame(warehouse.engine, "SELECT * FROM vfr_ml.labels WHERE horizon = :h", {"h": HORIZON})
    dataset = join_features_labels(features, labels, names)
    fingerprint = training_fingerprint(
        dataset, names, {**config.model_dump(), "code_version": settings.code_version()}
    )
    registry = mlflow.registry
    existing = registry.find_by_fingerprint(MODEL_NAME, fingerprint)
    if existing is not None:
        registry.set_alias(MODEL_NAME, CHALLENGER, existing.version)
        context.log.info(f"inputs unchanged since {existing.model_id}: reusing it, no new version")
        return dg.MaterializeResult(
            metadata={
                "registered_model": MODEL_NAME,
                "version": existing.version,
                "mlflow_run_id": existing.run_id,
                "reused": True,
                "fingerprint": fingerprint,
            }
        )
    trained = train_lightgbm(
        dataset, names, test_fraction=config.test_fraction, num_boost_round=config.num_boost_round, seed=config.seed
    )
    tags = {
        "dagster_run_id": context.run_id,
        "feature_set_version": catalog.MATRIX_VERSION,
        "data_start": str(dataset["trade_date"].min()),
        "data_end": str(dataset["trade_date"].max()),
        "code_version": settings.code_version(),
        "horizon": HORIZON,
        "algorithm": "lightgbm",
        "fingerprint": fingerprint,
    }
    version = registry.log_lightgbm(
        trained,
        experiment=f"vfr-ml-{HORIZON}",
        registered_name=MODEL_NAME,
        tags=tags,
        input_example=dataset[names].dropna().head(5),
    )
    registry.set_alias(MODEL_NAME, CHALLENGER, version.version)
    with warehouse.engine.begin() as conn:
        upsert_ml_model(
            conn, name=MODEL_NAME, version=version.version, model_type="lightgbm", horizon=HORIZON,
            target=f"forward_return_{HORIZON}", validation_score=None,
            test_score=trained.test_metrics["rank_ic"], status="validated",
        )
    return dg.MaterializeResult(
        metadata={
            "registered_model": MODEL_NAME,
            "version": version.version,
            "mlflow_run_id": version.run_id,
            "train_rows": int((dataset["trade_date"] <= trained.split.train_end).sum()),
            **{f"split_{k}": v for k, v in trained.split.as_dict().items()},
            **{f"test_{k}": float(v) for k, v in trained.test_metrics.items()},
            "residual_std": trained.residual_std,
            "reused": False,
            "fingerprint": fingerprint,
        }
    )


@dg.asset(group_name="models", kinds={"mlflow"}, deps=[lightgbm_1w_model])
def champion_1w_model(context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """The serving model of the 1w horizon: the registry alias `champion` of
    `vfr-lightgbm-1w`, moved to the current challenger once its test metrics are sound.
    `ml_models` mirrors it as `deployed` (earlier versions become `deprecated`)."""
    registry = mlflow.registry
    challenger = registry.by_alias(MODEL_NAME, CHALLENGER)
    if challenger is None:
        raise dg.Failure(f"{MODEL_NAME} has no '{CHALLENGER}' version to promote")
    metrics = registry.run_metrics(challenger.run_id)
    rank_ic = metrics.get("test_rank_ic", float("nan"))
    if not math.isfinite(rank_ic):
        raise dg.Failure(f"{MODEL_NAME} v{challenger.version}: test Rank IC is not finite ({rank_ic}); not promoted")
    previous = registry.by_alias(MODEL_NAME, CHAMPION)
    registry.set_alias(MODEL_NAME, CHAMPION, challenger.version)
    with warehouse.engine.begin() as conn:
        upsert_ml_model(
            conn, name=MODEL_NAME, version=challenger.version, model_type="lightgbm", horizon=HORIZON,
            target=f"forward_return_{HORIZON}", validation_score=None, test_score=rank_ic, status="deployed",
        )
    context.log.info(f"{MODEL_NAME}: champion v{challenger.version} (was {previous.version if previous else 'none'})")
    return dg.MaterializeResult(
        metadata={
            "registered_model": MODEL_NAME,
            "champion_version": challenger.version,
            "previous_champion_version": previous.version if previous else "none",
            "test_rank_ic": rank_ic,
        }
    )
