"""Jobs of the models domain.

Defines `retraining_job`, for each horizon h in HORIZONS (`lib/horizons.py`),
`rollback_{h}_job` (`rollback_1d_job`, `rollback_1w_job`, `rollback_1m_job`), and
`rollback_live_1w_job` (the live model's line, `vfr-live-1w`)."""

import dagster as dg

from vfr_ml_pipelines.defs.serving.jobs import PUBLISH_SELECTION
from vfr_ml_pipelines.lib.horizons import HORIZONS
from vfr_ml_pipelines.lib.models.champions import ROLLBACK_REASON
from vfr_ml_pipelines.lib.models.live_training import LIVE_HORIZON, live_model_name

retraining_job = dg.define_asset_job(
    name="retraining_job",
    selection=dg.AssetSelection.groups("models", "backtests") | PUBLISH_SELECTION,
    description=(
        "Retrain every horizon on the stored features and labels (walk-forward, tuning, canaries), register the "
        "candidates, backtest them against the oracle and the equal-weight universe, gate the challengers, promote the ones that pass, and republish (behind the blocking "
        "feature_matrix_is_valid check, like every job that publishes to VFR)."
    ),
)


def build_rollback_job(horizon: str):
    return dg.define_asset_job(
        name=f"rollback_{horizon}_job",
        selection=dg.AssetSelection.assets(f"champion_{horizon}_model") | PUBLISH_SELECTION,
        config={"ops": {f"champion_{horizon}_model": {"config": {"rollback": True, "to_version": "", "reason": ROLLBACK_REASON}}}},
        description=(
            f"Re-point vfr-{horizon}@champion to the previous champion (or to_version) and republish from it."
        ),
    )


def build_live_rollback_job():
    asset = f"live_{LIVE_HORIZON}_model"
    return dg.define_asset_job(
        name=f"rollback_live_{LIVE_HORIZON}_job",
        selection=dg.AssetSelection.assets(asset) | PUBLISH_SELECTION,
        config={"ops": {asset: {"config": {"rollback": True, "to_version": "", "reason": ROLLBACK_REASON}}}},
        description=(
            f"Re-point {live_model_name(LIVE_HORIZON)}@champion (the model VFR's live ensemble runs) to its previous "
            "champion (or to_version) and republish: vfr_live_model deploys it."
        ),
    )


rollback_jobs = [*(build_rollback_job(h) for h in HORIZONS), build_live_rollback_job()]
