"""VFR's live ensemble: the live horizon's champion as files VFR runs, and `ml_models`
saying that it (and nothing else of ours) is `deployed` (lib/serving/live_path.py)."""

import dagster as dg

from vfr_ml_pipelines.defs.resources import MlflowResource, VfrModelsResource, WarehouseResource
from vfr_ml_pipelines.lib.models.registry import CHAMPION, serving_model_name
from vfr_ml_pipelines.lib.serving.live_model import MODEL_FILE, LiveExportError, not_expressed, write_live_model
from vfr_ml_pipelines.lib.serving.live_path import LIVE_HORIZON, deploy_live_model, live_feature_name, undeploy_all


@dg.asset(group_name="serving", kinds={"lightgbm", "postgres"}, deps=["vfr_feature_export", f"champion_{LIVE_HORIZON}_model"])
def vfr_live_model(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource, vfr_models: VfrModelsResource
) -> dg.MaterializeResult:
    """The champion of the live horizon (`1w`, VFR's default) as `model.txt` + `normalizer.json`
    in `{VFR_MODELS_DIR}/{model_name}/v{version}/` (written atomically), then its `ml_models`
    row `deployed` and every other row of ours out of `deployed`: VFR's live ensemble runs each
    deployed row on every request, so it runs exactly this model, with the inputs that
    `vfr_feature_export` wrote. Without a champion of that horizon, or when it cannot be
    written as LightGBM trees (linear leaves for a ridge), no row of ours is deployed (VFR's live path then runs only its
    own models). Also what restores the live path after `disable_ml_job`."""
    name = serving_model_name(LIVE_HORIZON)
    champion = mlflow.registry.by_alias(name, CHAMPION)
    reason = f"{name} has no champion" if champion is None else None
    folder = None
    inexact = ""
    if champion is not None:
        loaded = mlflow.registry.load_serving_model(champion.name, champion.version)
        try:
            inputs = [live_feature_name(n) for n in loaded.model.feature_names]
            folder = write_live_model(vfr_models.path, champion.name, champion.version, loaded.model, inputs)
            inexact = not_expressed(loaded.model.estimator)
        except LiveExportError as exc:
            reason = f"{champion.model_id} cannot run on VFR's live path: {exc}"
    with warehouse.engine.begin() as conn:
        if folder is None:
            changed = {"deployed": [], "demoted": undeploy_all(conn), "restored": []}
        else:
            changed = deploy_live_model(conn, champion, LIVE_HORIZON)
    if reason:
        context.log.warning(f"nothing of ours on VFR's live path: {reason}")
    return dg.MaterializeResult(
        metadata={
            "deployed": ", ".join(changed["deployed"]) or "none",
            "reason_none": reason or "",
            "model_file": str(folder / MODEL_FILE) if folder else "",
            # "" when VFR's live path computes exactly our published probability; else what
            # differs (vfr_feature_export's live_ridge_clip_binds counts the symbols it touches)
            "not_expressed": inexact,
            "models_dir": str(vfr_models.path),
            "undeployed_now": ", ".join(changed["demoted"]) or "none",
            "restored_after_kill_switch": ", ".join(changed["restored"]) or "none",
        }
    )
