"""VFR's live ensemble: the live model's champion (else the 1w champion) as files VFR runs,
and `ml_models` saying that it (and nothing else of ours) is `deployed` (lib/serving/live_path.py).

Asset key: `vfr_live_model` (upstream: `vfr_feature_export`, `live_1w_model`,
`champion_1w_model`, i.e. `live_{LIVE_HORIZON}_model`, `champion_{LIVE_HORIZON}_model`)."""

import dagster as dg

from vfr_ml_pipelines.defs.resources import MlflowResource, VfrModelsResource, WarehouseResource
from vfr_ml_pipelines.lib.serving.live_model import MODEL_FILE
from vfr_ml_pipelines.lib.serving.live_path import FALLBACK_DESIGN, LIVE_HORIZON, deploy_live_champion


@dg.asset(
    group_name="serving", kinds={"lightgbm", "postgres"},
    deps=["vfr_feature_export", f"live_{LIVE_HORIZON}_model", f"champion_{LIVE_HORIZON}_model"],
)
def vfr_live_model(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource, vfr_models: VfrModelsResource
) -> dg.MaterializeResult:
    """The model VFR's live ensemble runs (`live_path.choose_live_model`): the live model's
    champion (`vfr-live-1w`, on the top-k inputs of `1w`, VFR's default horizon;
    `live_1w_model`), else (fallback: its gate failed) the `1w` champion with all its inputs,
    as `model.txt` + `normalizer.json` in `{VFR_MODELS_DIR}/{model_name}/v{version}/` (written
    atomically), then its `ml_models` row `deployed` and every other row of ours out of
    `deployed`: VFR's live ensemble runs each deployed row on every request, so it runs
    exactly this model, with the inputs that `vfr_feature_export` wrote. With neither, or
    when it cannot be written as LightGBM trees, no row of ours is deployed (VFR's live path
    then runs only its own models). Also what restores the live path after `disable_ml_job`."""
    done = deploy_live_champion(warehouse.engine, mlflow.registry, vfr_models.path)
    if done.reason_none:
        context.log.warning(f"nothing of ours on VFR's live path: {done.reason_none}")
    elif done.design == FALLBACK_DESIGN:
        context.log.warning(f"VFR's live path runs the fallback: {done.why}")
    return dg.MaterializeResult(
        metadata={
            "deployed": ", ".join(done.changed["deployed"]) or "none",
            # which design runs and why: the top-k live model, the 1w champion (fallback), none
            "live_design": done.design,
            "live_why": done.why,
            "why_nothing_deployed": done.reason_none or "(a model is deployed)",
            "model_file": str(done.folder / MODEL_FILE) if done.folder else "none",
            # what VFR's live path computes differently from our published probability
            # (vfr_feature_export's live_ridge_clip_binds counts the symbols it touches)
            "not_expressed": done.not_expressed or "nothing: VFR's live path computes our published probability",
            "models_dir": str(vfr_models.path),
            "undeployed_now": ", ".join(done.changed["demoted"]) or "none",
            "restored_after_kill_switch": ", ".join(done.changed["restored"]) or "none",
        }
    )
