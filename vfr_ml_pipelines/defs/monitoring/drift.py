"""Feature drift of the served champions and the sensor that retrains on it.

Defines the asset `feature_drift` (group `monitoring`) and the sensor `drift_sensor`, which
requests `retraining_job`. The sensor reads the drift scores from the latest `feature_drift`
materialization's metadata (`drift_score_<h>`, `drifted_<h>`, `session`): no table of its
own, and the UI shows the very numbers the sensor acted on.
"""

import base64
import math

import dagster as dg
import pandas as pd

from vfr_ml_pipelines.defs.models.jobs import retraining_job
from vfr_ml_pipelines.defs.resources import FeatureStoreResource, MlflowResource
from vfr_ml_pipelines.lib.horizons import HORIZONS
from vfr_ml_pipelines.lib.monitoring.champion_drift import (
    DEFAULT_CURRENT_SESSIONS, champions_drift, horizon_scores, read_horizon_scores,
)
from vfr_ml_pipelines.lib.monitoring.decision import DriftCursor, Observation, decide
from vfr_ml_pipelines.lib.monitoring.drift import DriftConfig

_DRIFT = DriftConfig()
FEATURE_DRIFT = dg.AssetKey("feature_drift")
# set on the runs the sensor requests, to find them again (the run key is Dagster's own tag)
DRIFT_EVENT_TAG = "vfr/drift_event"
# a daily report cannot change faster; each tick is two small instance queries
DRIFT_SENSOR_INTERVAL_SECONDS = 15 * 60
TABLE_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("horizon", "string"), dg.TableColumn("feature", "string"), dg.TableColumn("psi", "float"),
    dg.TableColumn("ks_statistic", "float"), dg.TableColumn("wasserstein", "float", description="in reference std"),
    dg.TableColumn("importance", "float"), dg.TableColumn("drifted", "bool"),
])


def drift_table(frame: pd.DataFrame) -> dg.TableMetadataValue:
    def cell(value: object) -> object:
        value = value.item() if hasattr(value, "item") else value  # numpy scalars to Python
        if isinstance(value, float):
            return round(value, 4) if math.isfinite(value) else None
        return value

    names = [column.name for column in TABLE_SCHEMA.columns]
    rows = [dg.TableRecord({n: cell(v) for n, v in zip(names, row)}) for row in frame[names].itertuples(index=False)]
    return dg.MetadataValue.table(rows, schema=TABLE_SCHEMA)


class FeatureDriftConfig(dg.Config):
    """Thresholds of `lib/monitoring/drift.py` (its `DriftConfig` holds the defaults and why)."""

    current_sessions: int = DEFAULT_CURRENT_SESSIONS
    psi_drift: float = _DRIFT.psi_drift
    ks_statistic: float = _DRIFT.ks_statistic
    wasserstein: float = _DRIFT.wasserstein
    score_threshold: float = _DRIFT.score_threshold


@dg.asset(group_name="monitoring", kinds={"python"}, deps=["feature_matrix", *(f"champion_{h}_model" for h in HORIZONS)])
def feature_drift(config: FeatureDriftConfig, mlflow: MlflowResource, feature_store: FeatureStoreResource) -> dg.MaterializeResult:
    """Each served champion's features over the last sessions against its training window: PSI,
    KS, Wasserstein per feature, and the importance-weighted share of drifted features."""
    thresholds = DriftConfig(psi_drift=config.psi_drift, ks_statistic=config.ks_statistic,
                             wasserstein=config.wasserstein, score_threshold=config.score_threshold)
    drifts = champions_drift(mlflow.registry, feature_store.offline, thresholds, config.current_sessions)
    table = pd.concat([d.table() for d in drifts]) if drifts else pd.DataFrame(columns=[c.name for c in TABLE_SCHEMA.columns])
    plots = "\n\n".join(
        f"![{d.horizon}](data:image/png;base64,{base64.b64encode(d.report.plot_png(title=f'Feature drift {d.horizon}')).decode()})"
        for d in drifts
    )
    windows = {d.horizon: f"{d.model_id}: {d.reference_start}..{d.reference_end} vs {d.current_start}..{d.current_end}" for d in drifts}
    return dg.MaterializeResult(metadata={
        **horizon_scores(drifts), "drift_table": drift_table(table), "drift_plot": dg.MetadataValue.md(plots),
        "windows": dg.MetadataValue.json(windows),
    })


def _retraining_finished(instance: dg.DagsterInstance, run_key: str | None) -> bool:
    if run_key is None:
        return False
    runs = instance.get_runs(filters=dg.RunsFilter(tags={DRIFT_EVENT_TAG: run_key}), limit=1)
    return bool(runs) and runs[0].is_finished


@dg.sensor(name="drift_sensor", job=retraining_job, minimum_interval_seconds=DRIFT_SENSOR_INTERVAL_SECONDS,
           default_status=dg.DefaultSensorStatus.STOPPED)
def drift_sensor(context: dg.SensorEvaluationContext):
    """One `retraining_job` run per drift event of `feature_drift` (lib/monitoring/decision.py:
    nothing more while it runs, then a cooldown)."""
    event = context.instance.get_latest_materialization_event(FEATURE_DRIFT)
    verdict = event and read_horizon_scores({k: v.value for k, v in event.asset_materialization.metadata.items()})
    if not verdict:
        return dg.SkipReason("no feature_drift report with a served champion yet")
    cursor = DriftCursor.from_string(context.cursor)
    observation = Observation(verdict.session, verdict.drifted, verdict.score, _retraining_finished(context.instance, cursor.run_key))
    decision = decide(cursor, observation)
    context.update_cursor(decision.cursor.to_string())
    if not decision.request_run:
        return dg.SkipReason(decision.reason)
    tags = {DRIFT_EVENT_TAG: decision.run_key, "vfr/drifted_horizons": ",".join(verdict.drifted_horizons)}
    return dg.RunRequest(run_key=decision.run_key, tags=tags)
